"""Ad-hoc SQL in a worker process of its own, over the read-only snapshot, with hard OS limits.

The parent (`run`) starts a Python process that caps its own address space (RLIMIT_AS, a hard limit) before
it imports anything, hands it one query on stdin and kills it at the time limit. The worker opens
an in-memory DuckDB whose only files are the snapshot's (external access off, configuration locked),
defines the four documented views over them, checks the query with the same guard as before (its parser,
syntax-tree and plan layers), runs it and writes the kept rows back as Arrow IPC. So a write can touch
nothing real, a crash costs one query, and a runaway is killed on time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.ipc

from ...config import SQL_MAX_ROWS, SQL_TIME_LIMIT_S
from ..errors import QueryError, QueryFailed, QueryRefused, QueryStopped
from ..records import SqlResult
from . import adhoc, guard, snapshot
from .schema import duration_sql

ROOT = Path(__file__).resolve().parents[3]  # where `fourgent` is importable from, whatever the caller's folder
MEMORY_ENV = "FOURGENT_SQL_MEMORY"  # the worker's address-space cap, e.g. "2GB"
DEFAULT_MEMORY = 4 << 30  # the slowest-steps example over 10M runs' 40M steps needs more than 2 GB
STARTUP_S = 1.5  # what a worker may take to start (Python, DuckDB, the views: 0.45 s measured) before its time
KILL_GRACE_S = 0.5  # past its time limit, the worker's own interrupt gets this long before the kill
_UNITS = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}


def memory_cap() -> int:
    """Bytes of address space a worker may use: $FOURGENT_SQL_MEMORY (e.g. 2GB), else 4 GB."""
    text = os.environ.get(MEMORY_ENV, "").strip().upper().replace(" ", "")
    for unit, size in _UNITS.items():
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return int(float(text[: -len(unit)]) * size)
    return int(text) if text.isdigit() else DEFAULT_MEMORY


def run(folder: Path, sql: str, *, max_rows: int = SQL_MAX_ROWS, time_limit: float = SQL_TIME_LIMIT_S,
        memory: int | None = None, interrupt: bool = True, with_audit: bool = False) -> SqlResult:
    """Run one query in a fresh worker over the snapshot in `folder`; raise QueryRefused, QueryStopped,
    QueryFailed or QueryError in words, whatever happens to the worker.

    The worker interrupts its own query at the time limit (a clean message); what DuckDB does not stop when
    interrupted (pattern matching, constant folding) is killed STARTUP_S + KILL_GRACE_S later at the most.
    `interrupt=False` leaves only the kill (the tests prove it holds alone). `with_audit`: the `audit` view
    reads the audit (an admin's query); otherwise reading it fails in words."""
    cap = memory or memory_cap()
    request = json.dumps({"folder": str(folder), "sql": sql, "max_rows": max_rows, "memory": cap,
                          "audit": with_audit,
                          "time_limit": time_limit if interrupt else 10 * (STARTUP_S + time_limit)}).encode()
    started = time.perf_counter()
    # The child caps itself before it imports anything: the dashboard is threaded, where preexec_fn is unsafe,
    # and a hard limit once set cannot be raised again by what runs after it (a query cannot run Python).
    program = (f"import resource, sys; resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap})); "
               "resource.setrlimit(resource.RLIMIT_CORE, (0, 0)); "
               "from fourgent.store.duckdb.worker import main; sys.exit(main())")
    proc = subprocess.Popen(  # noqa: S603 - our own module, by sys.executable
        [sys.executable, "-c", program], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=ROOT, start_new_session=True)
    try:
        out, err = proc.communicate(request, timeout=STARTUP_S + time_limit + KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise QueryStopped(f"The query was stopped after its time limit of {time_limit:g} s. "
                           "Narrow it (a WHERE on started_at, a LIMIT) and run it again.") from None
    if proc.returncode != 0:
        raise QueryFailed(_death(proc.returncode, err))
    header, _, body = out.partition(b"\n")
    try:
        answer = json.loads(header)
    except ValueError:
        raise QueryFailed("The query's worker answered something unreadable; nothing else was affected.") from None
    if "error" in answer:
        kind = {"refused": QueryRefused, "stopped": QueryStopped, "failed": QueryFailed}.get(answer["error"],
                                                                                            QueryError)
        raise kind(answer["message"])
    table = pa.ipc.open_stream(body).read_all()
    import polars as pl

    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)  # a Table always comes back as a DataFrame
    return SqlResult(frame, int(answer["total"]), time.perf_counter() - started)


def _death(code: int, err: bytes) -> str:
    if code < 0 and -code == signal.SIGSEGV:
        return "The query crashed the SQL engine (segmentation fault); nothing else was affected. Simplify it."
    if code < 0:
        return f"The query's worker was stopped by signal {signal.Signals(-code).name}; nothing else was affected."
    last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
    if "MemoryError" in last[0] or "bad_alloc" in last[0]:
        return "The query ran out of the memory a query may use. Narrow it (a WHERE, a LIMIT) and run it again."
    return f"The query's worker failed ({last[0][:300]})."


# ---------------------------------------------------------------- the worker's side

def views_sql(folder: Path) -> str:
    """The documented views over the snapshot's files (paths this module made, quoted as literals)."""
    q = str(folder).replace("'", "''")
    return f"""
    CREATE VIEW fg_runs AS SELECT * FROM read_parquet('{q}/{snapshot.RUNS}/*.parquet', union_by_name = true);
    CREATE VIEW runs AS SELECT * EXCLUDE (steps) FROM fg_runs;
    CREATE VIEW steps AS
    SELECT run_id, step_index, s.name, s.app, s.status, s.attempts, s.started_at, s.finished_at,
           {duration_sql('s.')} AS duration_ms, s.error, s.input, s.output
    FROM (SELECT id AS run_id, unnest(range(len(steps))) AS step_index, unnest(steps) AS s FROM fg_runs);
    CREATE VIEW rejected_lines AS SELECT * FROM read_parquet('{q}/{snapshot.REJECTED}');
    CREATE VIEW comments AS SELECT * FROM read_parquet('{q}/{snapshot.COMMENTS}');
    CREATE VIEW retriggers AS SELECT * FROM read_parquet('{q}/{snapshot.RETRIGGERS}');
    CREATE VIEW handled AS SELECT * FROM read_parquet('{q}/{snapshot.HANDLED}');
    CREATE VIEW audit AS SELECT * FROM read_parquet('{q}/{snapshot.AUDIT}');
    CREATE VIEW alerts AS SELECT * FROM read_parquet('{q}/{snapshot.ALERTS}');
    """


# What the worker's plans may read: generated rows, and the snapshot's files through the views (a query
# cannot name read_parquet itself: the guard allows no such table function, and no other folder is readable).
LEAVES = guard.ALLOWED_LEAVES | {"READ_PARQUET"}


# What `audit` is for a query that may not read it: the same name, so the message is this one.
NO_AUDIT_SQL = "CREATE OR REPLACE VIEW audit AS SELECT * FROM range(1) WHERE error('The audit is for admins.')"


def open_snapshot(folder: Path, memory: int, with_audit: bool = True) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that can read the snapshot's files and nothing else, its settings locked."""
    con = duckdb.connect(":memory:")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    con.execute("SET memory_limit = ?", [f"{max(memory // 2, 64 << 20) // (1 << 20)}MB"])
    con.execute("SET threads = 2")
    con.execute("SET enable_progress_bar = false")  # it would print to stdout, where the answer goes
    con.execute("SET allowed_directories = ?", [[str(folder)]])
    con.execute("SET enable_external_access = false")
    con.execute(views_sql(folder))
    if not with_audit:
        con.execute(NO_AUDIT_SQL)
    con.execute("SET lock_configuration = true")
    return con


def main() -> int:
    request = json.loads(sys.stdin.buffer.read())
    folder = Path(request["folder"])
    out = sys.stdout.buffer

    def answer(header: dict[str, object], body: bytes = b"") -> int:
        out.write(json.dumps(header).encode() + b"\n" + body)
        out.flush()
        return 0

    if not snapshot.is_complete(folder):
        return answer({"error": "failed", "message": "The read-only copy of the views is not written yet: "
                                                     "it is made by the next ingest. Try again in a few seconds."})
    con = open_snapshot(folder, int(request["memory"]), with_audit=bool(request.get("audit")))
    try:
        result = adhoc.run(con, request["sql"], max_rows=int(request["max_rows"]),
                           time_limit=float(request["time_limit"]), leaves=LEAVES)
    except QueryRefused as exc:
        return answer({"error": "refused", "message": str(exc)})
    except QueryStopped as exc:
        return answer({"error": "stopped", "message": str(exc)})
    except QueryFailed as exc:
        return answer({"error": "failed", "message": str(exc)})
    except QueryError as exc:
        return answer({"error": "engine", "message": str(exc)})
    sink = pa.BufferOutputStream()
    table = result.frame.to_arrow()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return answer({"total": result.total}, sink.getvalue().to_pybytes())


