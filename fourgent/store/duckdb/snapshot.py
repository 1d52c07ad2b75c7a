"""The read-only copy of the documented views that ad-hoc SQL runs against, kept current by ingestion.

Explore and `python -m fourgent sql` never query the dashboard's database: a worker process opens an
in-memory DuckDB over these Parquet files (worker.py). The runs are one file per UTC day, so an ingest
rewrites only the days it changed: the same days the rollups recompute, marked in `fg.snapshot_days` in the
rollups' own transaction, so a crash before the files are written leaves the marks for the next ingest.
Comments, re-triggers, handled marks, the audit, alerts and rejected lines are small and rewritten whole
when they change. Each file is written under a temporary name and renamed, so a worker reads a whole day or the
previous one, never half a file.
"""

from __future__ import annotations

import os
from pathlib import Path

from .database import Cursor
from .sql import DAY_MS, DAY_SQL

RUNS, REJECTED, COMMENTS, RETRIGGERS, HANDLED, AUDIT = (
    "runs", "rejected_lines.parquet", "comments.parquet", "retriggers.parquet", "handled.parquet", "audit.parquet")
ALERTS = "alerts.parquet"
EMPTY = "empty.parquet"  # a day-less file with the runs' columns, so the worker's glob always matches


def _write(cur: Cursor, select: str, target: Path, params: list[object] | None = None) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    cur.execute(f"COPY ({select}) TO '{_quoted(tmp)}' (FORMAT parquet)", params or None)
    os.replace(tmp, target)


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")  # a path this module made, inside a SQL string literal


def _runs_select(where: str) -> str:
    return f"SELECT * FROM fg.snapshot_rows WHERE {where}"


def write_all(cur: Cursor, folder: Path) -> int:
    """The whole snapshot, from nothing (a new store, or one from before snapshots): returns the days written."""
    (folder / RUNS).mkdir(parents=True, exist_ok=True)
    cur.execute("INSERT OR IGNORE INTO fg.snapshot_days SELECT DISTINCT " + DAY_SQL + " FROM fg.runs")
    for view in WHOLE:
        write_view(cur, folder, view)
    return refresh(cur, folder)


def refresh(cur: Cursor, folder: Path) -> int:
    """Rewrite the files of the days marked in fg.snapshot_days (and the empty file if missing)."""
    runs = folder / RUNS
    runs.mkdir(parents=True, exist_ok=True)
    if not (runs / EMPTY).exists():
        _write(cur, _runs_select("false"), runs / EMPTY)
    days = [d for (d,) in cur.execute("SELECT day FROM fg.snapshot_days ORDER BY day").fetchall()]
    for day in days:
        target = runs / f"day-{day}.parquet"
        start, end = day * DAY_MS * 1000, (day + 1) * DAY_MS * 1000
        found = cur.execute("SELECT count(*) FROM fg.runs WHERE started_at >= make_timestamptz(?) "
                            "AND started_at < make_timestamptz(?)", [start, end]).fetchall()[0][0]
        if found:
            _write(cur, _runs_select("started_at >= make_timestamptz(?) AND started_at < make_timestamptz(?)"),
                   target, [start, end])
        else:
            target.unlink(missing_ok=True)
        cur.execute("DELETE FROM fg.snapshot_days WHERE day = ?", [day])
    return len(days)


# The small views, each one file, rewritten whole when it changes: view name -> file.
WHOLE = {"rejected_lines": REJECTED, "comments": COMMENTS, "retriggers": RETRIGGERS, "handled": HANDLED,
         "audit": AUDIT, "alerts": ALERTS}


def write_view(cur: Cursor, folder: Path, view: str) -> None:
    """Rewrite one small view's file (a WHOLE name, never user text)."""
    folder.mkdir(parents=True, exist_ok=True)
    _write(cur, f"SELECT * FROM {view}", folder / WHOLE[view])


def complete(cur: Cursor, folder: Path) -> None:
    """Write what the snapshot lacks: all of it for a store without one, else only the small views missing (one a
    later version added, such as `alerts`), so opening a 10M-run store does not rewrite every day's file."""
    if not (folder / RUNS / EMPTY).exists():
        write_all(cur, folder)
        return
    for view, name in WHOLE.items():
        if not (folder / name).exists():
            write_view(cur, folder, view)


def is_complete(folder: Path) -> bool:
    return all((folder / name).exists() for name in (f"{RUNS}/{EMPTY}", *WHOLE.values()))
