"""The Runs page's reads over `fg.run_rows`: one filter, bound parameters, one page at a time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

import polars as pl
import pyarrow as pa

from ...filters import RunFilter
from ...spec import CANCELLED_KIND, STATUSES
from ..records import RunsView
from .database import Cursor
from .sql import (
    DAY_SQL,
    RUN_ROWS,
    UNFIXABLE_PARAMS,
    UNFIXABLE_SQL,
    WAITING_SQL,
    WORKFLOW_NAME_SQL,
    leave_out_where,
    run_where,
)

TABLE_COLUMNS = ("id, reference, workflow, workflow_id, status, started_at, finished_at, duration_ms, error_message, "
                 "retrigger_of")


def frame(cur: Cursor, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
    return cur.sql(sql, params=params or None).pl()


def page(cur: Cursor, f: RunFilter, *, page: int = 1, size: int = 50,
         order: Literal["newest", "oldest"] = "newest", columns: str = TABLE_COLUMNS) -> pl.DataFrame:
    """One page of runs, newest (or oldest) first; ties broken by ID so pages never overlap."""
    where, params = run_where(f)
    direction = "DESC" if order == "newest" else "ASC"
    sql = (f"SELECT {columns} FROM {RUN_ROWS}{where} ORDER BY started_at {direction}, id {direction} "
           "LIMIT ? OFFSET ?")
    return frame(cur, sql, [*params, size, max(page - 1, 0) * size])


def count(cur: Cursor, f: RunFilter) -> int:
    where, params = run_where(f)
    return int(cur.execute(f"SELECT count(*) FROM {RUN_ROWS}{where}", params).fetchall()[0][0])


def status_counts(cur: Cursor, f: RunFilter) -> dict[str, int]:
    """Runs per status under the filter's other conditions (so each status count stays clickable)."""
    where, params = run_where(replace(f, statuses=()))
    found = dict(cur.execute(f"SELECT status, count(*) FROM {RUN_ROWS}{where} GROUP BY status", params).fetchall())
    return {s: found.get(s, 0) for s in STATUSES}


def daily_counts(cur: Cursor, f: RunFilter) -> pl.DataFrame:
    """Runs per whole UTC day and status: day, status, runs."""
    where, params = run_where(f)
    return frame(
        cur,
        f"SELECT to_timestamp(d * 86400) AS day, status, runs FROM ("
        f"SELECT {DAY_SQL} AS d, status, count(*) AS runs FROM {RUN_ROWS}{where} "
        "GROUP BY ALL) ORDER BY day, status",
        params,
    )


def latest_retriggers(cur: Cursor, ids: Sequence[str]) -> dict[str, str]:
    """The status of the latest re-trigger of each of these runs (those re-triggered): one query per page."""
    if not ids:
        return {}
    rows = cur.execute(
        f"SELECT retrigger_of, arg_max(status, started_at) FROM {RUN_ROWS} "
        "WHERE retrigger_of IN (SELECT unnest(?::VARCHAR[])) GROUP BY 1", [list(ids)]).fetchall()
    return dict(rows)


def marks(cur: Cursor, ids: Sequence[str]) -> dict[str, str]:
    """For a page of runs: "cancelled" or "handled" for a failure that is so, and how a re-trigger among them was
    made when not a plain replay ("edited", "from step N"). One query."""
    if not ids:
        return {}
    # One mark per run, by rank: a cancelled replay reads "cancelled", not how it was made.
    return dict(cur.execute(
        f"SELECT run_id, arg_min(mark, rank) FROM ("
        f"SELECT id AS run_id, 'cancelled' AS mark, 0 AS rank FROM {RUN_ROWS} "
        f"WHERE id IN (SELECT unnest($ids::VARCHAR[])) AND status = 'failed' AND error_kind = '{CANCELLED_KIND}' "
        "UNION ALL SELECT run_id, 'handled', 1 FROM fg.handled WHERE run_id IN (SELECT unnest($ids::VARCHAR[])) "
        "UNION ALL SELECT run_id, CASE WHEN mode = 'from step' THEN 'from step ' || from_step ELSE mode END, 2 "
        "FROM fg.retriggers WHERE run_id IN (SELECT unnest($ids::VARCHAR[])) AND mode <> 'replay') GROUP BY run_id",
        {"ids": list(ids)}).fetchall())


def comment_counts(cur: Cursor, ids: Sequence[str]) -> dict[str, int]:
    """Comment counts for a page of runs, in one query."""
    if not ids:
        return {}
    rows = cur.execute(
        "SELECT run_id, count(*) FROM comments WHERE run_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY run_id",
        [list(ids)]).fetchall()
    return dict(rows)


def select_ids(cur: Cursor, f: RunFilter, *, limit: int = 100_000, waiting_apps: Sequence[str] = (),
               unfixable: bool = False) -> list[str]:
    """Run IDs under a filter (newest first), for bulk actions; leaving out the auth failures of
    `waiting_apps` and, with `unfixable`, validation failures a replay cannot fix (sql.leave_out_where)."""
    where, params = run_where(f)
    left_out, more = leave_out_where(waiting_apps, unfixable)
    if left_out:
        where = (where + left_out) if where else " WHERE true" + left_out
    sql = f"SELECT id FROM {RUN_ROWS}{where} ORDER BY started_at DESC, id DESC LIMIT ?"
    return [r[0] for r in cur.execute(sql, [*params, *more, limit]).fetchall()]


