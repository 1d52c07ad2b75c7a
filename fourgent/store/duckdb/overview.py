"""The Overview's SQL over DuckDB: aggregates only ever leave the database.

Runs are grouped by slot (a UTC hour, or a quarter hour in a half-hour zone) with integer arithmetic on
epoch milliseconds, and the slots are joined to their buckets in the viewer's zone (`Window.slots`), so
the database never converts time zones row by row. Up to EXACT_MAX runs in a window (or a window of
hours) every figure is read from the runs and is exact; beyond that the window's whole hours come from
the per-hour rollups (rollup.py) and only its partial edge hours (and, in a half-hour zone, the hours its
midnights cut) from the runs (counts exact, durations' quantiles within 0.5%). What the figures mean is
fourgent/overview.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from ... import overview as figures
from ...overview import EXACT_MAX, OverviewView, Window
from . import rollup
from .database import Cursor
from .runs import frame
from .sql import ENDED_SQL, ERROR_PATTERN_SQL, RUN_ROWS, WORKFLOW_NAME_SQL


def window_where(w: Window, start: datetime | None = None) -> tuple[str, list[Any]]:
    sql = "started_at >= ? AND started_at < ?"
    params: list[Any] = [start or w.start, w.end]
    if w.workflows:
        sql += " AND workflow_id IN (SELECT unnest(?::VARCHAR[]))"
        params.append(list(w.workflows))
    return sql, params


# ---------------------------------------------------------------- facts: runs per bucket and dimension

def _bucketed(cur: Cursor, w: Window, rows: str, params: dict[str, Any]) -> pl.DataFrame:
    """FACT_COLUMNS rows per slot, summed per bucket of the window's zone (bucket, bucket_end, …)."""
    slots = w.slots
    return frame(cur, f"""
        SELECT make_timestamptz(m.b * 1000) AS bucket, make_timestamptz(m.e * 1000) AS bucket_end,
               workflow_id, any_value(source) AS source, any_value(destination) AS destination,
               status, error_kind, failed_app, retrigger,
               sum(runs)::BIGINT AS runs, sum(unresolved)::BIGINT AS unresolved,
               min(first_started) AS first_started, max(last_started) AS last_started
        FROM ({rows}) r
        JOIN (SELECT unnest($slot_ids::BIGINT[]) AS slot, unnest($slot_starts::BIGINT[]) AS b,
                     unnest($slot_ends::BIGINT[]) AS e) m
          ON r.slot = m.slot
        GROUP BY m.b, m.e, workflow_id, status, error_kind, failed_app, retrigger
        ORDER BY bucket""", {**params, "slot_ids": slots.slots, "slot_starts": slots.starts, "slot_ends": slots.ends})


def exact_facts(cur: Cursor, w: Window) -> pl.DataFrame:
    """The window's facts read from the runs."""
    only = " AND workflow_id IN (SELECT unnest($wfs::VARCHAR[]))" if w.workflows else ""
    params: dict[str, Any] = {"s": w.start, "e": w.end, "since": w.start}
    if w.workflows:
        params["wfs"] = list(w.workflows)
    rows = rollup.facts_sql("started_at >= $s AND started_at < $e" + only, rollup.slot_sql(w.slots.size), RUN_ROWS)
    return _bucketed(cur, w, rows, params)


def rolled_facts(cur: Cursor, w: Window) -> pl.DataFrame:
    """The window's facts from the rollups (whole hours) and the runs (its edges)."""
    rows, params = rollup.window_facts_sql(w)
    return _bucketed(cur, w, rows, params)


def exact_quantiles(cur: Cursor, w: Window) -> tuple[float | None, pl.DataFrame]:
    """The median duration of ended originals, and p50 and p95 per workflow."""
    where, params = window_where(w)
    rows = cur.execute(
        "SELECT workflow_id, quantile_cont(duration_ms, [0.5, 0.95]) "
        f"FROM {RUN_ROWS} WHERE {where} AND status IN {ENDED_SQL} AND retrigger_of IS NULL "
        "GROUP BY GROUPING SETS ((workflow_id), ())", params).fetchall()
    median = next((q[0] for wf, q in rows if wf is None and q), None)
    per = pl.DataFrame([{"workflow_id": wf, "p50_ms": q[0], "p95_ms": q[1]} for wf, q in rows if wf is not None],
                       schema=figures.QUANTILES_SCHEMA)
    return median, per


# ---------------------------------------------------------------- errors

def top_errors(cur: Cursor, w: Window, limit: int = 15) -> pl.DataFrame:
    """Failed originals grouped by message pattern (a failure and its failed replays count once): pattern,
    failures, first_seen, last_seen, workflows, workflow_ids, example."""
    where, params = window_where(w)
    # Messages repeat: group by the message (and workflow) first, so the patterns are worked out once per
    # distinct message rather than once per failed run.
    return frame(
        cur,
        f"SELECT {ERROR_PATTERN_SQL} AS pattern, sum(n)::BIGINT AS failures, min(first_seen) AS first_seen, "
        "max(last_seen) AS last_seen, list(DISTINCT workflow ORDER BY workflow) AS workflows, "
        "list(DISTINCT workflow_id ORDER BY workflow_id) AS workflow_ids, arg_max(error_message, n) AS example "
        f"FROM (SELECT error_message, workflow_id, {WORKFLOW_NAME_SQL} AS workflow, "
        "count(*) AS n, min(started_at) AS first_seen, max(started_at) AS last_seen "
        f"FROM {RUN_ROWS} WHERE {where} AND status = 'failed' AND retrigger_of IS NULL "
        "AND error_message IS NOT NULL "
        "GROUP BY error_message, workflow_id) "
        "GROUP BY pattern ORDER BY failures DESC, pattern LIMIT ?",
        [*params, limit],
    )


def overview_view(cur: Cursor, w: Window, *, exact_max: int = EXACT_MAX) -> OverviewView:
    prev = w.previous()
    if w.bucket == "hour" or not rollup.is_current(cur) or _count(cur, w) <= exact_max:
        facts, prev_facts = exact_facts(cur, w), exact_facts(cur, prev)
        (median, quantiles), (prev_median, _) = exact_quantiles(cur, w), exact_quantiles(cur, prev)
        estimated = False
    else:
        facts, prev_facts = rolled_facts(cur, w), rolled_facts(cur, prev)
        (median, quantiles), (prev_median, _) = (figures.hist_quantiles(rollup.window_hist(cur, w)),
                                                 figures.hist_quantiles(rollup.window_hist(cur, prev)))
        estimated = True
    return figures.view(facts, prev_facts, median, prev_median, quantiles, top_errors(cur, w), estimated=estimated)


def _count(cur: Cursor, w: Window) -> int:
    where, params = window_where(w)
    return cur.execute(f"SELECT count(*) FROM {RUN_ROWS} WHERE {where}", params).fetchall()[0][0]
