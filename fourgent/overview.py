"""The Overview and Workflows pages' figures: run counts over time, headline figures, health per workflow, top errors.

Every figure is an aggregate in DuckDB over a window of `started_at` (and, optionally, some
workflows); only aggregates leave the database. Buckets are whole UTC hours, days or weeks
(weeks start on Monday), computed with integer arithmetic on epoch milliseconds: date_trunc on
TIMESTAMPTZ was three times slower at 10M runs.

Two ways to the same figures: up to EXACT_MAX runs in a window (or a window of hours), every
figure is read from the runs themselves and is exact. Beyond that, the window's whole days come
from the per-day rollups (fourgent/store/duckdb/rollup.py) and only its two partial days from the runs: the
counts stay exact, and durations' medians and percentiles are estimated from a histogram to
within 0.5%. Reading 10M runs for a 90-day Overview took 1.3 s; the rollups answer in tens of ms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from .quantiles import quantile
from .spec import ENDED_STATUSES

HOUR_MS, DAY_MS = 3_600_000, 86_400_000
BUCKET_MS = {"hour": HOUR_MS, "day": DAY_MS, "week": 7 * DAY_MS}
# 1970-01-01 was a Thursday: shifting by three days makes weeks start on Monday.
BUCKET_OFFSET_MS = {"hour": 0, "day": 0, "week": 3 * DAY_MS}
ENDED = ENDED_STATUSES  # a failure rate counts only runs that have ended
# (bucket, runs) pairs of the durations' histogram per workflow id, and under None for all of them.
Histograms = dict[str | None, list[tuple[int, int]]]
SPARK_DAYS = 14  # the Workflows page's sparkline: runs per UTC day, today last


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


def last(span: timedelta, now: datetime | None = None, workflows: tuple[str, ...] = ()) -> Window:
    now = now or datetime.now(UTC)
    return Window(now - span, now, workflows)


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


def rolled_headline(facts: pl.DataFrame, hist: Histograms) -> Headline:
    if facts.is_empty():
        return Headline(0, 0, 0, None, 0)
    runs = int(facts["runs"].sum())
    failed = int(facts.filter(pl.col("status") == "failed")["runs"].sum())
    ended = int(facts.filter(pl.col("status").is_in(ENDED))["runs"].sum())
    return Headline(runs, failed, ended, quantile(hist[None], 0.5), int(facts["unresolved"].sum()))


def rolled_buckets(facts: pl.DataFrame, bucket: str) -> pl.DataFrame:
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


def rolled_per_workflow(facts: pl.DataFrame, hist: Histograms) -> pl.DataFrame:
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
        [{"workflow_id": wf, "p50_ms": quantile(h, 0.5), "p95_ms": quantile(h, 0.95)}
         for wf, h in hist.items() if wf is not None],
        schema={"workflow_id": pl.String, "p50_ms": pl.Float64, "p95_ms": pl.Float64})
    return (per.join(quantiles, on="workflow_id", how="left")
            .select("workflow_id", "workflow", pl.col("runs").cast(pl.Int64), pl.col("failed").cast(pl.Int64),
                    "failure_rate", "last_failure", "p50_ms", "p95_ms")
            .sort(["failed", "runs", "workflow_id"], descending=[True, True, False]))


def rolled_failures(facts: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    failed = facts.filter(pl.col("status") == "failed").with_columns(
        kind=pl.col("error_kind").fill_null("(none)"), app=pl.col("failed_app").fill_null("(unknown)"),
        failures=pl.col("runs").cast(pl.Int64))
    by_kind = failed.group_by("kind").agg(pl.col("failures").sum()).sort("failures", "kind", descending=[True, False])
    by_app = failed.group_by("app").agg(pl.col("failures").sum()).sort("failures", "app", descending=[True, False])
    return by_kind, by_app