def futile_split(cur: Cursor, f: RunFilter, waiting_apps: Sequence[str]) -> tuple[dict[str, int], int]:
    """Of the runs under `f`: the auth failures per app of `waiting_apps`, and the validation failures a
    replay cannot fix (what a bulk re-trigger leaves out by default). One pass."""
    where, params = run_where(f)
    where = where or " WHERE true"
    rows = cur.execute(
        f"SELECT CASE WHEN {WAITING_SQL} THEN failed_app END AS app, count(*) FROM {RUN_ROWS}{where} "
        f"AND ({WAITING_SQL} OR {UNFIXABLE_SQL}) GROUP BY 1",
        [list(waiting_apps), *params, list(waiting_apps), *UNFIXABLE_PARAMS]).fetchall()
    waiting = {app: n for app, n in rows if app is not None}
    return waiting, sum(n for app, n in rows if app is None)


def auth_failures_by_app(cur: Cursor, days: int = 7) -> dict[str, tuple[int, datetime]]:
    """Failed runs of the last `days` days with kind `auth`, by the app of the step that failed: (count, latest)."""
    rows = cur.execute(
        "SELECT failed_app, count(*), max(started_at) "
        "FROM fg.runs WHERE status = 'failed' AND error_kind = 'auth' AND started_at >= now() - to_days(?) "
        "GROUP BY ALL", [days]).fetchall()
    return {app: (n, last) for app, n, last in rows if app}


def find_exact(cur: Cursor, run_id: str) -> bool:
    return bool(cur.execute(f"SELECT count(*) FROM {RUN_ROWS} WHERE id = ?", [run_id]).fetchall()[0][0])


def workflows(cur: Cursor) -> list[tuple[str, str]]:
    """(workflow_id, display name) of every integration with runs."""
    # Grouped on the stored columns, then named: building `workflow` for every row took 130 ms at 10M runs.
    return cur.execute(
        f"SELECT workflow_id, {WORKFLOW_NAME_SQL} AS name FROM fg.runs GROUP BY workflow_id ORDER BY name"
    ).fetchall()


def rejected(cur: Cursor, limit: int = 500) -> pl.DataFrame:
    """The newest rejected lines: file, line, reason, raw, ingested_at."""
    return frame(cur, "SELECT file, line, reason, raw, ingested_at FROM rejected_lines "
                      "ORDER BY ingested_at DESC, file, line LIMIT ?", [limit])


def runs_view(cur: Cursor, f: RunFilter, *, number: int = 1, size: int = 50,
              order: Literal["newest", "oldest"] = "newest") -> RunsView:
    rows = page(cur, f, page=number, size=size, order=order)
    by_status = status_counts(cur, f)
    statuses = [s for s in f.statuses if s in STATUSES]
    total = sum(by_status[s] for s in statuses) if statuses else sum(by_status.values())
    q = f.q.strip()
    exact = q if q and find_exact(cur, q) else None
    ids = rows["id"].to_list()
    rejected_lines, store_runs = cur.execute(
        "SELECT (SELECT count(*) FROM fg.rejects) + coalesce((SELECT sum(rejects_not_kept) FROM fg.files), 0)"
        f"::BIGINT, (SELECT count(*) FROM {RUN_ROWS})").fetchall()[0]
    return RunsView(rows, total, by_status, exact, comment_counts(cur, ids), latest_retriggers(cur, ids),
                    rejected_lines, store_runs, marks(cur, ids))


# Columns an export may ask for beyond the view's: the status of a run's latest re-trigger.
LATEST_RETRIGGER_SQL = (f"(SELECT arg_max(c.status, c.started_at) FROM {RUN_ROWS} c "
                        "WHERE c.retrigger_of = r.id) AS latest_retrigger")


def export_batches(cur: Cursor, f: RunFilter, columns: Sequence[str], cap: int,
                   order: Literal["newest", "oldest"] = "newest", batch: int = 10_000) -> Iterator[pa.RecordBatch]:
    """The matching runs in the page's order, as Arrow batches of `columns` (at most `cap` rows);
    `latest_retrigger` is the status of each run's latest re-trigger."""
    where, params = run_where(f)
    select = ", ".join(LATEST_RETRIGGER_SQL if c == "latest_retrigger" else f"r.{c}" for c in columns)
    direction = "DESC" if order == "newest" else "ASC"
    # The filter's WHERE names the view's columns bare: it applies inside, the lineage join outside.
    sql = (f"SELECT {select} FROM (SELECT * FROM {RUN_ROWS}{where} ORDER BY started_at {direction}, "
           f"id {direction} LIMIT ?) r ORDER BY r.started_at {direction}, r.id {direction}")
    yield from cur.sql(sql, params=[*params, cap]).to_arrow_reader(batch)
