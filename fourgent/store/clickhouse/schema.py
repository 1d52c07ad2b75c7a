"""The ClickHouse tables: the runs in a ReplacingMergeTree versioned by snapshot order, and what the reads join."""

from __future__ import annotations

# One row per snapshot, collapsed to the latest per run by `seq` (the spec's snapshot order: later line, later
# file, later ingest; docs/run-log.md rule 1). The sorting key is the dedup key: `started_at` first so the Runs
# page's newest-first pages read the last granules in order, `id` so two runs never collapse; a run's snapshots
# share both (started_at is when it started). A month per partition: retention drops whole partitions.
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
    search          String,
    INDEX search_ngrams search TYPE ngrambf_v1(3, 8192, 2, 0) GRANULARITY 1,
    INDEX status_set status TYPE set(16) GRANULARITY 1,
    INDEX workflow_set workflow_id TYPE set(1024) GRANULARITY 1,
    INDEX retrigger_of_bloom retrigger_of TYPE bloom_filter GRANULARITY 1
) ENGINE = ReplacingMergeTree(seq)
PARTITION BY toYYYYMM(started_at)
ORDER BY (started_at, id)
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
TABLES = {"runs": RUNS_DDL, "rejects": REJECTS_DDL, "comments": COMMENTS_DDL, "handled": HANDLED_DDL,
          "retriggers": RETRIGGERS_DDL}

# The Runs page's columns as the `runs` view names them (DuckDB's fourgent/store/duckdb/schema.py RUN_COLUMNS).
TABLE_COLUMNS = ("id, reference, source || ' → ' || destination AS workflow, workflow_id, status, started_at, "
                 "finished_at, if(finished_at IS NULL, NULL, dateDiff('millisecond', started_at, finished_at)) "
                 "AS duration_ms, error_message, retrigger_of")
