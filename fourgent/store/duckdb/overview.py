"""The Overview's and Workflows page's SQL over DuckDB: aggregates only ever leave the database.

Buckets are whole UTC hours, days or weeks computed with integer arithmetic on epoch milliseconds. Up to
EXACT_MAX runs in a window (or a window of hours) every figure is read from the runs and is exact; beyond
that the window's whole days come from the per-day rollups (rollup.py) and only its partial edge days from
the runs (counts exact, durations' quantiles within 0.5%). What the figures mean is fourgent/overview.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from ...overview import (
    BUCKET_MS,
    BUCKET_OFFSET_MS,
    EXACT_MAX,
    Headline,
    OverviewView,
    Window,
    failure_rates,
    rolled_buckets,
    rolled_failures,
    rolled_headline,
    rolled_per_workflow,
)
from . import rollup
from .database import Cursor
from .runs import frame
from .sql import ENDED_SQL, ERROR_PATTERN_SQL, RUN_ROWS, UNRESOLVED_WHERE, WORKFLOW_NAME_SQL


def window_where(w: Window, start: datetime | None = None) -> tuple[str, list[Any]]:
    sql = "started_at >= ? AND started_at < ?"
    params: list[Any] = [start or w.start, w.end]
    if w.workflows:
        sql += " AND workflow_id IN (SELECT unnest(?::VARCHAR[]))"
        params.append(list(w.workflows))
    return sql, params


# ---------------------------------------------------------------- over time

def bucket_counts(cur: Cursor, w: Window) -> pl.DataFrame:
    """Runs per bucket and status: bucket (start, UTC), bucket_end, status, runs."""
    size, offset = BUCKET_MS[w.bucket], BUCKET_OFFSET_MS[w.bucket]
    where, params = window_where(w)
    return frame(
        cur,
        "SELECT make_timestamptz(b * 1000) AS bucket, make_timestamptz((b + ?) * 1000) AS bucket_end, status, runs "
        f"FROM (SELECT (epoch_ms(started_at) + ?) // ? * ? - ? AS b, status, count(*) AS runs FROM {RUN_ROWS} "
        f"WHERE {where} GROUP BY ALL) ORDER BY bucket, status",
        [size, offset, size, size, offset, *params],
    )


# ---------------------------------------------------------------- headline figures

def headlines(cur: Cursor, w: Window) -> tuple[Headline, Headline]:
    """The window's headline figures and the previous equal period's, from one scan of both periods."""
    prev = w.previous()
    where, params = window_where(w, start=prev.start)
    figures = []
    cols = []
    for p in (w, prev):
        now = "started_at >= ? AND started_at < ?"
        figures += [p.start, p.end] * 3
        cols.append(
            f"count(*) FILTER ({now}), count(*) FILTER ({now} AND status = 'failed'), "
            f"count(*) FILTER ({now} AND status IN {ENDED_SQL}), "
            f"median(duration_ms) FILTER ({now} AND status IN {ENDED_SQL})"
        )
        figures += [p.start, p.end]
    row = cur.execute(f"SELECT {', '.join(cols)} FROM {RUN_ROWS} WHERE {where}", [*figures, *params]).fetchall()[0]
    unresolved = cur.execute(
        "SELECT count(*) FILTER (started_at >= ?), count(*) FILTER (started_at < ?) "
        f"FROM {RUN_ROWS} WHERE {where} AND {UNRESOLVED_WHERE}", [w.start, w.start, *params]).fetchall()[0]
    now_h = Headline(row[0], row[1], row[2], row[3], unresolved[0])
    prev_h = Headline(row[4], row[5], row[6], row[7], unresolved[1])
    return now_h, prev_h


# ---------------------------------------------------------------- per workflow

def per_workflow(cur: Cursor, w: Window) -> pl.DataFrame:
    """workflow_id, workflow, runs, failed, failure_rate, p50_ms, p95_ms, last_failure — most failures first."""
    where, params = window_where(w)
    return frame(
        cur,
        f"SELECT workflow_id, {WORKFLOW_NAME_SQL} AS workflow, "
        "count(*) AS runs, count(*) FILTER (status = 'failed') AS failed, "
        f"count(*) FILTER (status = 'failed') / nullif(count(*) FILTER (status IN {ENDED_SQL}), 0) AS failure_rate, "
        f"quantile_cont(duration_ms, [0.5, 0.95]) FILTER (status IN {ENDED_SQL}) "
        "AS pct, max(started_at) FILTER (status = 'failed') AS last_failure "
        f"FROM {RUN_ROWS} WHERE {where} GROUP BY workflow_id ORDER BY failed DESC, runs DESC, workflow_id",
        params,
    ).with_columns(p50_ms=pl.col("pct").list.get(0, null_on_oob=True),
                   p95_ms=pl.col("pct").list.get(1, null_on_oob=True)).drop("pct")


# ---------------------------------------------------------------- errors

def top_errors(cur: Cursor, w: Window, limit: int = 15) -> pl.DataFrame:
    """Failures grouped by message pattern: pattern, failures, first_seen, last_seen, workflows, workflow_ids,
    example."""
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
        f"FROM {RUN_ROWS} WHERE {where} AND status = 'failed' AND error_message IS NOT NULL "
        "GROUP BY error_message, workflow_id) "
        "GROUP BY pattern ORDER BY failures DESC, pattern LIMIT ?",
        [*params, limit],
    )


def failures_by_kind_and_app(cur: Cursor, w: Window) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Failed runs by error kind (auth, validation, unavailable, logic, …) and by the app of the failed step."""
    where, params = window_where(w)
    both = frame(
        cur,
        "SELECT coalesce(error_kind, '(none)') AS kind, coalesce(failed_app, '(unknown)') AS app, "
        f"count(*) AS failures FROM {RUN_ROWS} WHERE {where} AND status = 'failed' GROUP BY ALL",
        params,
    )
    by_kind = both.group_by("kind").agg(pl.col("failures").sum()).sort("failures", "kind", descending=[True, False])
    by_app = both.group_by("app").agg(pl.col("failures").sum()).sort("failures", "app", descending=[True, False])
    return by_kind, by_app


def overview_view(cur: Cursor, w: Window, *, exact_max: int = EXACT_MAX) -> OverviewView:
    if w.bucket == "hour" or not rollup.is_current(cur) or _count(cur, w) <= exact_max:
        now, previous = headlines(cur, w)
        buckets = bucket_counts(cur, w)
        by_kind, by_app = failures_by_kind_and_app(cur, w)
        return OverviewView(now, previous, buckets, failure_rates(buckets), per_workflow(cur, w),
                            top_errors(cur, w), by_kind, by_app)
    facts, hist = rollup.window_facts(cur, w), rollup.window_hist(cur, w)
    prev = w.previous()
    buckets = rolled_buckets(facts, w.bucket)
    by_kind, by_app = rolled_failures(facts)
    previous = rolled_headline(rollup.window_facts(cur, prev), rollup.window_hist(cur, prev))
    return OverviewView(rolled_headline(facts, hist), previous, buckets, failure_rates(buckets),
                        rolled_per_workflow(facts, hist), top_errors(cur, w), by_kind, by_app, estimated=True)


def _count(cur: Cursor, w: Window) -> int:
    where, params = window_where(w)
    return cur.execute(f"SELECT count(*) FROM {RUN_ROWS} WHERE {where}", params).fetchall()[0][0]


