"""Every Overview and Workflows figure, checked on the sample logs against numbers worked out in Python
from a plain read of the `runs` and `steps` views."""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fourgent import overview
from fourgent.store.duckdb import health
from fourgent.store.duckdb import overview as overview_sql
from helpers import record_as_ours, record_sample_lineage, run_line

ENDED = {"finished", "failed", "skipped"}
WINDOWS = {
    "hour": overview.Window(datetime(2026, 10, 28, 12, tzinfo=UTC), datetime(2026, 10, 29, 20, tzinfo=UTC)),
    "day": overview.Window(datetime(2026, 9, 20, 6, 30, tzinfo=UTC), datetime(2026, 10, 29, 17, tzinfo=UTC)),
    "week": overview.Window(datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 10, 30, tzinfo=UTC)),
}


@pytest.fixture
def cur(store, samples):
    record_sample_lineage(store)
    store.ingest([samples])
    return store.db.cursor()


@pytest.fixture
def rows(cur) -> list[dict]:
    result = cur.execute("SELECT id, workflow_id, source, destination, status, started_at, finished_at, "
                         "error_message, error_kind, error_step, retrigger_of FROM runs")
    names = [d[0] for d in result.description]
    return [dict(zip(names, r, strict=True)) for r in result.fetchall()]


def inside(rows: list[dict], w: overview.Window) -> list[dict]:
    return [r for r in rows
            if w.start <= r["started_at"] < w.end and (not w.workflows or r["workflow_id"] in w.workflows)]


def bucket_of(t: datetime, size: str) -> datetime:
    t = t.astimezone(UTC)
    if size == "hour":
        return t.replace(minute=0, second=0, microsecond=0)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    return day if size == "day" else day - timedelta(days=day.weekday())


def ms(r: dict) -> float:
    return (r["finished_at"] - r["started_at"]) / timedelta(milliseconds=1)


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (what quantile_cont does)."""
    values = sorted(values)
    pos = (len(values) - 1) * q
    lo = int(pos)
    return values[lo] + (values[min(lo + 1, len(values) - 1)] - values[lo]) * (pos - lo)


def view(cur, w: overview.Window) -> overview.OverviewView:
    """Every figure read from the runs (exact), whatever the window's size."""
    return overview_sql.overview_view(cur, w, exact_max=10**12)


def originals(rows: list[dict]) -> list[dict]:
    return [r for r in rows if not r["retrigger_of"]]


@pytest.mark.parametrize("size", list(WINDOWS))
def test_bucket_counts_are_originals_counted_by_hand(cur, rows, size):
    w = WINDOWS[size]
    assert w.bucket == size
    mine = inside(rows, w)
    assert any(r["retrigger_of"] for r in mine) or size == "hour"
    expected = Counter((bucket_of(r["started_at"], size), r["status"]) for r in originals(mine))
    got = view(cur, w).buckets
    assert {(b, s): n for b, s, n in got.select("bucket", "status", "runs").iter_rows()} == expected
    assert sum(expected.values()) > 0
    step = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}[size]
    assert all(e - b == step for b, e in got.select("bucket", "bucket_end").iter_rows())


@pytest.mark.parametrize("size", list(WINDOWS))
def test_re_triggers_are_their_own_series_with_those_that_failed_again(cur, rows, size):
    w = WINDOWS[size]
    again = [r for r in inside(rows, w) if r["retrigger_of"]]
    runs = Counter(bucket_of(r["started_at"], size) for r in again)
    failed = Counter(bucket_of(r["started_at"], size) for r in again if r["status"] == "failed")
    got = view(cur, w)
    assert {b: (n, f) for b, _e, n, f in got.retriggers.iter_rows()} == {b: (n, failed[b]) for b, n in runs.items()}
    assert (got.now.retriggers, got.now.retriggers_failed) == (len(again), sum(failed.values()))


