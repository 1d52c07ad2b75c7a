"""The Overview's and Workflows page's figures over ClickHouse, from the runs or, past EXACT_MAX, from the rollups.

The same rules as the embedded store's overview.py and health.py, in this engine's SQL: runs grouped by slot
(a UTC hour or quarter hour of epoch milliseconds) and mapped to the buckets of the viewer's zone
(`Window.slots`) with `transform`, so the engine never converts zones row by row; only aggregates leave it.
What the figures mean is fourgent/overview.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import polars as pl

from ... import overview as figures
from ...overview import EXACT_MAX, QUARTER_MS, UTC_ZONE, HealthSpan, OverviewView, Window, health
from . import rollup
from .schema import epoch_ms, floor_div
from .sql import DURATION_SQL, ENDED_SQL, RUNS, Params, instant

WORKFLOW_NAME = "any(source) || ' → ' || any(destination)"
GROUP_SETTINGS = {"group_by_use_nulls": 1}  # a grouping set's rolled-up key is NULL, as in the embedded store


class Reads(Protocol):
    client: Any

    def _frame(self, sql: str, p: Params | None = None, settings: dict[str, Any] | None = None) -> pl.DataFrame: ...
    def _rows(self, sql: str, p: Params | None = None,
              settings: dict[str, Any] | None = None) -> list[tuple[Any, ...]]: ...


def _window(w: Window, p: Params, start: datetime | None = None) -> str:
    where = f"started_at >= {instant(start or w.start, p)} AND started_at < {instant(w.end, p)}"
    if w.workflows:
        where += f" AND workflow_id IN {p.among(list(w.workflows), 'String')}"
    return where


def _bucketed(store: Reads, w: Window, rows: str, p: Params) -> pl.DataFrame:
    """Facts per slot of `w.slots` (the SELECT `rows`), summed per bucket of the window's zone: the FACT columns."""
    slots = w.slots
    ids = p.add(slots.slots, "Array(Int64)")
    bucket = f"transform(slot, {ids}, {p.add(slots.starts, 'Array(Int64)')}, toInt64(0))"
    bucket_end = f"transform(slot, {ids}, {p.add(slots.ends, 'Array(Int64)')}, toInt64(0))"
    return store._frame(f"""
        SELECT fromUnixTimestamp64Milli(b, 'UTC')::DateTime64(6, 'UTC') AS bucket,
               fromUnixTimestamp64Milli(e, 'UTC')::DateTime64(6, 'UTC') AS bucket_end,
               workflow_id, any(source) AS source, any(destination) AS destination, status, kind AS error_kind,
               app AS failed_app, retrigger, toInt64(sum(runs)) AS runs, toInt64(sum(unresolved)) AS unresolved,
               min(first_started) AS first_started, max(last_started) AS last_started
        FROM ({rows})
        GROUP BY {bucket} AS b, {bucket_end} AS e, workflow_id, status, error_kind, failed_app, retrigger
        ORDER BY bucket""", p)


def exact_facts(store: Reads, w: Window) -> pl.DataFrame:
    """The window's facts read from the runs (unresolved as of now: rollup.facts_sql)."""
    p = Params()
    slot = floor_div(epoch_ms("started_at"), w.slots.size)
    return _bucketed(store, w, rollup.facts_sql(_window(w, p), slot, instant(w.start, p)), p)


def rolled_facts(store: Reads, w: Window) -> pl.DataFrame:
    """The window's facts from the rollups (whole hours) and the runs (its edges)."""
    p = Params()
    return _bucketed(store, w, rollup.window_facts_sql(w, p), p)


def quantiles(store: Reads, w: Window) -> tuple[float | None, pl.DataFrame]:
    """The median duration of ended originals, and p50 and p95 per workflow (linear interpolation, as the
    embedded store's quantile_cont)."""
    p = Params()
    rows = store._rows(
        f"SELECT workflow_id, quantilesExactInclusive(0.5, 0.95)(toFloat64({DURATION_SQL})) FROM {RUNS} "
        f"WHERE {_window(w, p)} AND status IN {ENDED_SQL} AND retrigger_of IS NULL AND finished_at IS NOT NULL "
        "GROUP BY GROUPING SETS ((workflow_id), ())", p, settings=GROUP_SETTINGS)
    median = next((q[0] for wf, q in rows if wf is None and q), None)
    per = pl.DataFrame([{"workflow_id": wf, "p50_ms": q[0], "p95_ms": q[1]} for wf, q in rows if wf is not None],
                       schema=figures.QUANTILES_SCHEMA)
    return median, per


def top_errors(store: Reads, w: Window, *, rolled: bool = False, limit: int = 15) -> pl.DataFrame:
    """Failed originals grouped by message pattern: pattern, failures, first_seen, last_seen, workflows,
    workflow_ids, example; from the runs, or (`rolled`) whole hours from the rollups and the edges from the runs."""
    p = Params()
    rows = rollup.window_errors_sql(w, p) if rolled else rollup.errors_sql(_window(w, p))
    return store._frame(rollup.top_errors_sql(rows, p.add(limit, "UInt64")), p)


def overview_view(store: Reads, w: Window, *, exact_max: int = EXACT_MAX) -> OverviewView:
    """Up to `exact_max` runs in the window (or a window of hours, or a zone whose days are not whole UTC hours),
    every figure from the runs; beyond, whole hours from the rollups when they are current, as the embedded store."""
    prev = w.previous()
    # Whether the window is past exact_max is read from the rollups (5 ms, against 96 ms counting 10M runs).
    if w.bucket == "hour" or not w.whole_hours or not rollup.is_current(store) \
            or rollup.whole_hours_count(store, w) <= exact_max:
        now_facts, prev_facts = exact_facts(store, w), exact_facts(store, prev)
        (median, per_quantiles), (prev_median, _) = quantiles(store, w), quantiles(store, prev)
        estimated = False
    else:
        now_facts, prev_facts = rolled_facts(store, w), rolled_facts(store, prev)
        (median, per_quantiles), (prev_median, _) = (figures.hist_quantiles(rollup.window_hist(store, w)),
                                                     figures.hist_quantiles(rollup.window_hist(store, prev)))
        estimated = True
    return figures.view(now_facts, prev_facts, median, prev_median, per_quantiles,
                        top_errors(store, w, rolled=estimated), estimated=estimated)


def workflow_health(store: Reads, now: datetime | None = None, zone: str = UTC_ZONE) -> pl.DataFrame:
    """fourgent.overview.health's table from this engine's two reads (the embedded store's health.py)."""
    span = HealthSpan.at(now, zone)
    p = Params()
    day_ago, week = instant(span.day_ago, p), instant(span.week_ago, p)
    recent = store._rows(
        f"SELECT toString(workflow_id), {floor_div(epoch_ms('started_at'), QUARTER_MS)} AS q, count(), "
        f"countIf(started_at >= {day_ago}), countIf(started_at >= {week}), "
        f"countIf(started_at >= {week} AND status = 'failed'), countIf(started_at >= {week} AND status IN {ENDED_SQL}) "
        f"FROM {RUNS} WHERE started_at >= {instant(span.since, p)} AND started_at < {instant(span.now, p)} "
        "AND retrigger_of IS NULL GROUP BY workflow_id, q", p)
    everyone = store._rows(f"SELECT toString(workflow_id), any(source), any(destination), max(started_at) "
                           f"FROM {RUNS} GROUP BY workflow_id ORDER BY 2, 3, 1")
    return health(span, recent, everyone)
