"""The DuckDB store: one database instance per process, its tables, and the SQL views users query."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

SCHEMA_VERSION = 3  # 2: fg.runs.failed_app; 3: the per-day rollups
# The app a failed run failed at: its failed step's app, else the workflow's destination app.
FAILED_APP_SQL = ("CASE WHEN status = 'failed' THEN coalesce(list_extract(steps, error_step + 1).app, "
                  "destination_app) END")

STEP_TYPE = (
    "STRUCT(name VARCHAR, app VARCHAR, status VARCHAR, attempts INTEGER,"
    " started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, error VARCHAR, input JSON, output JSON)"
)

# Internal tables live in schema `fg`; users (and the SQL guard) see only the views in `main`.
_TABLES = f"""
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
    search          VARCHAR NOT NULL, -- lower(reference || chr(31) || id): one column to scan for "Reference or ID"
    failed_app      VARCHAR           -- failed runs: the failed step's app, else the destination app (kept so the
                                      -- Overview never reads the wide steps column: 0.8 s at 10M runs)
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
-- Per-day rollups for the Overview (fourgent/rollup.py keeps them; dirty_days marks what to redo).
CREATE TABLE IF NOT EXISTS fg.day_runs (
    day INTEGER NOT NULL, workflow_id VARCHAR NOT NULL, source VARCHAR, destination VARCHAR,
    status VARCHAR NOT NULL, error_kind VARCHAR, failed_app VARCHAR,
    runs BIGINT NOT NULL, unresolved BIGINT NOT NULL, first_started TIMESTAMPTZ, last_started TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS fg.day_durations (
    day INTEGER NOT NULL, workflow_id VARCHAR NOT NULL, bucket SMALLINT NOT NULL, runs BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS fg.dirty_days (day INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS fg.paused (
    workflow_id VARCHAR PRIMARY KEY,  -- a paused workflow is not re-triggered
    paused_at   TIMESTAMPTZ NOT NULL,
    paused_by   VARCHAR
);
CREATE TABLE IF NOT EXISTS fg.comments (
    run_id     VARCHAR NOT NULL,
    author     VARCHAR NOT NULL,
    body       VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
"""

# The documented SQL surface (docs/schema.md). Change a column here and there together.
_VIEWS = """
CREATE OR REPLACE VIEW fg.run_rows AS
SELECT id, reference, workflow_id,
       source || ' → ' || destination AS workflow,
       source, destination, source_app, destination_app, status,
       started_at, finished_at,
       epoch_ms(finished_at) - epoch_ms(started_at) AS duration_ms,  -- date_diff was 5x slower
       error_message, error_kind, error_step, skip_reason, retrigger_of, attempt,
       len(steps) AS step_count, trigger_payload, result, updated_at, extra,
       failed_app, search
FROM fg.runs;

CREATE OR REPLACE VIEW main.runs AS SELECT * EXCLUDE (search) FROM fg.run_rows;

CREATE OR REPLACE VIEW main.steps AS
SELECT run_id, step_index, s.name, s.app, s.status, s.attempts, s.started_at, s.finished_at,
       epoch_ms(s.finished_at) - epoch_ms(s.started_at) AS duration_ms,
       s.error, s.input, s.output
FROM (SELECT id AS run_id, unnest(range(len(steps))) AS step_index, unnest(steps) AS s
      FROM fg.runs);

CREATE OR REPLACE VIEW main.rejected_lines AS
SELECT f.path AS file, r.line, r.reason, r.raw, r.ingested_at
FROM fg.rejects r JOIN fg.files f USING (file_id);

CREATE OR REPLACE VIEW main.comments AS
SELECT run_id, author, body, created_at FROM fg.comments;
"""

SURFACE = ("runs", "steps", "rejected_lines", "comments")


class StoreBusy(RuntimeError):
    """Another process holds the store file (DuckDB allows one process per file)."""

    def __init__(self, path: Path, pid: int | None) -> None:
        self.path = path
        self.pid = pid
        holder = f"process {pid}" if pid else "another process"
        super().__init__(
            f"The store {path} is in use by {holder} (usually the running dashboard). "
            "DuckDB lets one process open it at a time."
        )


class Store:
    """One DuckDB database instance; share it within the process and take a cursor per thread."""

    def __init__(self, path: Path | str, *, read_only: bool = False, memory_limit: str | None = None) -> None:
        self.path = Path(path)
        self.read_only = read_only
        # Serialises writers inside this process: one ingest or comment transaction at a time.
        self.write_lock = threading.RLock()
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            raise _busy_or_raise(self.path, exc) from exc
        # Every timestamp leaves the store in UTC; pages convert for display.
        self.con.execute("SET GLOBAL TimeZone = 'UTC'")
        # Nothing is fetched or loaded behind the user's back: a function name in an ad-hoc query
        # must not make DuckDB download an extension.
        self.con.execute("SET autoinstall_known_extensions = false")
        self.con.execute("SET autoload_known_extensions = false")
        if memory_limit:  # the instance's, so every query's (ingest and ad-hoc SQL alike): DuckDB has no per-query one
            self.con.execute("SET memory_limit = ?", [memory_limit])
        if not read_only:
            self._migrate()

    def _migrate(self) -> None:
        with self.write_lock:
            self.con.execute(_TABLES)
            version = self.con.execute("SELECT value FROM fg.meta WHERE key = 'schema_version'").fetchall()
            if version and int(version[0][0]) < 2:  # a store from before failed_app: add and fill it once
                self.con.execute("ALTER TABLE fg.runs ADD COLUMN IF NOT EXISTS failed_app VARCHAR")
                self.con.execute(f"UPDATE fg.runs SET failed_app = {FAILED_APP_SQL} WHERE status = 'failed'")
            if version and int(version[0][0]) < 3:  # rollups start empty: every day is to be computed
                self.con.execute("INSERT OR IGNORE INTO fg.dirty_days "
                                 "SELECT DISTINCT epoch_ms(started_at) // 86400000 FROM fg.runs")
            self.con.execute(
                "INSERT OR REPLACE INTO fg.meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
            )
            self.con.execute(_VIEWS)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection to this same instance for the calling thread (DuckDB connections are not thread-safe)."""
        return self.con.cursor()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A new cursor inside BEGIN … COMMIT, rolled back on any exception."""
        with self.write_lock:
            cur = self.cursor()
            try:
                with in_transaction(cur):
                    yield cur
            finally:
                cur.close()

    def run_count(self) -> int:
        return self.cursor().execute("SELECT count(*) FROM fg.runs").fetchall()[0][0]

    def close(self) -> None:
        self.con.close()
        with _instances_lock:
            if _instances.get(self.path.resolve()) is self:
                del _instances[self.path.resolve()]


@contextmanager
def in_transaction(cur: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN … COMMIT on this cursor, rolled back on any exception."""
    cur.execute("BEGIN TRANSACTION")
    try:
        yield cur
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    cur.execute("COMMIT")


_instances: dict[Path, Store] = {}
_instances_lock = threading.Lock()


def open_store(path: Path | str, *, read_only: bool = False) -> Store:
    """The process's one Store for `path`, opened on first use (DuckDB refuses a second instance of a file)."""
    key = Path(path).resolve()
    with _instances_lock:
        store = _instances.get(key)
        if store is None:
            store = Store(key, read_only=read_only, memory_limit=os.environ.get("FOURGENT_MEMORY_LIMIT") or None)
            _instances[key] = store
        elif store.read_only and not read_only:
            raise RuntimeError(f"{key} is already open read-only in this process")
        return store


_PID = re.compile(r"\(PID (\d+)\)")


def _busy_or_raise(path: Path, exc: duckdb.IOException) -> Exception:
    text = str(exc)
    if "lock" not in text.lower():
        return exc
    match = _PID.search(text)
    return StoreBusy(path, int(match.group(1)) if match else None)