@pytest.mark.parametrize("size", list(WINDOWS))
def test_failure_rate_per_bucket_is_first_attempt_failed_over_ended(cur, rows, size):
    w = WINDOWS[size]
    ended, failed = Counter(), Counter()
    for r in originals(inside(rows, w)):
        if r["status"] in ENDED:
            ended[bucket_of(r["started_at"], size)] += 1
            failed[bucket_of(r["started_at"], size)] += r["status"] == "failed"
    got = view(cur, w).rates
    assert {b: rate for b, rate in got.select("bucket", "failure_rate").iter_rows() if rate is not None} == {
        b: failed[b] / n for b, n in ended.items()}


def unresolved_by_hand(rows: list[dict]) -> set[str]:
    latest: dict[str, dict] = {}
    for r in rows:
        if r["retrigger_of"] and (r["retrigger_of"] not in latest
                                  or r["started_at"] > latest[r["retrigger_of"]]["started_at"]):
            latest[r["retrigger_of"]] = r
    return {r["id"] for r in rows if r["status"] == "failed" and not r["retrigger_of"]
            and latest.get(r["id"], {}).get("status") != "finished"}


@pytest.mark.parametrize("size", list(WINDOWS))
def test_headlines_and_the_previous_period_match_by_hand(cur, rows, size):
    w = WINDOWS[size]
    unresolved = unresolved_by_hand(rows)
    got = view(cur, w)
    for head, period in zip((got.now, got.previous), (w, w.previous()), strict=True):
        runs = originals(inside(rows, period))
        ended = [r for r in runs if r["status"] in ENDED]
        assert head.runs == len(runs)
        assert head.failed == sum(r["status"] == "failed" for r in runs)
        assert head.ended == len(ended)
        assert head.median_ms == (statistics.median(ms(r) for r in ended) if ended else None)
        assert head.unresolved == sum(r["id"] in unresolved for r in runs)
    assert w.previous().end == w.start and w.previous().end - w.previous().start == w.end - w.start


def test_a_replay_is_not_counted_as_a_run_nor_its_failure_twice(store, cur, rows, tmp_path, write_log):
    w = WINDOWS["week"]
    unresolved = unresolved_by_hand(rows)
    failure = next(r for r in inside(rows, w) if r["id"] in unresolved and r["error_message"])
    again = [run_line(f"{failure['id']}_again{i}", retrigger_of=failure["id"], status="failed",
                      workflow={"id": failure["workflow_id"], "source": failure["source"],
                                "destination": failure["destination"]},
                      started_at=f"2026-10-29T1{i}:00:00Z", finished_at=f"2026-10-29T1{i}:00:01Z",
                      error={"message": failure["error_message"], "kind": failure["error_kind"]})
             for i in range(2)]
    record_as_ours(store, *again)
    store.ingest([write_log(tmp_path / "again" / "a.jsonl", *again)])
    rows = [*rows, *({"id": a["id"], "workflow_id": failure["workflow_id"], "status": "failed",
                      "started_at": datetime.fromisoformat(a["started_at"]), "retrigger_of": failure["id"]}
                     for a in again)]
    replays = [r for r in inside(rows, w) if r["retrigger_of"]]
    got = view(cur, w)
    assert got.now.runs == len(inside(rows, w)) - len(replays)
    first_failed = sum(r["status"] == "failed" for r in originals(inside(rows, w)))
    assert got.now.failed == first_failed == got.by_kind["failures"].sum() == got.by_app["failures"].sum()
    assert got.top_errors["failures"].sum() == sum(r["status"] == "failed" and bool(r["error_message"])
                                                   for r in originals(inside(rows, w)))


def test_a_re_trigger_that_finished_resolves_its_original(cur, rows):
    resolved = [r["retrigger_of"] for r in rows if r["retrigger_of"] and r["status"] == "finished"]
    assert resolved, "the samples hold a finished re-trigger"
    assert not set(resolved) & unresolved_by_hand(rows)


