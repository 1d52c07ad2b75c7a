"""The Overview and Workflows pages' figures: run counts over time, headline figures, health per workflow, top errors.

Every figure is one aggregate in DuckDB over a window of `started_at` (and, optionally, some
workflows); only the aggregates leave the database. Buckets are whole UTC hours, days or
weeks (weeks start on Monday), computed with integer arithmetic on epoch milliseconds:
date_trunc on TIMESTAMPTZ was three times slower at 10M runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import polars as pl

from .queries import SOURCE, UNRESOLVED_WHERE, frame
from .spec import STATUSES

HOUR_MS, DAY_MS = 3_600_000, 86_400_000
BUCKET_MS = {"hour": HOUR_MS, "day": DAY_MS, "week": 7 * DAY_MS}
# 1970-01-01 was a Thursday: shifting by three days makes weeks start on Monday.
BUCKET_OFFSET_MS = {"hour": 0, "day": 0, "week": 3 * DAY_MS}
ENDED = ("finished", "failed", "skipped")  # a failure rate counts only runs that have ended

# An error message with the parts that vary from run to run taken out, so alike failures group:
# quoted values become …, and any word holding a digit (IDs, amounts, status codes, durations) becomes #.
ERROR_PATTERN_SQL = (
    "regexp_replace(regexp_replace(error_message, '''[^'']*''|\"[^\"]*\"', '…', 'g'), "
    "'[A-Za-z0-9_.-]*[0-9][A-Za-z0-9_.-]*', '#', 'g')"
)


@dataclass(frozen=True)
class Window:
    """Runs started in [start, end), optionally of some workflows only."""

    start: datetime
    end: datetime
    workflows: tuple[str, ...] = ()

    @property
    def bucket(self) -> str:
        """Hours up to two days, days up to about two months, weeks beyond."""
        span = self.end - self.start
        if span <= timedelta(days=2):
            return "hour"
        if span <= timedelta(days=62):
            return "day"
        return "week"

    def previous(self) -> Window:
        """The equal period just before this one."""
        return Window(self.start - (self.end - self.start), self.start, self.workflows)

    def where(self, start: datetime | None = None) -> tuple[str, list[Any]]:
        sql = "started_at >= ? AND started_at < ?"
        params: list[Any] = [start or self.start, self.end]
        if self.workflows:
            sql += " AND workflow_id IN (SELECT unnest(?::VARCHAR[]))"
            params.append(list(self.workflows))
        return sql, params


def last(span: timedelta, now: datetime | None = None, workflows: tuple[str, ...] = ()) -> Window:
    now = now or datetime.now(UTC)
    return Window(now - span, now, workflows)


# ---------------------------------------------------------------- over time

def bucket_counts(cur: duckdb.DuckDBPyConnection, w: Window) -> pl.DataFrame:
    """Runs per bucket and status: bucket (start, UTC), bucket_end, status, runs."""
    size, offset = BUCKET_MS[w.bucket], BUCKET_OFFSET_MS[w.bucket]
    where, params = w.where()
    return frame(
        cur,
        "SELECT make_timestamptz(b * 1000) AS bucket, make_timestamptz((b + ?) * 1000) AS bucket_end, status, runs "
        f"FROM (SELECT (epoch_ms(started_at) + ?) // ? * ? - ? AS b, status, count(*) AS runs FROM {SOURCE} "
        f"WHERE {where} GROUP BY ALL) ORDER BY bucket, status",
        [size, offset, size, size, offset, *params],
    )


def failure_rates(buckets: pl.DataFrame) -> pl.DataFrame:
    """Per bucket: runs that ended, failed among them, and the failure rate (failed ÷ ended)."""
    if buckets.is_empty():
        return pl.DataFrame(schema={"bucket": pl.Datetime("us", "UTC"), "bucket_end": pl.Datetime("us", "UTC"),
                                    "ended": pl.Int64, "failed": pl.Int64, "failure_rate": pl.Float64})
    return (
        buckets.group_by("bucket", "bucket_end")
        .agg(ended=pl.col("runs").filter(pl.col("status").is_in(ENDED)).sum(),
             failed=pl.col("runs").filter(pl.col("status") == "failed").sum())
        .with_columns(failure_rate=pl.when(pl.col("ended") > 0).then(pl.col("failed") / pl.col("ended")))
        .sort("bucket")
    )


# ---------------------------------------------------------------- headline figures

@dataclass(frozen=True)
class Headline:
    runs: int
    failed: int
    ended: int
    median_ms: float | None  # of runs that ended
    unresolved: int  # failed runs (not themselves re-triggers) whose latest re-trigger did not finish, as of now

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.ended if self.ended else None


def headlines(cur: duckdb.DuckDBPyConnection, w: Window) -> tuple[Headline, Headline]:
    """The window's headline figures and the previous equal period's, from one scan of both periods."""
    prev = w.previous()
    where, params = w.where(start=prev.start)
    figures = []
    cols = []
    for p in (w, prev):
        now = "started_at >= ? AND started_at < ?"
        figures += [p.start, p.end] * 3
        cols.append(
            f"count(*) FILTER ({now}), count(*) FILTER ({now} AND status = 'failed'), "
            f"count(*) FILTER ({now} AND status IN {ENDED}), "
            f"median(duration_ms) FILTER ({now} AND status IN {ENDED})"
        )
        figures += [p.start, p.end]
    row = cur.execute(f"SELECT {', '.join(cols)} FROM {SOURCE} WHERE {where}", [*figures, *params]).fetchall()[0]
    unresolved = cur.execute(
        "SELECT count(*) FILTER (started_at >= ?), count(*) FILTER (started_at < ?) "
        f"FROM {SOURCE} WHERE {where} AND {UNRESOLVED_WHERE}", [w.start, w.start, *params]).fetchall()[0]
    now_h = Headline(row[0], row[1], row[2], row[3], unresolved[0])
    prev_h = Headline(row[4], row[5], row[6], row[7], unresolved[1])
    return now_h, prev_h


# ---------------------------------------------------------------- per workflow

def per_workflow(cur: duckdb.DuckDBPyConnection, w: Window) -> pl.DataFrame:
    """workflow_id, workflow, runs, failed, failure_rate, p50_ms, p95_ms, last_failure — most failures first."""
    where, params = w.where()
    return frame(
        cur,
        "SELECT workflow_id, any_value(source) || ' → ' || any_value(destination) AS workflow, "
        "count(*) AS runs, count(*) FILTER (status = 'failed') AS failed, "
        f"count(*) FILTER (status = 'failed') / nullif(count(*) FILTER (status IN {ENDED}), 0) AS failure_rate, "
        f"quantile_cont(duration_ms, [0.5, 0.95]) FILTER (status IN {ENDED}) "
        "AS pct, max(started_at) FILTER (status = 'failed') AS last_failure "
        f"FROM {SOURCE} WHERE {where} GROUP BY workflow_id ORDER BY failed DESC, runs DESC, workflow_id",
        params,
    ).with_columns(p50_ms=pl.col("pct").list.get(0, null_on_oob=True),
                   p95_ms=pl.col("pct").list.get(1, null_on_oob=True)).drop("pct")


# ---------------------------------------------------------------- errors

def top_errors(cur: duckdb.DuckDBPyConnection, w: Window, limit: int = 15) -> pl.DataFrame:
    """Failures grouped by message pattern: pattern, failures, first_seen, last_seen, workflows, workflow_ids,
    example."""
    where, params = w.where()
    # Messages repeat: group by the message (and workflow) first, so the patterns are worked out once per
    # distinct message rather than once per failed run.
    return frame(
        cur,
        f"SELECT {ERROR_PATTERN_SQL} AS pattern, sum(n)::BIGINT AS failures, min(first_seen) AS first_seen, "
        "max(last_seen) AS last_seen, list(DISTINCT workflow ORDER BY workflow) AS workflows, "
        "list(DISTINCT workflow_id ORDER BY workflow_id) AS workflow_ids, arg_max(error_message, n) AS example "
        "FROM (SELECT error_message, workflow_id, any_value(source) || ' → ' || any_value(destination) AS workflow, "
        "count(*) AS n, min(started_at) AS first_seen, max(started_at) AS last_seen "
        f"FROM {SOURCE} WHERE {where} AND status = 'failed' AND error_message IS NOT NULL "
        "GROUP BY error_message, workflow_id) "
        "GROUP BY pattern ORDER BY failures DESC, pattern LIMIT ?",
        [*params, limit],
    )


def failures_by_kind_and_app(cur: duckdb.DuckDBPyConnection, w: Window) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Failed runs by error kind (auth, validation, unavailable, logic, …) and by the app of the failed step."""
    where, params = w.where()
    both = frame(
        cur,
        "SELECT coalesce(error_kind, '(none)') AS kind, coalesce(failed_app, '(unknown)') AS app, "
        f"count(*) AS failures FROM {SOURCE} WHERE {where} AND status = 'failed' GROUP BY ALL",
        params,
    )
    by_kind = both.group_by("kind").agg(pl.col("failures").sum()).sort("failures", "kind", descending=[True, False])
    by_app = both.group_by("app").agg(pl.col("failures").sum()).sort("failures", "app", descending=[True, False])
    return by_kind, by_app


