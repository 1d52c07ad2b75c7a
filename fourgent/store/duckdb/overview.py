"""The Overview's and Workflows page's SQL over DuckDB: aggregates only ever leave the database.

Buckets are whole UTC hours, days or weeks computed with integer arithmetic on epoch milliseconds. Up to
EXACT_MAX runs in a window (or a window of hours) every figure is read from the runs and is exact; beyond
that the window's whole days come from the per-day rollups (rollup.py) and only its partial edge days from
the runs (counts exact, durations' quantiles within 0.5%). What the figures mean is fourgent/overview.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from ...filters import RunFilter
from ...overview import (BUCKET_MS, BUCKET_OFFSET_MS, DAY_MS, EXACT_MAX, SPARK_DAYS, Headline, Histograms,
                         OverviewView, Window, failure_rates, rolled_buckets, rolled_failures, rolled_headline,
                         rolled_per_workflow)
from . import rollup
from .database import Cursor
from .runs import count, frame
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
    facts, hist = _facts(cur, w), _hist(cur, w)
    prev = w.previous()
    buckets = rolled_buckets(facts, w.bucket)
    by_kind, by_app = rolled_failures(facts)
    return OverviewView(rolled_headline(facts, hist), rolled_headline(_facts(cur, prev), _hist(cur, prev)),
                        buckets, failure_rates(buckets), rolled_per_workflow(facts, hist), top_errors(cur, w),
                        by_kind, by_app, estimated=True)


EPOCH, FAR = datetime(1970, 1, 1, tzinfo=UTC), datetime(2999, 12, 31, tzinfo=UTC)


def unresolved_count(cur: Cursor, f: RunFilter) -> int:
    """How many unresolved failed runs match the Runs page's filter (what its bulk re-trigger takes).

    From the rollups when every field the filter sets is one they hold (RunFilter.ROLLUP_FIELDS) and they
    are current: 5 ms at 10M runs against 185 ms counting the runs. Any other field means counting the runs.
    """
    selection = f.bulk_selection()
    if selection is None:
        return 0
    if not selection.rollup_answerable or not rollup.is_current(cur):
        return count(cur, selection)
    facts = _facts(cur, Window(f.start or EPOCH, f.end or FAR, f.workflows)).filter(pl.col("status") == "failed")
    if f.kinds:
        facts = facts.filter(pl.col("error_kind").is_in(list(f.kinds)))
    if f.apps:
        facts = facts.filter(pl.col("failed_app").is_in(list(f.apps)))
    return int(facts["unresolved"].sum()) if len(facts) else 0


def _count(cur: Cursor, w: Window) -> int:
    where, params = window_where(w)
    return cur.execute(f"SELECT count(*) FROM {RUN_ROWS} WHERE {where}", params).fetchall()[0][0]


def _parts(w: Window) -> tuple[dict[str, Any], str]:
    """The window as whole days [first, last) plus the partial days' ranges at each edge, as named parameters."""
    start_ms, end_ms = int(w.start.timestamp() * 1000), int(w.end.timestamp() * 1000)
    first, last = -(-start_ms // DAY_MS), end_ms // DAY_MS
    if first >= last:  # no whole day inside: all of it is "edge"
        first = last = start_ms // DAY_MS
        edges = (w.start, w.end, w.end, w.end)
    else:
        day = lambda d: datetime.fromtimestamp(d * DAY_MS / 1000, UTC)
        edges = (w.start, day(first), day(last), w.end)
    params: dict[str, Any] = {"first": first, "last": last, "s1": edges[0], "e1": edges[1], "s2": edges[2],
                              "e2": edges[3], "since": w.start}
    only = ""
    if w.workflows:
        params["wfs"] = list(w.workflows)
        only = " AND workflow_id IN (SELECT unnest($wfs::VARCHAR[]))"
    return params, only


def _facts(cur: Cursor, w: Window) -> pl.DataFrame:
    params, only = _parts(w)
    return frame(cur, f"""
        SELECT day, workflow_id, source, destination, status, error_kind, failed_app, runs, unresolved,
               first_started, last_started
        FROM fg.day_runs WHERE day >= $first AND day < $last{only}
        UNION ALL {rollup.facts_sql("started_at >= $s1 AND started_at < $e1" + only)}
        UNION ALL {rollup.facts_sql("started_at >= $s2 AND started_at < $e2" + only)}""", params)


def _hist(cur: Cursor, w: Window) -> Histograms:
    """(bucket, runs) per workflow, and under None for all of them."""
    params, only = _parts(w)
    params.pop("since")
    rows = cur.execute(f"""
        SELECT workflow_id, bucket, sum(runs)::BIGINT FROM (
            SELECT workflow_id, bucket, runs FROM fg.day_durations WHERE day >= $first AND day < $last{only}
            UNION ALL SELECT workflow_id, bucket, runs FROM ({rollup.hist_sql(
                "started_at >= $s1 AND started_at < $e1" + only)})
            UNION ALL SELECT workflow_id, bucket, runs FROM ({rollup.hist_sql(
                "started_at >= $s2 AND started_at < $e2" + only)})
        ) GROUP BY ALL""", params).fetchall()
    hist: Histograms = {None: []}
    totals: dict[int, int] = {}
    for wf, bucket, n in rows:
        hist.setdefault(wf, []).append((bucket, n))
        totals[bucket] = totals.get(bucket, 0) + n
    hist[None] = list(totals.items())
    return hist


# ---------------------------------------------------------------- Workflows page

def workflow_health(cur: Cursor, now: datetime | None = None) -> pl.DataFrame:
    """Per workflow with runs: workflow_id, source, destination, last_run, runs_24h, runs_7d, failed_7d,
    failure_rate_7d, daily (runs per UTC day over the last SPARK_DAYS days, today last)."""
    now = now or datetime.now(UTC)
    today = int(now.timestamp() * 1000) // DAY_MS
    first_day = today - SPARK_DAYS + 1
    week_ago = now - timedelta(days=7)
    recent = cur.execute(
        "SELECT workflow_id, epoch_ms(started_at) // ? AS d, count(*), count(*) FILTER (started_at >= ?), "
        "count(*) FILTER (started_at >= ?), count(*) FILTER (started_at >= ? AND status = 'failed'), "
        f"count(*) FILTER (started_at >= ? AND status IN {ENDED_SQL}) "
        f"FROM {RUN_ROWS} WHERE started_at >= make_timestamptz(? * 1000) AND started_at < ? GROUP BY ALL",
        [DAY_MS, now - timedelta(days=1), week_ago, week_ago, week_ago, first_day * DAY_MS, now],
    ).fetchall()
    acc: dict[str, list[Any]] = {}
    for wf, day, runs, r24, r7, f7, e7 in recent:  # at most workflows x SPARK_DAYS rows
        a = acc.setdefault(wf, [[0] * SPARK_DAYS, 0, 0, 0, 0])
        a[0][day - first_day] += runs
        a[1] += r24
        a[2] += r7
        a[3] += f7
        a[4] += e7
    everyone = cur.execute(
        f"SELECT workflow_id, any_value(source), any_value(destination), max(started_at) FROM {RUN_ROWS} "
        "GROUP BY workflow_id ORDER BY 2, 3, 1").fetchall()
    rows = []
    for wf, source, destination, last_run in everyone:
        daily, r24, r7, f7, e7 = acc.get(wf, [[0] * SPARK_DAYS, 0, 0, 0, 0])
        rows.append({"workflow_id": wf, "source": source, "destination": destination, "last_run": last_run,
                     "runs_24h": r24, "runs_7d": r7, "failed_7d": f7,
                     "failure_rate_7d": f7 / e7 if e7 else None, "daily": daily})
    schema = {"workflow_id": pl.String, "source": pl.String, "destination": pl.String,
              "last_run": pl.Datetime("us", "UTC"), "runs_24h": pl.Int64, "runs_7d": pl.Int64, "failed_7d": pl.Int64,
              "failure_rate_7d": pl.Float64, "daily": pl.List(pl.Int64)}
    return pl.DataFrame(rows, schema=schema)


