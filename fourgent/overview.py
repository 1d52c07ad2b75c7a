"""The Overview and Workflows pages' figures: run counts over time, headline figures, health per workflow, top errors.

Every figure counts each original run once: a re-trigger is not a new run of the workflow but an attempt
to fix one, so runs, failure rates, durations, errors and the per-workflow table are of originals (runs
that are not themselves re-triggers), their failures split into still failing and resolved since; the
re-triggers are a series of their own. (Counting replays as runs made a fixed incident read as a new one:
a 38.6 % failure rate and a 21 ms median the day after a bulk re-trigger.)

Every figure is an aggregate in the store over a window of `started_at`; only aggregates leave it. Runs are
grouped by UTC hour (by quarter hour in a zone whose offset is not whole hours), and each of those slots is
mapped to its bucket in the viewer's zone here (`Window.slots`), so buckets follow the zone, daylight
saving included, while the store only ever does integer arithmetic on epoch milliseconds (date_trunc on
TIMESTAMPTZ was three times slower at 10M runs).

Two ways to the same figures: up to EXACT_MAX runs in a window (or a window of hours), every figure is
read from the runs and is exact. Beyond that, the window's whole hours come from the per-hour rollups
(fourgent/store/duckdb/rollup.py) and only its two partial hours from the runs: the counts stay exact, and
durations' medians and percentiles are estimated from a histogram to within 0.5%. In a zone with a
half-hour offset a local midnight cuts a UTC hour: those hours (`Window.cut_hours`) are read from the runs
in quarter hours, every other hour from the rollups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from .quantiles import quantile
from .spec import ENDED_STATUSES, STATUSES

HOUR_MS, DAY_MS = 3_600_000, 86_400_000
QUARTER_MS = HOUR_MS // 4  # the slot of zones such as Asia/Kolkata (+5:30) and Asia/Kathmandu (+5:45)
ENDED = ENDED_STATUSES  # a failure rate counts only runs that have ended
# (bucket, runs) pairs of the durations' histogram per workflow id, and under None for all of them.
Histograms = dict[str | None, list[tuple[int, int]]]
SPARK_DAYS = 14  # the Workflows page's sparkline: runs per UTC day, today last
UTC_ZONE = "UTC"


@dataclass(frozen=True)
class Slots:
    """A window's slots (epoch ms // size) and, for each, the start and end (epoch ms) of its bucket."""

    size: int
    slots: list[int]
    starts: list[int]
    ends: list[int]


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