def test_per_workflow_figures_match_by_hand(cur, rows):
    w = WINDOWS["week"]
    unresolved = unresolved_by_hand(rows)
    got = {r["workflow_id"]: r for r in view(cur, w).per_workflow.to_dicts()}
    by_wf: dict[str, list[dict]] = defaultdict(list)
    for r in inside(rows, w):
        by_wf[r["workflow_id"]].append(r)
    assert set(got) == set(by_wf)
    for wf, mine in by_wf.items():
        runs = originals(mine)
        ended = [ms(r) for r in runs if r["status"] in ENDED]
        failed = [r for r in runs if r["status"] == "failed"]
        g = got[wf]
        assert (g["runs"], g["failed"]) == (len(runs), len(failed))
        assert g["unresolved"] == sum(r["id"] in unresolved for r in runs)
        assert g["retriggers"] == len(mine) - len(runs)
        assert g["failure_rate"] == pytest.approx(len(failed) / len(ended))
        assert g["p50_ms"] == pytest.approx(percentile(ended, 0.5))
        assert g["p95_ms"] == pytest.approx(percentile(ended, 0.95))
        assert g["last_failure"] == max((r["started_at"] for r in failed), default=None)
        assert g["workflow"] == f"{runs[0]['source']} → {runs[0]['destination']}"
    order = [(-g["unresolved"], -g["failed"], -g["runs"]) for g in view(cur, w).per_workflow.to_dicts()]
    assert order == sorted(order)


def pattern(message: str) -> str:
    message = re.sub(r"'[^']*'|\"[^\"]*\"", "…", message)
    return re.sub(r"[A-Za-z0-9_.-]*[0-9][A-Za-z0-9_.-]*", "#", message)


def test_top_errors_group_messages_without_ids_numbers_or_quoted_values(cur, rows):
    w = WINDOWS["week"]
    failed = [r for r in originals(inside(rows, w)) if r["status"] == "failed" and r["error_message"]]
    expected = Counter(pattern(r["error_message"]) for r in failed)
    got = overview_sql.top_errors(cur, w, limit=100)
    assert dict(got.select("pattern", "failures").iter_rows()) == expected
    for row in got.to_dicts():
        hit = [r for r in failed if pattern(r["error_message"]) == row["pattern"]]
        assert row["first_seen"] == min(r["started_at"] for r in hit)
        assert row["last_seen"] == max(r["started_at"] for r in hit)
        assert row["workflow_ids"] == sorted({r["workflow_id"] for r in hit})
    assert got["failures"].to_list() == sorted(got["failures"].to_list(), reverse=True)


def test_the_error_pattern_takes_out_what_varies():
    assert pattern("Unhandled currency 'JPY' in line item mapping") == "Unhandled currency … in line item mapping"
    assert pattern("Line item quantity -3 is negative") == "Line item quantity # is negative"
    assert pattern("401 Unauthorized: token tok_9f8e7 expired") == "# Unauthorized: token # expired"


def test_failures_by_kind_and_by_the_failed_steps_app(cur, rows):
    w = WINDOWS["week"]
    apps = {(run_id, i): app for run_id, i, app in cur.execute("SELECT run_id, step_index, app FROM steps").fetchall()}
    dest = dict(cur.execute("SELECT id, destination_app FROM runs").fetchall())
    failed = [r for r in originals(inside(rows, w)) if r["status"] == "failed"]
    got = view(cur, w)
    assert dict(got.by_kind.iter_rows()) == Counter(r["error_kind"] or "(none)" for r in failed)
    expected_app = Counter(apps.get((r["id"], r["error_step"])) or dest[r["id"]] or "(unknown)" for r in failed)
    assert dict(got.by_app.iter_rows()) == expected_app


def test_a_workflow_filter_narrows_every_figure(cur, rows):
    wf = rows[0]["workflow_id"]
    w = overview.Window(WINDOWS["week"].start, WINDOWS["week"].end, (wf,))
    got = view(cur, w)
    mine = originals(inside(rows, w))
    assert got.now.runs == len(mine) < len(originals(inside(rows, WINDOWS["week"])))
    assert set(got.per_workflow["workflow_id"]) == {wf}
    assert got.buckets["runs"].sum() == len(mine)


