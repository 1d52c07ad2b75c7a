"""The ClickHouse tables: the runs in a ReplacingMergeTree versioned by snapshot order, and what the reads join."""

from __future__ import annotations

# Kept in the database's `meta` table; a change to any table here or in rollup.py is a new version (and, once
# databases of the old one exist anywhere, a migration).
SCHEMA_VERSION = 3

# Rows collapse to the one with the highest `seq` among those of equal sorting key. `seq` need only order the rows
# of one run: the ingest (ingest.py) applies the spec's rule 1 as it writes, against the snapshot it finds stored, and
# writes a run's winning snapshot with a higher `seq` (a copy brings the embedded store's, which are small). The
# sorting key is the dedup key: `started_at` first so the Runs page's newest-first pages read the last granules in
# order, `id` so two runs never collapse. A later snapshot whose `started_at` differs has another key, so the ingest
# writes a `deleted` row of a higher `seq` under the old one, which the reads leave out (sql.live_runs; not the
# engine's is_deleted, which costs FINAL its fast path: a first page 88 -> 9 ms at 2M runs). A month per partition:
# retention drops whole ones. `status` and `workflow_id` cannot be in the key (a snapshot changes the status); set
# skip indexes let a filtered count pass over granules without them, and the n-gram bloom filter does the same for a
# search.
# Inserts carry a deduplication token per batch (file ranges), kept for the last DEDUP_WINDOW inserts: a worker killed
# mid-batch and run again has its repeated insert dropped whole.
DEDUP_WINDOW = 1000
RUNS_DDL = f"""
CREATE TABLE IF NOT EXISTS runs (
    id              String,
    reference       Nullable(String),
    workflow_id     LowCardinality(String),
    source          LowCardinality(String),
    destination     LowCardinality(String),
    source_app      LowCardinality(Nullable(String)),
    destination_app LowCardinality(Nullable(String)),
    status          LowCardinality(String),
    started_at      DateTime64(6, 'UTC'),
    finished_at     Nullable(DateTime64(6, 'UTC')),
    updated_at      Nullable(DateTime64(6, 'UTC')),
    error_message   Nullable(String),
    error_kind      LowCardinality(Nullable(String)),
    error_step      Nullable(Int32),
    skip_reason     Nullable(String),
    retrigger_of    Nullable(String),
    retrigger_claim Nullable(String),
    attempt         Int32,
    trigger_payload Nullable(String),
    result          Nullable(String),
    steps           String,
    extra           Nullable(String),
    failed_app      LowCardinality(Nullable(String)),
    seq             UInt64,
    source_file     Nullable(String),  -- the log file and line this snapshot was read from (the run's page)
    source_line     Nullable(UInt64),
    deleted         UInt8 DEFAULT 0,   -- 1: the row under an old sorting key of a run whose started_at changed
    -- "Reference or ID" folded by this engine as the needle is (sql.FOLD): lowerUTF8, then a final sigma as σ.
    search          String MATERIALIZED replaceAll(lowerUTF8(concat(coalesce(reference, ''), char(31), id)), 'ς', 'σ'),
    INDEX search_ngrams search TYPE ngrambf_v1(3, 8192, 2, 0) GRANULARITY 1,
    -- A run by its ID (its page, the marks of a page of runs) without the sorting key: 222 -> 29 ms at 10M runs.
    INDEX id_bloom id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX status_set status TYPE set(16) GRANULARITY 1,
    INDEX workflow_set workflow_id TYPE set(1024) GRANULARITY 1,
    INDEX retrigger_of_bloom retrigger_of TYPE bloom_filter GRANULARITY 1
) ENGINE = ReplacingMergeTree(seq)
PARTITION BY toYYYYMM(started_at)
ORDER BY (started_at, id)
SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}
"""
# A rejected line by its file and line: read again (a batch run twice, even under the file's next name after a
# rotation), it replaces itself. `file` is the name it was read under; for rows of `file_id` 0 (none recorded) the
# name tells files apart.
REJECTS_DDL = f"""
CREATE TABLE IF NOT EXISTS rejects (
    file_id     UInt64 DEFAULT 0,
    file        String,
    line        UInt64,
    reason      String,
    raw         Nullable(String),
    ingested_at DateTime64(6, 'UTC')
) ENGINE = ReplacingMergeTree(ingested_at) ORDER BY (file_id, line, if(file_id = 0, file, ''))
SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}
"""
# Each log file as reading it left it (fourgent.rotation.FileRow): written after its batch's runs and rejected lines,
# so an ingest that dies in between reads the range again. `rejects_not_kept`: its rejected lines past the cap.
FILES_DDL = """
CREATE TABLE IF NOT EXISTS files (
    file_id          UInt64,
    path             String,
    size             Int64,
    mtime_ns         Int64,
    offset           Int64,
    lines            Int64,
    head_len         Int32,
    head_digest      String,
    dev              Nullable(UInt64),
    ino              Nullable(UInt64),
    tail_digest      Nullable(String),
    gone             Bool,
    rejects_not_kept Int64 DEFAULT 0,
    read_at          DateTime64(6, 'UTC') DEFAULT now64(6)
) ENGINE = ReplacingMergeTree(read_at) ORDER BY file_id
"""
COMMENTS_DDL = """
CREATE TABLE IF NOT EXISTS comments (
    run_id     String,
    author     String,
    body       String,
    created_at DateTime64(6, 'UTC')
) ENGINE = MergeTree ORDER BY (run_id, created_at)
"""
# The small tables people change (a pause, a claim, a connection, an alert rule) have no UPDATE or DELETE here: each
# change is a new row of the whole record, and FINAL keeps a key's row with the latest `changed_at`; a deletion is a
# row with `deleted = 1`, which FINAL leaves out (ReplacingMergeTree's is_deleted). `changed_at` defaults to the
# insert's time, so a copy needs no column the embedded store lacks.
CHANGED = ("    changed_at      DateTime64(6, 'UTC') DEFAULT now64(6),\n"
           "    deleted         UInt8 DEFAULT 0\n")
