"""The ClickHouse tables: the runs in a ReplacingMergeTree versioned by snapshot order, and what the reads join."""

from __future__ import annotations

# Rows collapse to the one with the highest `seq` among those of equal sorting key. A copy of the embedded store
# (`migrate`) holds one row per run, its latest snapshot by the spec's rule 1, so `seq` only has to order what a
# later copy or ingest adds. The sorting key is the dedup key: `started_at` first so the Runs page's newest-first
# pages read the last granules in order, `id` so two runs never collapse. Not yet right for ingest straight into
# ClickHouse: a later snapshot whose started_at differs would be a second row (the embedded store replaces the
# whole row), and rule 1 orders by updated_at before position. A month per partition: retention drops whole ones.
# `status` and `workflow_id` cannot be in the key (a snapshot changes the status); set skip indexes let a
# filtered count pass over granules without them, and the n-gram bloom filter does the same for a search.
RUNS_DDL = """
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
"""
# Rejected lines past the per-file cap that were counted but not kept (the embedded store's files.rejects_not_kept).
REJECTS_NOT_KEPT_DDL = """
CREATE TABLE IF NOT EXISTS rejects_not_kept (
    file    String,
    lines   UInt64
) ENGINE = MergeTree ORDER BY file
"""
REJECTS_DDL = """
CREATE TABLE IF NOT EXISTS rejects (
    file        String,
    line        UInt64,
    reason      String,
    raw         Nullable(String),
    ingested_at DateTime64(6, 'UTC')
) ENGINE = MergeTree ORDER BY (ingested_at, file, line)
"""
COMMENTS_DDL = """
CREATE TABLE IF NOT EXISTS comments (
    run_id     String,
    author     String,
    body       String,
    created_at DateTime64(6, 'UTC')
) ENGINE = MergeTree ORDER BY (run_id, created_at)
"""
HANDLED_DDL = """
CREATE TABLE IF NOT EXISTS handled (
    run_id     String,
    handled_by String,
    handled_at DateTime64(6, 'UTC'),
    reason     String
) ENGINE = ReplacingMergeTree(handled_at) ORDER BY run_id
"""
RETRIGGERS_DDL = """
CREATE TABLE IF NOT EXISTS retriggers (
    run_id         String,
    retrigger_of   String,
    retriggered_by Nullable(String),
    retriggered_at DateTime64(6, 'UTC'),
    mode           LowCardinality(String),
    from_step      Nullable(Int32),
    payload_diff   Nullable(String)
) ENGINE = ReplacingMergeTree(retriggered_at) ORDER BY run_id
"""
# Copied by `migrate` from an embedded store, in this order, with the columns the views name.
TABLES = {"runs": RUNS_DDL, "rejects": REJECTS_DDL, "rejects_not_kept": REJECTS_NOT_KEPT_DDL,
          "comments": COMMENTS_DDL, "handled": HANDLED_DDL, "retriggers": RETRIGGERS_DDL}


def epoch_ms(column: str) -> str:
    """Milliseconds since 1970 of a DateTime64(6), rounded half away from zero as the embedded store's epoch_ms."""
    us = f"toUnixTimestamp64Micro({column})"
    return f"if({us} >= 0, intDiv({us} + 500, 1000), -intDiv(500 - {us}, 1000))"


DAY_MS = 86_400_000

# The Runs page's columns as the `runs` view names them (DuckDB's fourgent/store/duckdb/schema.py RUN_COLUMNS).
TABLE_COLUMNS = ("id, reference, source || ' → ' || destination AS workflow, workflow_id, status, started_at, "
                 f"finished_at, {epoch_ms('finished_at')} - {epoch_ms('started_at')} AS duration_ms, error_message, "
                 "retrigger_of")