@dataclass
class OverviewView:
    """Everything one render of the Overview shows, from one call (the benchmark times this)."""

    now: Headline
    previous: Headline
    buckets: pl.DataFrame
    rates: pl.DataFrame
    per_workflow: pl.DataFrame
    top_errors: pl.DataFrame
    by_kind: pl.DataFrame
    by_app: pl.DataFrame


def overview_view(cur: duckdb.DuckDBPyConnection, w: Window) -> OverviewView:
    now, previous = headlines(cur, w)
    buckets = bucket_counts(cur, w)
    by_kind, by_app = failures_by_kind_and_app(cur, w)
    return OverviewView(now, previous, buckets, failure_rates(buckets), per_workflow(cur, w), top_errors(cur, w),
                        by_kind, by_app)


# ---------------------------------------------------------------- Workflows page

SPARK_DAYS = 14


def workflow_health(cur: duckdb.DuckDBPyConnection, now: datetime | None = None) -> pl.DataFrame:
    """Per workflow with runs: workflow_id, source, destination, last_run, runs_24h, runs_7d, failed_7d,
    failure_rate_7d, daily (runs per UTC day over the last SPARK_DAYS days, today last)."""
    now = now or datetime.now(UTC)
    today = int(now.timestamp() * 1000) // DAY_MS
    first_day = today - SPARK_DAYS + 1
    week_ago = now - timedelta(days=7)
    recent = cur.execute(
        "SELECT workflow_id, epoch_ms(started_at) // ? AS d, count(*), count(*) FILTER (started_at >= ?), "
        "count(*) FILTER (started_at >= ?), count(*) FILTER (started_at >= ? AND status = 'failed'), "
        f"count(*) FILTER (started_at >= ? AND status IN {ENDED}) "
        f"FROM {SOURCE} WHERE started_at >= make_timestamptz(? * 1000) AND started_at < ? GROUP BY ALL",
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
        f"SELECT workflow_id, any_value(source), any_value(destination), max(started_at) FROM {SOURCE} "
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


def status_total(buckets: pl.DataFrame) -> dict[str, int]:
    """Runs per status across all buckets (each status present, zero when none)."""
    found = dict(buckets.group_by("status").agg(pl.col("runs").sum()).iter_rows()) if len(buckets) else {}
    return {s: int(found.get(s, 0)) for s in STATUSES}
