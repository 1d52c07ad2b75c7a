"""The Overview and Workflows pages' figures: run counts over time, headline figures, health per workflow, top errors.

Every figure is an aggregate in DuckDB over a window of `started_at` (and, optionally, some
workflows); only aggregates leave the database. Buckets are whole UTC hours, days or weeks
(weeks start on Monday), computed with integer arithmetic on epoch milliseconds: date_trunc on
TIMESTAMPTZ was three times slower at 10M runs.

Two ways to the same figures: up to EXACT_MAX runs in a window (or a window of hours), every
figure is read from the runs themselves and is exact. Beyond that, the window's whole days come
from the per-day rollups (fourgent/rollup.py) and only its two partial days from the runs: the
counts stay exact, and durations' medians and percentiles are estimated from a histogram to
within 0.5%. Reading 10M runs for a 90-day Overview took 1.3 s; the rollups answer in tens of ms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import polars as pl

from . import queries as Q
from . import rollup
from .queries import SOURCE, UNRESOLVED_WHERE, frame
from .spec import STATUSES

HOUR_MS, DAY_MS = 3_600_000, 86_400_000
BUCKET_MS = {"hour": HOUR_MS, "day": DAY_MS, "week": 7 * DAY_MS}
# 1970-01-01 was a Thursday: shifting by three days makes weeks start on Monday.
BUCKET_OFFSET_MS = {"hour": 0, "day": 0, "week": 3 * DAY_MS}
ENDED = ("finished", "failed", "skipped")  # a failure rate counts only runs that have ended



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
        f"SELECT {Q.ERROR_PATTERN_SQL} AS pattern, sum(n)::BIGINT AS failures, min(first_seen) AS first_seen, "
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
    estimated: bool = False  # durations' median and percentiles estimated from the rollups' histogram


EXACT_MAX = 300_000  # up to this many runs in a window, the Overview reads the runs themselves


def overview_view(cur: duckdb.DuckDBPyConnection, w: Window, *, exact_max: int = EXACT_MAX) -> OverviewView:
    if w.bucket == "hour" or not rollup.is_current(cur) or _count(cur, w) <= exact_max:
        now, previous = headlines(cur, w)
        buckets = bucket_counts(cur, w)
        by_kind, by_app = failures_by_kind_and_app(cur, w)
        return OverviewView(now, previous, buckets, failure_rates(buckets), per_workflow(cur, w),
                            top_errors(cur, w), by_kind, by_app)
    facts, hist = _facts(cur, w), _hist(cur, w)
    prev = w.previous()
    buckets = _rolled_buckets(facts, w.bucket)
    by_kind, by_app = _rolled_failures(facts)
    return OverviewView(_rolled_headline(facts, hist), _rolled_headline(_facts(cur, prev), _hist(cur, prev)),
                        buckets, failure_rates(buckets), _rolled_per_workflow(facts, hist), top_errors(cur, w),
                        by_kind, by_app, estimated=True)


EPOCH, FAR = datetime(1970, 1, 1, tzinfo=UTC), datetime(2999, 12, 31, tzinfo=UTC)


def unresolved_count(cur: duckdb.DuckDBPyConnection, f: Q.RunFilter) -> int:
    """The Runs page's count of unresolved failed runs matching its filters: from the rollups when it can
    (no text search), which at 10M runs is 185 ms less than counting the runs."""
    selection = Q.bulk_selection(f)
    if selection is None:
        return 0
    if f.q.strip() or not rollup.is_current(cur):
        return Q.count(cur, selection)
    facts = _facts(cur, Window(f.start or EPOCH, f.end or FAR, f.workflows))
    if f.kinds:
        facts = facts.filter(pl.col("error_kind").is_in(list(f.kinds)))
    if f.apps:
        facts = facts.filter(pl.col("failed_app").is_in(list(f.apps)))
    return int(facts["unresolved"].sum()) if len(facts) else 0


def _count(cur: duckdb.DuckDBPyConnection, w: Window) -> int:
    where, params = w.where()
    return cur.execute(f"SELECT count(*) FROM {SOURCE} WHERE {where}", params).fetchall()[0][0]


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


def _facts(cur: duckdb.DuckDBPyConnection, w: Window) -> pl.DataFrame:
    params, only = _parts(w)
    return frame(cur, f"""
        SELECT day, workflow_id, source, destination, status, error_kind, failed_app, runs, unresolved,
               first_started, last_started
        FROM fg.day_runs WHERE day >= $first AND day < $last{only}
        UNION ALL {rollup.facts_sql("started_at >= $s1 AND started_at < $e1" + only)}
        UNION ALL {rollup.facts_sql("started_at >= $s2 AND started_at < $e2" + only)}""", params)


def _hist(cur: duckdb.DuckDBPyConnection, w: Window) -> dict[str | None, list[tuple[int, int]]]:
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
    hist: dict[str | None, list[tuple[int, int]]] = {None: []}
    totals: dict[int, int] = {}
    for wf, bucket, n in rows:
        hist.setdefault(wf, []).append((bucket, n))
        totals[bucket] = totals.get(bucket, 0) + n
    hist[None] = list(totals.items())
    return hist


def _rolled_headline(facts: pl.DataFrame, hist: dict[str | None, list[tuple[int, int]]]) -> Headline:
    if facts.is_empty():
        return Headline(0, 0, 0, None, 0)
    runs = int(facts["runs"].sum())
    failed = int(facts.filter(pl.col("status") == "failed")["runs"].sum())
    ended = int(facts.filter(pl.col("status").is_in(ENDED))["runs"].sum())
    return Headline(runs, failed, ended, rollup.quantile(hist[None], 0.5), int(facts["unresolved"].sum()))


def _rolled_buckets(facts: pl.DataFrame, bucket: str) -> pl.DataFrame:
    size, offset = BUCKET_MS[bucket], BUCKET_OFFSET_MS[bucket]
    start = (pl.col("day").cast(pl.Int64) * DAY_MS + offset) // size * size - offset
    return (
        facts.group_by(start.alias("b"), "status").agg(pl.col("runs").sum())
        .select(pl.from_epoch("b", "ms").dt.cast_time_unit("us").dt.replace_time_zone("UTC").alias("bucket"),
                pl.from_epoch(pl.col("b") + size, "ms").dt.cast_time_unit("us").dt.replace_time_zone("UTC")
                .alias("bucket_end"),
                "status", pl.col("runs").cast(pl.Int64))
        .sort("bucket", "status")
    )


def _rolled_per_workflow(facts: pl.DataFrame, hist: dict[str | None, list[tuple[int, int]]]) -> pl.DataFrame:
    per = (
        facts.group_by("workflow_id")
        .agg(workflow=pl.col("source").first() + " → " + pl.col("destination").first(),
             runs=pl.col("runs").sum(),
             failed=pl.col("runs").filter(pl.col("status") == "failed").sum(),
             ended=pl.col("runs").filter(pl.col("status").is_in(ENDED)).sum(),
             last_failure=pl.col("last_started").filter(pl.col("status") == "failed").max())
        .with_columns(failure_rate=pl.when(pl.col("ended") > 0).then(pl.col("failed") / pl.col("ended")))
    )
    quantiles = pl.DataFrame(
        [{"workflow_id": wf, "p50_ms": rollup.quantile(h, 0.5), "p95_ms": rollup.quantile(h, 0.95)}
         for wf, h in hist.items() if wf is not None],
        schema={"workflow_id": pl.String, "p50_ms": pl.Float64, "p95_ms": pl.Float64})
    return (per.join(quantiles, on="workflow_id", how="left")
            .select("workflow_id", "workflow", pl.col("runs").cast(pl.Int64), pl.col("failed").cast(pl.Int64),
                    "failure_rate", "last_failure", "p50_ms", "p95_ms")
            .sort(["failed", "runs", "workflow_id"], descending=[True, True, False]))


def _rolled_failures(facts: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    failed = facts.filter(pl.col("status") == "failed").with_columns(
        kind=pl.col("error_kind").fill_null("(none)"), app=pl.col("failed_app").fill_null("(unknown)"),
        failures=pl.col("runs").cast(pl.Int64))
    by_kind = failed.group_by("kind").agg(pl.col("failures").sum()).sort("failures", "kind", descending=[True, False])
    by_app = failed.group_by("app").agg(pl.col("failures").sum()).sort("failures", "app", descending=[True, False])
    return by_kind, by_app


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
