"""The DuckDB store's schema: every table in numbered migrations, and the documented views.

A store records the last migration it ran in `fg.meta` (`schema_version`); opening it runs the ones after
that, in order, each in its own transaction. Internal tables live in schema `fg`; users (and the SQL guard)
see only the views in `main`, documented column by column in docs/schema.md.
"""

from __future__ import annotations

from .sql import DAY_SQL, FAILED_APP_SQL, duration_sql

STEP_TYPE = (
    "STRUCT(name VARCHAR, app VARCHAR, status VARCHAR, attempts INTEGER,"
    " started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, error VARCHAR, input JSON, output JSON)"
)

_V1_RUNS_AND_LINES = f"""
CREATE SCHEMA IF NOT EXISTS fg;
CREATE TABLE IF NOT EXISTS fg.meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS fg.files (
    file_id     INTEGER PRIMARY KEY,
    path        VARCHAR NOT NULL UNIQUE,
    size        BIGINT NOT NULL,      -- bytes on disk when last read
    mtime_ns    BIGINT NOT NULL,
    "offset"    BIGINT NOT NULL,      -- bytes consumed (of the decompressed stream for .gz)
    lines       BIGINT NOT NULL,      -- complete lines consumed
    head_len    INTEGER NOT NULL,     -- how many leading bytes head_digest covers
    head_digest VARCHAR NOT NULL,     -- detects a file replaced by another of the same size or larger
    read_at     TIMESTAMPTZ NOT NULL
);
-- Current state: one row per run, its latest snapshot. Kept as a table, not a
-- view over all snapshots, so the Runs page stays near DuckDB's scan floor.
CREATE TABLE IF NOT EXISTS fg.runs (
    id              VARCHAR NOT NULL,
    reference       VARCHAR,
    workflow_id     VARCHAR NOT NULL,
    source          VARCHAR NOT NULL,
    destination     VARCHAR NOT NULL,
    source_app      VARCHAR,
    destination_app VARCHAR,
    status          VARCHAR NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ,
    error_message   VARCHAR,
    error_kind      VARCHAR,
    error_step      INTEGER,
    skip_reason     VARCHAR,
    retrigger_of    VARCHAR,
    attempt         INTEGER NOT NULL,
    trigger_payload JSON,
    result          JSON,
    steps           {STEP_TYPE}[],
    extra           JSON,             -- fields the spec does not name, kept verbatim
    file_id         INTEGER,          -- where this snapshot was read
    line            BIGINT,
    seq             BIGINT NOT NULL,  -- snapshot order across all ingests: later line, later file, later ingest
    search          VARCHAR NOT NULL  -- lower(reference || chr(31) || id): one column to scan for "Reference or ID"
);
CREATE TABLE IF NOT EXISTS fg.rejects (
    file_id     INTEGER NOT NULL,
    line        BIGINT NOT NULL,
    reason      VARCHAR NOT NULL,
    raw         VARCHAR,
    ingested_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS fg.ingests (
    started_at  TIMESTAMPTZ NOT NULL,
    seconds     DOUBLE NOT NULL,
    files       INTEGER NOT NULL,
    lines       BIGINT NOT NULL,
    snapshots   BIGINT NOT NULL,
    added       BIGINT NOT NULL,
    updated     BIGINT NOT NULL,
    superseded  BIGINT NOT NULL,
    rejected    BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS fg.comments (
    run_id     VARCHAR NOT NULL,
    author     VARCHAR NOT NULL,
    body       VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
"""

_V2_FAILED_APP = f"""
-- Failed runs: the failed step's app, else the destination app (kept so the Overview never reads the
-- wide steps column: 0.8 s at 10M runs).
ALTER TABLE fg.runs ADD COLUMN IF NOT EXISTS failed_app VARCHAR;
UPDATE fg.runs SET failed_app = {FAILED_APP_SQL} WHERE status = 'failed';
"""