@dataclass(frozen=True)
class Window:
    """Runs started in [start, end), optionally of some workflows only, bucketed in `zone` (an IANA name)."""

    start: datetime
    end: datetime
    workflows: tuple[str, ...] = ()
    zone: str = UTC_ZONE

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
        return Window(self.start - (self.end - self.start), self.start, self.workflows, self.zone)

    @cached_property
    def slots(self) -> Slots:
        """Each UTC hour the window touches, mapped to the start and end of its bucket in the zone; quarter
        hours instead when the zone's offset is not whole hours anywhere in the window."""
        tz = ZoneInfo(self.zone)
        for size in (HOUR_MS, QUARTER_MS):
            first, last = _ms(self.start) // size, -(-_ms(self.end) // size)
            slots, starts, ends = [], [], []
            for slot in range(first, max(last, first + 1)):
                local = datetime.fromtimestamp(slot * size / 1000, UTC).astimezone(tz)
                if size == HOUR_MS and local.minute:
                    break  # a half-hour zone: its hours do not start on UTC hours
                b, e = _bucket(local, self.bucket, tz)
                slots.append(slot)
                starts.append(b)
                ends.append(e)
            else:
                return Slots(size, slots, starts, ends)
        raise AssertionError("unreachable: quarter hours fit every zone")

    @property
    def whole_hours(self) -> bool:
        """Whether the zone's buckets are made of whole UTC hours, as the hour rollups are."""
        # UTC without mapping its slots: the bulk count asks this of windows reaching from 1970 to 2999.
        return self.zone == UTC_ZONE or self.slots.size == HOUR_MS

    @cached_property
    def hour_cuts(self) -> tuple[int, int, tuple[datetime, datetime, datetime, datetime]]:
        """The window as whole UTC hours [first, last) (epoch ms // HOUR_MS) and the partial hours at its edges,
        [start, e1) and [s2, end), as (first, last, (start, e1, s2, end)): what a rollup of hours can answer."""
        start_ms, end_ms = _ms(self.start), _ms(self.end)
        first, last = -(-start_ms // HOUR_MS), end_ms // HOUR_MS
        if first >= last:  # no whole hour inside: all of it is "edge"
            first = last = start_ms // HOUR_MS
            return first, last, (self.start, self.end, self.end, self.end)
        return first, last, (self.start, datetime.fromtimestamp(first * HOUR_MS / 1000, UTC),
                             datetime.fromtimestamp(last * HOUR_MS / 1000, UTC), self.end)

    @cached_property
    def cut_hours(self) -> list[int]:
        """The UTC hours (epoch ms // HOUR_MS) a bucket boundary cuts: in a half-hour zone, the hour holding
        each local midnight. Every other hour lies in one bucket, so its hour rollup rows can be used."""
        if self.whole_hours:
            return []
        per_hour = HOUR_MS // self.slots.size
        starts: dict[int, set[int]] = {}
        for slot, start in zip(self.slots.slots, self.slots.starts, strict=True):
            starts.setdefault(slot // per_hour, set()).add(start)
        return sorted(hour for hour, seen in starts.items() if len(seen) > 1)


def _bucket(local: datetime, bucket: str, tz: ZoneInfo) -> tuple[int, int]:
    """The bucket holding a local time, as epoch ms: the local hour, day or week (from Monday)."""
    if bucket == "hour":
        start = local.replace(minute=0, second=0, microsecond=0)
        return _ms(start), _ms(start) + HOUR_MS
    day = local.date() - timedelta(days=local.weekday() if bucket == "week" else 0)
    step = timedelta(days=7 if bucket == "week" else 1)
    # combine() in the zone, not adding 24 h: a day across a daylight-saving change is 23 or 25 hours.
    return _ms(datetime.combine(day, time.min, tz)), _ms(datetime.combine(day + step, time.min, tz))


def last(span: timedelta, now: datetime | None = None, workflows: tuple[str, ...] = (),
         zone: str = UTC_ZONE) -> Window:
    now = now or datetime.now(UTC)
    return Window(now - span, now, workflows, zone)


@dataclass(frozen=True)
class Headline:
    """A period's headline figures, of originals (runs that are not re-triggers) unless named otherwise."""

    runs: int
    failed: int  # failed at their first attempt, resolved since or not
    ended: int
    median_ms: float | None  # of originals that ended
    unresolved: int  # failed originals whose latest re-trigger did not finish, as of now: still failing
    retriggers: int = 0  # re-triggers started in the period
    retriggers_failed: int = 0  # of which failed again

    @property
    def failure_rate(self) -> float | None:
        """The first-attempt failure rate: failed ÷ ended originals."""
        return self.failed / self.ended if self.ended else None


@dataclass
class OverviewView:
    """Everything one render of the Overview shows, from one call (the benchmark times this)."""

    now: Headline
    previous: Headline
    buckets: pl.DataFrame  # originals per bucket and status: bucket, bucket_end, status, runs, unresolved
    retriggers: pl.DataFrame  # re-triggers per bucket: bucket, bucket_end, runs, failed
    rates: pl.DataFrame
    per_workflow: pl.DataFrame
    top_errors: pl.DataFrame
    by_kind: pl.DataFrame
    by_app: pl.DataFrame
    estimated: bool = False  # durations' median and percentiles estimated from the rollups' histogram


EXACT_MAX = 300_000  # up to this many runs in a window, the Overview reads the runs themselves


def view(facts: pl.DataFrame, prev_facts: pl.DataFrame, median: float | None, prev_median: float | None,
         quantiles: pl.DataFrame, top_errors: pl.DataFrame, *, estimated: bool) -> OverviewView:
    """One render of the Overview from what a store read: the window's facts and the period's before it, the
    durations' medians and the window's per-workflow quantiles, its top errors."""
    buckets = bucket_counts(facts)
    by_kind, by_app = failures(facts)
    return OverviewView(headline(facts, median), headline(prev_facts, prev_median), buckets, retrigger_counts(facts),
                        failure_rates(buckets), per_workflow(facts, quantiles), top_errors, by_kind, by_app,
                        estimated=estimated)
_ORIGINAL = ~pl.col("retrigger")
_FAILED = pl.col("status") == "failed"
_ENDED = pl.col("status").is_in(ENDED)


def headline(facts: pl.DataFrame, median_ms: float | None) -> Headline:
    """A period's headline from its facts (one row per bucket and dimension, as the store groups them)."""
    if facts.is_empty():
        return Headline(0, 0, 0, None, 0)
    orig, again = facts.filter(_ORIGINAL), facts.filter(pl.col("retrigger"))
    return Headline(int(orig["runs"].sum()), int(orig.filter(_FAILED)["runs"].sum()),
                    int(orig.filter(_ENDED)["runs"].sum()), median_ms, int(orig["unresolved"].sum()),
                    int(again["runs"].sum()), int(again.filter(_FAILED)["runs"].sum()))


def bucket_counts(facts: pl.DataFrame) -> pl.DataFrame:
    """Originals per bucket and status, with how many of the failed are still failing."""
    return (facts.filter(_ORIGINAL).group_by("bucket", "bucket_end", "status")
            .agg(pl.col("runs").sum().cast(pl.Int64), pl.col("unresolved").sum().cast(pl.Int64))
            .sort("bucket", "status"))


def retrigger_counts(facts: pl.DataFrame) -> pl.DataFrame:
    """Re-triggers per bucket, and how many of them failed again."""
    return (facts.filter(pl.col("retrigger")).group_by("bucket", "bucket_end")
            .agg(pl.col("runs").sum().cast(pl.Int64),
                 failed=pl.col("runs").filter(_FAILED).sum().cast(pl.Int64))
            .sort("bucket"))


def failure_rates(buckets: pl.DataFrame) -> pl.DataFrame:
    """Per bucket: originals that ended, failed among them, and the first-attempt failure rate."""
    if buckets.is_empty():
        return pl.DataFrame(schema={"bucket": pl.Datetime("us", "UTC"), "bucket_end": pl.Datetime("us", "UTC"),
                                    "ended": pl.Int64, "failed": pl.Int64, "failure_rate": pl.Float64})
    return (
        buckets.group_by("bucket", "bucket_end")
        .agg(ended=pl.col("runs").filter(_ENDED).sum(), failed=pl.col("runs").filter(_FAILED).sum())
        .with_columns(failure_rate=pl.when(pl.col("ended") > 0).then(pl.col("failed") / pl.col("ended")))
        .sort("bucket")
    )


@dataclass(frozen=True)
class Segment:
    """One stacked part of the Overview's bars: rows (bucket, bucket_end, runs), and the runs a click opens."""

    name: str
    status: str
    unresolved: bool = False  # the click opens only the still failing
    resolved: bool = False  # the click opens only the failed resolved since
    rows: pl.DataFrame = field(default_factory=pl.DataFrame)


def bar_segments(buckets: pl.DataFrame) -> list[Segment]:
    """Originals per status, in the order of STATUSES, the failed split into still failing and resolved since (by a
    re-trigger, or handled or cancelled: what needs nothing more, exactly what `resolved=1` opens)."""
    out: list[Segment] = []
    for status in STATUSES:
        part = buckets.filter(pl.col("status") == status).select("bucket", "bucket_end", "runs", "unresolved")
        if part.is_empty():
            continue
        if status != "failed":
            out.append(Segment(status.capitalize(), status, rows=part))
            continue
        still = part.with_columns(runs=pl.col("unresolved")).filter(pl.col("runs") > 0)
        fixed = part.with_columns(runs=pl.col("runs") - pl.col("unresolved")).filter(pl.col("runs") > 0)
        if not still.is_empty():
            out.append(Segment("Failed — still failing", status, unresolved=True, rows=still))
        if not fixed.is_empty():
            out.append(Segment("Failed — resolved or handled since", status, resolved=True, rows=fixed))
    return out


QUANTILES_SCHEMA = {"workflow_id": pl.String, "p50_ms": pl.Float64, "p95_ms": pl.Float64}


def hist_quantiles(hist: Histograms) -> tuple[float | None, pl.DataFrame]:
    """The median of all, and p50 and p95 per workflow, estimated from histograms."""
    per = pl.DataFrame([{"workflow_id": wf, "p50_ms": quantile(h, 0.5), "p95_ms": quantile(h, 0.95)}
                        for wf, h in hist.items() if wf is not None], schema=QUANTILES_SCHEMA)
    return quantile(hist.get(None, []), 0.5), per


def per_workflow(facts: pl.DataFrame, quantiles: pl.DataFrame) -> pl.DataFrame:
    """workflow_id, workflow, runs, failed, unresolved, retriggers, failure_rate, last_failure, p50_ms, p95_ms:
    most still failing first, then most failed."""
    schema: dict[str, pl.DataType] = {"workflow_id": pl.String(), "workflow": pl.String(), "runs": pl.Int64(),
                                      "failed": pl.Int64(), "unresolved": pl.Int64(), "retriggers": pl.Int64(),
                                      "failure_rate": pl.Float64(), "last_failure": pl.Datetime("us", "UTC"),
                                      "p50_ms": pl.Float64(), "p95_ms": pl.Float64()}
    if facts.is_empty():
        return pl.DataFrame(schema=schema)
    orig_failed = _ORIGINAL & _FAILED
    per = (
        facts.group_by("workflow_id")
        .agg(workflow=pl.col("source").first() + " → " + pl.col("destination").first(),
             runs=pl.col("runs").filter(_ORIGINAL).sum(),
             failed=pl.col("runs").filter(orig_failed).sum(),
             unresolved=pl.col("unresolved").sum(),
             retriggers=pl.col("runs").filter(pl.col("retrigger")).sum(),
             ended=pl.col("runs").filter(_ORIGINAL & _ENDED).sum(),
             last_failure=pl.col("last_started").filter(orig_failed).max())
        .with_columns(failure_rate=pl.when(pl.col("ended") > 0).then(pl.col("failed") / pl.col("ended")))
    )
    return (per.join(quantiles, on="workflow_id", how="left")
            .select([pl.col(c).cast(t) for c, t in schema.items()])
            .sort(["unresolved", "failed", "runs", "workflow_id"], descending=[True, True, True, False]))


def failures(facts: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Failed originals by error kind and by the app of the failed step."""
    failed = facts.filter(_ORIGINAL & _FAILED).with_columns(
        kind=pl.col("error_kind").fill_null("(none)"), app=pl.col("failed_app").fill_null("(unknown)"),
        failures=pl.col("runs").cast(pl.Int64))
    by_kind = failed.group_by("kind").agg(pl.col("failures").sum()).sort("failures", "kind", descending=[True, False])
    by_app = failed.group_by("app").agg(pl.col("failures").sum()).sort("failures", "app", descending=[True, False])
    return by_kind, by_app


# ---------------------------------------------------------------- the Workflows page's health

HEALTH_SCHEMA: dict[str, pl.DataType] = {
    "workflow_id": pl.String(), "source": pl.String(), "destination": pl.String(),
    "last_run": pl.Datetime("us", "UTC"), "runs_24h": pl.Int64(), "runs_7d": pl.Int64(), "failed_7d": pl.Int64(),
    "failure_rate_7d": pl.Float64(), "daily": pl.List(pl.Int64())}


@dataclass(frozen=True)
class HealthSpan:
    """The instants the Workflows page's figures count from: the first of SPARK_DAYS days of the zone (today
    last), a day ago and a week ago."""

    now: datetime
    zone: ZoneInfo
    first_day: date
    since: datetime  # the first day's local midnight
    day_ago: datetime
    week_ago: datetime

    @classmethod
    def at(cls, now: datetime | None, zone: str) -> HealthSpan:
        now = now or datetime.now(UTC)
        tz = ZoneInfo(zone)
        first_day = now.astimezone(tz).date() - timedelta(days=SPARK_DAYS - 1)
        return cls(now, tz, first_day, datetime.combine(first_day, time.min, tz), now - timedelta(days=1),
                   now - timedelta(days=7))


def health(span: HealthSpan, recent: list[tuple[Any, ...]], everyone: list[tuple[Any, ...]]) -> pl.DataFrame:
    """The Workflows page's table from a store's two reads. `recent`: originals started since `span.since`, per
    workflow and quarter hour (the slot every zone's days are made of): (workflow_id, slot, runs, of them since
    a day ago, since a week ago, failed since a week ago, ended since a week ago). `everyone`: (workflow_id,
    source, destination, last run) of every workflow, in the table's order."""
    acc: dict[str, list[Any]] = {}
    for wf, slot, runs, r24, r7, f7, e7 in recent:
        a = acc.setdefault(wf, [[0] * SPARK_DAYS, 0, 0, 0, 0])
        day = datetime.fromtimestamp(slot * QUARTER_MS / 1000, UTC).astimezone(span.zone).date()
        a[0][(day - span.first_day).days] += runs
        a[1] += r24
        a[2] += r7
        a[3] += f7
        a[4] += e7
    rows = []
    for wf, source, destination, last_run in everyone:
        daily, r24, r7, f7, e7 = acc.get(wf, [[0] * SPARK_DAYS, 0, 0, 0, 0])
        rows.append({"workflow_id": wf, "source": source, "destination": destination, "last_run": last_run,
                     "runs_24h": r24, "runs_7d": r7, "failed_7d": f7,
                     "failure_rate_7d": f7 / e7 if e7 else None, "daily": daily})
    return pl.DataFrame(rows, schema=HEALTH_SCHEMA)