REPLACED = "ENGINE = ReplacingMergeTree(changed_at, deleted)"
HANDLED_DDL = f"""
CREATE TABLE IF NOT EXISTS handled (
    run_id     String,
    handled_by String,
    handled_at DateTime64(6, 'UTC'),
    reason     String,
{CHANGED}) {REPLACED} ORDER BY run_id
"""
RETRIGGERS_DDL = f"""
CREATE TABLE IF NOT EXISTS retriggers (
    run_id         String,
    retrigger_of   String,
    retriggered_by Nullable(String),
    retriggered_at DateTime64(6, 'UTC'),
    mode           LowCardinality(String),
    from_step      Nullable(Int32),
    payload_diff   Nullable(String),
    owner          Nullable(String),  -- the process that runs it ("pid:start"); NULL: lineage read from logs
{CHANGED}) {REPLACED} ORDER BY run_id
"""
PAUSED_DDL = f"""
CREATE TABLE IF NOT EXISTS paused (
    workflow_id     String,
    paused_at       DateTime64(6, 'UTC'),
    paused_by       Nullable(String),
{CHANGED}) {REPLACED} ORDER BY workflow_id
"""
# Still encrypted (Fernet): the key stays in the data folder's key file, never in a database.
CONNECTIONS_DDL = f"""
CREATE TABLE IF NOT EXISTS connections (
    app             String,
    base_url        String,
    token_encrypted Nullable(String),
    token_hint      Nullable(String),
    updated_at      DateTime64(6, 'UTC'),
    last_success_at Nullable(DateTime64(6, 'UTC')),
    refused_at      Nullable(DateTime64(6, 'UTC')),
{CHANGED}) {REPLACED} ORDER BY app
"""
# One row per (run, claimer), not per run: two dashboards claiming one run at once both insert, and both then read
# the same winner, the earliest claim by the server's clock (writes.ClaimWrites). `owner` '' for none recorded.
CLAIMS_DDL = f"""
CREATE TABLE IF NOT EXISTS retrigger_claims (
    run_id          String,
    claimed_at      DateTime64(6, 'UTC') DEFAULT now64(6),
    owner           String DEFAULT '',
{CHANGED}) {REPLACED} ORDER BY (run_id, owner)
"""
# Append-only, as in the embedded store: no statement of this package changes or removes an entry.
AUDIT_DDL = """
CREATE TABLE IF NOT EXISTS audit (
    entry     UInt64,
    acted_at  DateTime64(6, 'UTC'),
    actor     String,
    role      LowCardinality(String),
    via       LowCardinality(String),
    action    LowCardinality(String),
    target    Nullable(String),
    detail    Nullable(String),
    outcome   LowCardinality(String),
    message   Nullable(String)
) ENGINE = MergeTree ORDER BY entry
"""
ALERT_RULES_DDL = f"""
CREATE TABLE IF NOT EXISTS alert_rules (
    rule_id          UInt64,
    name             String,
    kind             LowCardinality(String),
    workflow_id      Nullable(String),
    subject          Nullable(String),
    threshold        Float64,
    min_runs         Int32,
    window_minutes   Int32,
    cooldown_minutes Int32,
    destination      Nullable(String),
    enabled          Bool,
    updated_at       DateTime64(6, 'UTC'),
    updated_by       String,
{CHANGED}) {REPLACED} ORDER BY rule_id
"""
ALERT_DESTINATIONS_DDL = f"""
CREATE TABLE IF NOT EXISTS alert_destinations (
    name            String,
    url_encrypted   String,
    masked          String,
    updated_at      DateTime64(6, 'UTC'),
{CHANGED}) {REPLACED} ORDER BY name
"""
ALERT_EPISODES_DDL = f"""
CREATE TABLE IF NOT EXISTS alert_episodes (
    episode         UInt64,
    rule_id         UInt64,
    rule_name       String,
    kind            LowCardinality(String),
    fired_at        DateTime64(6, 'UTC'),
    resolved_at     Nullable(DateTime64(6, 'UTC')),
    summary         String,
    runs            Int64,
    query           String,
    fired_by        String,
    checked_at      DateTime64(6, 'UTC'),
{CHANGED}) {REPLACED} ORDER BY episode
"""
ALERT_DELIVERIES_DDL = f"""
CREATE TABLE IF NOT EXISTS alert_deliveries (
    delivery        UInt64,
    episode         UInt64,
    event           LowCardinality(String),
    destination     String,
    queued_at       DateTime64(6, 'UTC'),
    outcome         LowCardinality(String),
    attempts        Int32,
    sent_at         Nullable(DateTime64(6, 'UTC')),
    reason          Nullable(String),
{CHANGED}) {REPLACED} ORDER BY delivery
"""
# Copied by `migrate` from an embedded store, in this order, with the columns the views name.
TABLES = {"runs": RUNS_DDL, "files": FILES_DDL, "rejects": REJECTS_DDL,
          "comments": COMMENTS_DDL, "handled": HANDLED_DDL, "retriggers": RETRIGGERS_DDL, "paused": PAUSED_DDL,
          "retrigger_claims": CLAIMS_DDL, "connections": CONNECTIONS_DDL, "audit": AUDIT_DDL,
          "alert_rules": ALERT_RULES_DDL, "alert_destinations": ALERT_DESTINATIONS_DDL,
          "alert_episodes": ALERT_EPISODES_DDL, "alert_deliveries": ALERT_DELIVERIES_DDL}
APPEND_ONLY = ("comments", "audit")  # plain MergeTree tables: no FINAL


def epoch_ms(column: str) -> str:
    """Milliseconds since 1970 of a DateTime64(6), rounded half away from zero as the embedded store's epoch_ms."""
    us = f"toUnixTimestamp64Micro({column})"
    return f"if({us} >= 0, intDiv({us} + 500, 1000), -intDiv(500 - {us}, 1000))"


def floor_div(expr: str, size: int) -> str:
    """`expr` divided by the positive constant `size`, rounded down as Python's // and DuckDB's // do (ClickHouse's
    intDiv rounds toward zero: an instant before 1970 would fall in the next slot)."""
    return f"intDiv({expr} - if({expr} < 0, {int(size) - 1}, 0), {int(size)})"


DAY_MS = 86_400_000

# The Runs page's columns as the `runs` view names them (DuckDB's fourgent/store/duckdb/schema.py RUN_COLUMNS).
TABLE_COLUMNS = ("id, reference, source || ' → ' || destination AS workflow, workflow_id, status, started_at, "
                 f"finished_at, {epoch_ms('finished_at')} - {epoch_ms('started_at')} AS duration_ms, error_message, "
                 "retrigger_of")