_V3_ROLLUPS = f"""
-- Per-day rollups for the Overview (fourgent/store/duckdb/rollup.py keeps them; dirty_days marks what to redo).
CREATE TABLE IF NOT EXISTS fg.day_runs (
    day INTEGER NOT NULL, workflow_id VARCHAR NOT NULL, source VARCHAR, destination VARCHAR,
    status VARCHAR NOT NULL, error_kind VARCHAR, failed_app VARCHAR,
    runs BIGINT NOT NULL, unresolved BIGINT NOT NULL, first_started TIMESTAMPTZ, last_started TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS fg.day_durations (
    day INTEGER NOT NULL, workflow_id VARCHAR NOT NULL, bucket SMALLINT NOT NULL, runs BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS fg.dirty_days (day INTEGER PRIMARY KEY);
-- Rollups start empty: every day with runs is to be computed.
INSERT OR IGNORE INTO fg.dirty_days SELECT DISTINCT {DAY_SQL} FROM fg.runs;
"""

# Before version 4 these were created on first use, so a store of any version may hold them already.
_V4_LEDGER = """
CREATE TABLE IF NOT EXISTS fg.paused (
    workflow_id VARCHAR PRIMARY KEY,  -- a paused workflow is not re-triggered
    paused_at   TIMESTAMPTZ NOT NULL,
    paused_by   VARCHAR
);
CREATE TABLE IF NOT EXISTS fg.connections (
    app             VARCHAR PRIMARY KEY,
    base_url        VARCHAR NOT NULL,
    token_encrypted VARCHAR,          -- Fernet token; the key is not in this database
    token_hint      VARCHAR,          -- the last 4 characters, for a masked display
    updated_at      TIMESTAMPTZ NOT NULL,
    last_success_at TIMESTAMPTZ
);
ALTER TABLE fg.connections ADD COLUMN IF NOT EXISTS refused_at TIMESTAMPTZ;  -- the last call answered 401/403
-- One re-trigger per run at a time (a double click, a second tab); its owner column comes with version 22.
CREATE TABLE IF NOT EXISTS fg.retrigger_claims (run_id VARCHAR PRIMARY KEY, claimed_at TIMESTAMPTZ NOT NULL);
"""

_V5_SNAPSHOT = f"""
-- Days whose file of the read-only snapshot (snapshot.py) is to be rewritten; every day of an older store.
CREATE TABLE IF NOT EXISTS fg.snapshot_days (day INTEGER PRIMARY KEY);
INSERT OR IGNORE INTO fg.snapshot_days SELECT DISTINCT {DAY_SQL} FROM fg.runs;
"""

_V6_REJECTS_CAP = """
-- Rejected lines of a file past the ones kept (spec.REJECTS_KEPT_PER_FILE): counted here, their text not kept.
ALTER TABLE fg.files ADD COLUMN IF NOT EXISTS rejects_not_kept BIGINT DEFAULT 0;
"""

_V7_LINEAGE = f"""
-- The re-triggers Fourgent started (retrigger.py writes the row before the run starts): a log line's
-- "retrigger_of" is lineage only when it matches one; otherwise it is kept as a claim and trusted for nothing.
CREATE TABLE IF NOT EXISTS fg.retriggers (
    run_id         VARCHAR PRIMARY KEY,   -- the new run
    retrigger_of   VARCHAR NOT NULL,      -- the original it replays
    retriggered_by VARCHAR NOT NULL,
    retriggered_at TIMESTAMPTZ NOT NULL
);
ALTER TABLE fg.runs ADD COLUMN IF NOT EXISTS retrigger_claim VARCHAR;
-- Before this version lineage was the lines' word. Lines our executor (and the demo) wrote carry
-- retriggered_by: they are taken into the ledger once, so failures already replayed do not come back as
-- unresolved and get replayed twice; every other line's lineage becomes a claim.
INSERT OR IGNORE INTO fg.retriggers (run_id, retrigger_of, retriggered_by, retriggered_at)
SELECT id, retrigger_of, extra->>'retriggered_by',
       coalesce(try_cast(extra->>'retriggered_at' AS TIMESTAMPTZ), started_at)
FROM fg.runs
WHERE retrigger_of IS NOT NULL AND extra->>'retriggered_by' IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY id ORDER BY seq DESC) = 1;
UPDATE fg.runs SET retrigger_claim = retrigger_of, retrigger_of = NULL
WHERE retrigger_of IS NOT NULL AND id NOT IN (SELECT run_id FROM fg.retriggers);
INSERT OR IGNORE INTO fg.dirty_days SELECT DISTINCT {DAY_SQL} FROM fg.runs;
INSERT OR IGNORE INTO fg.snapshot_days SELECT DISTINCT {DAY_SQL} FROM fg.runs;
"""