def test_an_empty_window_gives_zeros_not_errors(cur):
    w = overview.Window(datetime(2001, 1, 1, tzinfo=UTC), datetime(2001, 1, 2, tzinfo=UTC))
    got = view(cur, w)
    assert (got.now.runs, got.now.failure_rate, got.now.median_ms, got.now.unresolved) == (0, None, None, 0)
    assert got.buckets.is_empty() and got.rates.is_empty() and got.retriggers.is_empty()
    assert got.per_workflow.is_empty() and got.top_errors.is_empty()


def local_bucket(t: datetime, size: str, zone: str) -> datetime:
    t = t.astimezone(ZoneInfo(zone))
    if size == "hour":
        return t.replace(minute=0, second=0, microsecond=0)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    return day if size == "day" else day - timedelta(days=day.weekday())


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu"])
@pytest.mark.parametrize("size", list(WINDOWS))
def test_buckets_are_the_viewers_hours_days_and_weeks(cur, rows, size, zone):
    base = WINDOWS[size]
    w = overview.Window(base.start, base.end, zone=zone)
    expected = Counter((local_bucket(r["started_at"], size, zone), r["status"]) for r in originals(inside(rows, w)))
    got = view(cur, w).buckets
    assert {(b, s): n for b, s, n in got.select("bucket", "status", "runs").iter_rows()} == expected
    for b, e in got.select("bucket", "bucket_end").unique().iter_rows():
        assert local_bucket(b, size, zone) == b.astimezone(ZoneInfo(zone))  # starts on the zone's boundary
        assert local_bucket(e, size, zone) == e.astimezone(ZoneInfo(zone))


def test_a_day_across_the_end_of_daylight_saving_is_25_hours_long():
    w = overview.Window(datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 10, 30, tzinfo=UTC), zone="Europe/Paris")
    slots = w.slots
    paris = ZoneInfo("Europe/Paris")
    lengths = {datetime.fromtimestamp(b / 1000, UTC).astimezone(paris).date(): (e - b) // overview.HOUR_MS
               for b, e in zip(slots.starts, slots.ends, strict=True)}
    assert lengths[date(2026, 10, 25)] == 25 and lengths[date(2026, 10, 24)] == 24
    assert w.whole_hours
    assert not overview.Window(w.start, w.end, zone="Asia/Kolkata").whole_hours


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "Asia/Kolkata"])
def test_workflow_health_counts_originals_in_the_last_day_and_week_and_each_day_of_the_zone(cur, rows, zone):
    now = datetime(2026, 10, 29, 18, tzinfo=UTC)
    tz = ZoneInfo(zone)
    got = {r["workflow_id"]: r for r in health.workflow_health(cur, now, zone).to_dicts()}
    assert set(got) == {r["workflow_id"] for r in rows}
    today = now.astimezone(tz).date()
    for wf, g in got.items():
        everything = [r for r in rows if r["workflow_id"] == wf]
        mine = originals(everything)
        week = [r for r in mine if now - timedelta(days=7) <= r["started_at"] < now]
        assert g["runs_24h"] == sum(now - timedelta(days=1) <= r["started_at"] < now for r in mine)
        assert g["runs_7d"] == len(week)
        assert g["failed_7d"] == sum(r["status"] == "failed" for r in week)
        ended = sum(r["status"] in ENDED for r in week)
        assert g["failure_rate_7d"] == (pytest.approx(g["failed_7d"] / ended) if ended else None)
        assert g["last_run"] == max(r["started_at"] for r in everything)
        days = [today - timedelta(days=overview.SPARK_DAYS - 1 - i) for i in range(overview.SPARK_DAYS)]
        assert g["daily"] == [sum(r["started_at"] < now and r["started_at"].astimezone(tz).date() == d for r in mine)
                              for d in days]
    assert sum(sum(g["daily"]) for g in got.values()) > 0