_V8_AUDIT = """
-- Every action that changes something, refused and failed ones too (audit.perform). Append-only: the store
-- has no statement that updates or deletes a row here.
CREATE SEQUENCE IF NOT EXISTS fg.audit_entry;
CREATE TABLE IF NOT EXISTS fg.audit (
    entry    BIGINT PRIMARY KEY DEFAULT nextval('fg.audit_entry'),
    acted_at TIMESTAMPTZ NOT NULL,
    actor    VARCHAR NOT NULL,   -- a signed-in user's email, or an OS user marked (cli)
    role     VARCHAR NOT NULL,
    via      VARCHAR NOT NULL,   -- web, cli or single-user
    action   VARCHAR NOT NULL,
    target   VARCHAR,            -- a run, a workflow, an app, or a filter
    detail   JSON,               -- never a secret
    outcome  VARCHAR NOT NULL,   -- ok, refused or failed
    message  VARCHAR             -- why, when not ok
);
"""

_V9_HOUR_ROLLUPS = f"""
-- The rollups per UTC hour instead of per day, with re-triggers apart (fourgent/store/duckdb/rollup.py): the
-- Overview counts each original once and buckets days in the viewer's zone. Recomputed from the runs.
DROP TABLE IF EXISTS fg.day_runs;
DROP TABLE IF EXISTS fg.day_durations;
CREATE TABLE IF NOT EXISTS fg.hour_runs (
    hour INTEGER NOT NULL, workflow_id VARCHAR NOT NULL, source VARCHAR, destination VARCHAR,
    status VARCHAR NOT NULL, error_kind VARCHAR, failed_app VARCHAR, retrigger BOOLEAN NOT NULL,
    runs BIGINT NOT NULL, unresolved BIGINT NOT NULL, first_started TIMESTAMPTZ, last_started TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS fg.hour_durations (  -- of originals only
    hour INTEGER NOT NULL, workflow_id VARCHAR NOT NULL, bucket SMALLINT NOT NULL, runs BIGINT NOT NULL
);
INSERT OR IGNORE INTO fg.dirty_days SELECT DISTINCT {DAY_SQL} FROM fg.runs;
"""

_V10_OPERATOR_ACTIONS = f"""
-- What kind of re-trigger Fourgent started: a plain replay, one with an edited payload (and its diff), or a
-- re-run from a step (the steps before it reused from the original's recorded outputs).
ALTER TABLE fg.retriggers ADD COLUMN IF NOT EXISTS mode VARCHAR DEFAULT 'replay';  -- replay, edited, from step
ALTER TABLE fg.retriggers ADD COLUMN IF NOT EXISTS from_step INTEGER;  -- 1-based, for a re-run from a step
ALTER TABLE fg.retriggers ADD COLUMN IF NOT EXISTS payload_diff JSON;  -- [{{path, before, after}}] of an edit
-- Failures someone marked handled without a replay (a duplicate, a test record, fixed by hand): they keep their
-- status, leave the unresolved ones, and can be unmarked (the row is deleted; the audit keeps both acts).
CREATE TABLE IF NOT EXISTS fg.handled (
    run_id     VARCHAR PRIMARY KEY,
    handled_by VARCHAR NOT NULL,
    handled_at TIMESTAMPTZ NOT NULL,
    reason     VARCHAR NOT NULL
);
-- Unresolved counts in the rollups leave cancelled runs out from now on.
INSERT OR IGNORE INTO fg.dirty_days SELECT DISTINCT {DAY_SQL} FROM fg.runs WHERE error_kind = 'cancelled';
"""

_V20_ALERTS = """
-- Failure alerts (fourgent/alerts.py): rules, where they send, each episode of a rule's condition holding, and
-- each message of an episode. A rule has at most one open episode (resolved_at NULL): the store opens one only
-- under its write lock after finding none, so neither the dashboard's ticker nor `alerts check` fires twice.
CREATE SEQUENCE IF NOT EXISTS fg.alert_rule_id;
CREATE TABLE IF NOT EXISTS fg.alert_rules (
    rule_id          BIGINT PRIMARY KEY DEFAULT nextval('fg.alert_rule_id'),
    name             VARCHAR NOT NULL,
    kind             VARCHAR NOT NULL,   -- failure_rate, consecutive, error_kind, app, stuck, unresolved
    workflow_id      VARCHAR,            -- NULL: every workflow together
    subject          VARCHAR,            -- the error kind or the app of an error_kind or app rule
    threshold        DOUBLE NOT NULL,    -- a rate (0-1), a number of runs, or minutes (stuck)
    min_runs         INTEGER NOT NULL,   -- failure_rate: ended runs in the window before the rate counts
    window_minutes   INTEGER NOT NULL,   -- failure_rate, error_kind, app: the trailing window
    cooldown_minutes INTEGER NOT NULL,   -- after a resolve, no new episode for this long (flapping)
    destination      VARCHAR,            -- an alert_destinations name; NULL: history only
    enabled          BOOLEAN NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    updated_by       VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS fg.alert_destinations (
    name          VARCHAR PRIMARY KEY,
    url_encrypted VARCHAR NOT NULL,      -- an Apprise URL as a Fernet token; the key is not in this database
    masked        VARCHAR NOT NULL,      -- scheme and host only, for display
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS fg.alert_episode_id;
CREATE TABLE IF NOT EXISTS fg.alert_episodes (
    episode     BIGINT PRIMARY KEY DEFAULT nextval('fg.alert_episode_id'),
    rule_id     BIGINT NOT NULL,
    rule_name   VARCHAR NOT NULL,        -- as the rule was named when it fired
    kind        VARCHAR NOT NULL,
    fired_at    TIMESTAMPTZ NOT NULL,
    resolved_at TIMESTAMPTZ,
    summary     VARCHAR NOT NULL,        -- the condition in words, with its figures when it fired
    runs        BIGINT NOT NULL,         -- how many runs the link opens, counted when it fired
    query       VARCHAR NOT NULL,        -- the Runs page's query string of those runs (filters.RunsQuery)
    fired_by    VARCHAR NOT NULL,        -- dashboard or cli
    checked_at  TIMESTAMPTZ NOT NULL     -- the condition was last found still holding (or resolved) then
);
CREATE SEQUENCE IF NOT EXISTS fg.alert_delivery_id;
CREATE TABLE IF NOT EXISTS fg.alert_deliveries (
    delivery    BIGINT PRIMARY KEY DEFAULT nextval('fg.alert_delivery_id'),
    episode     BIGINT NOT NULL,
    event       VARCHAR NOT NULL,        -- fired or resolved
    destination VARCHAR NOT NULL,
    queued_at   TIMESTAMPTZ NOT NULL,    -- in the episode's own transaction: a crash before sending loses nothing
    outcome     VARCHAR NOT NULL,        -- pending, delivered or undelivered
    attempts    INTEGER NOT NULL,
    sent_at     TIMESTAMPTZ,
    reason      VARCHAR                  -- why undelivered, never the destination's URL
);
"""

_V21_FILE_IDENTITY = """
-- Log files are followed by identity and content, not by name (rotation.py): a rotated file is read on to its end
-- where rotation put it; a name that holds another file is a new file, and the earlier one keeps its rejected lines.
ALTER TABLE fg.files ADD COLUMN IF NOT EXISTS dev UBIGINT;          -- device and inode when last read
ALTER TABLE fg.files ADD COLUMN IF NOT EXISTS ino UBIGINT;
ALTER TABLE fg.files ADD COLUMN IF NOT EXISTS tail_digest VARCHAR;  -- of the 4 KB before "offset" (plain files)
ALTER TABLE fg.files ADD COLUMN IF NOT EXISTS gone BOOLEAN DEFAULT false;  -- content nowhere now: never read again
"""

_V22_LIVE_OWNERS = """
-- A re-trigger claim and a replay belong to the process that made them ("pid:start", process.py): a claim of a
-- process that is gone is released at once, a replay it left running is marked interrupted (recovery.py).
ALTER TABLE fg.retrigger_claims ADD COLUMN IF NOT EXISTS owner VARCHAR;
ALTER TABLE fg.retriggers ADD COLUMN IF NOT EXISTS owner VARCHAR;  -- NULL: lineage read from logs, run elsewhere
"""

# (version, DDL): append a new one to change the schema; never edit one that has shipped.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, _V1_RUNS_AND_LINES),
    (2, _V2_FAILED_APP),
    (3, _V3_ROLLUPS),
    (4, _V4_LEDGER),
    (5, _V5_SNAPSHOT),
    (6, _V6_REJECTS_CAP),
    (7, _V7_LINEAGE),
    (8, _V8_AUDIT),
    (9, _V9_HOUR_ROLLUPS),
    (10, _V10_OPERATOR_ACTIONS),
    (20, _V20_ALERTS),
    (21, _V21_FILE_IDENTITY),
    (22, _V22_LIVE_OWNERS),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

# The columns of the `runs` view, as the Runs page and the snapshot read them from fg.runs.
RUN_COLUMNS = f"""id, reference, workflow_id,
       source || ' → ' || destination AS workflow,
       source, destination, source_app, destination_app, status,
       started_at, finished_at,
       {duration_sql()} AS duration_ms,
       error_message, error_kind, error_step, skip_reason, retrigger_of, retrigger_claim, attempt,
       len(steps) AS step_count, trigger_payload, result, updated_at, extra,
       failed_app"""

# The documented SQL surface (docs/schema.md; a test compares the two). Recreated on every open.
VIEWS = f"""
CREATE OR REPLACE VIEW fg.run_rows AS SELECT {RUN_COLUMNS}, search FROM fg.runs;
-- What the snapshot keeps of each run: the `runs` view's columns and the steps the worker unnests.
CREATE OR REPLACE VIEW fg.snapshot_rows AS SELECT {RUN_COLUMNS}, steps FROM fg.runs;

CREATE OR REPLACE VIEW main.runs AS SELECT * EXCLUDE (search) FROM fg.run_rows;

CREATE OR REPLACE VIEW main.steps AS
SELECT run_id, step_index, s.name, s.app, s.status, s.attempts, s.started_at, s.finished_at,
       {duration_sql('s.')} AS duration_ms,
       s.error, s.input, s.output
FROM (SELECT id AS run_id, unnest(range(len(steps))) AS step_index, unnest(steps) AS s
      FROM fg.runs);

CREATE OR REPLACE VIEW main.rejected_lines AS
SELECT f.path AS file, r.line, r.reason, r.raw, r.ingested_at
FROM fg.rejects r JOIN fg.files f USING (file_id);

CREATE OR REPLACE VIEW main.comments AS
SELECT run_id, author, body, created_at FROM fg.comments;

CREATE OR REPLACE VIEW main.retriggers AS
SELECT run_id, retrigger_of, retriggered_by, retriggered_at, mode, from_step, payload_diff FROM fg.retriggers;

CREATE OR REPLACE VIEW main.handled AS
SELECT run_id, handled_by, handled_at, reason FROM fg.handled;

CREATE OR REPLACE VIEW main.audit AS
SELECT entry, acted_at, actor, role, via, action, target, detail, outcome, message FROM fg.audit;

CREATE OR REPLACE VIEW main.alerts AS
SELECT e.episode, e.rule_id, e.rule_name AS rule, e.kind, e.fired_at, e.resolved_at,
       CASE WHEN e.resolved_at IS NULL THEN 'firing' ELSE 'resolved' END AS state,
       e.summary, e.runs, e.query, e.fired_by, e.checked_at,
       (SELECT any_value(d.destination) FROM fg.alert_deliveries d WHERE d.episode = e.episode) AS destination,
       (SELECT any_value(d.outcome) FROM fg.alert_deliveries d
        WHERE d.episode = e.episode AND d.event = 'fired') AS fired_delivery,
       (SELECT any_value(d.outcome) FROM fg.alert_deliveries d
        WHERE d.episode = e.episode AND d.event = 'resolved') AS resolved_delivery
FROM fg.alert_episodes e;
"""

