"""Every Overview and Workflows figure, checked on the sample logs against numbers worked out in Python
from a plain read of the `runs` and `steps` views."""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from fourgent import overview
from fourgent.store.duckdb import health
from fourgent.store.duckdb import overview as overview_sql
from helpers import record_sample_lineage

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


@pytest.mark.parametrize("size", list(WINDOWS))
def test_bucket_counts_match_runs_counted_by_hand(cur, rows, size):
    w = WINDOWS[size]
    assert w.bucket == size
    expected = Counter((bucket_of(r["started_at"], size), r["status"]) for r in inside(rows, w))
    got = overview_sql.bucket_counts(cur, w)
    assert {(b, s): n for b, s, n in got.select("bucket", "status", "runs").iter_rows()} == expected
    assert sum(expected.values()) > 0
    step = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}[size]
    assert all(e - b == step for b, e in got.select("bucket", "bucket_end").iter_rows())


@pytest.mark.parametrize("size", list(WINDOWS))
def test_failure_rate_per_bucket_is_failed_over_ended(cur, rows, size):
    w = WINDOWS[size]
    ended, failed = Counter(), Counter()
    for r in inside(rows, w):
        if r["status"] in ENDED:
            ended[bucket_of(r["started_at"], size)] += 1
            failed[bucket_of(r["started_at"], size)] += r["status"] == "failed"
    got = overview.failure_rates(overview_sql.bucket_counts(cur, w))
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
    for got, period in zip(overview_sql.headlines(cur, w), (w, w.previous()), strict=True):
        runs = inside(rows, period)
        ended = [r for r in runs if r["status"] in ENDED]
        assert got.runs == len(runs)
        assert got.failed == sum(r["status"] == "failed" for r in runs)
        assert got.ended == len(ended)
        assert got.median_ms == (statistics.median(ms(r) for r in ended) if ended else None)
        assert got.unresolved == sum(r["id"] in unresolved for r in runs)
    assert w.previous().end == w.start and w.previous().end - w.previous().start == w.end - w.start


def test_a_re_trigger_that_finished_resolves_its_original(cur, rows):
    resolved = [r["retrigger_of"] for r in rows if r["retrigger_of"] and r["status"] == "finished"]
    assert resolved, "the samples hold a finished re-trigger"
    assert not set(resolved) & unresolved_by_hand(rows)


def test_per_workflow_figures_match_by_hand(cur, rows):
    w = WINDOWS["week"]
    got = {r["workflow_id"]: r for r in overview_sql.per_workflow(cur, w).to_dicts()}
    by_wf: dict[str, list[dict]] = defaultdict(list)
    for r in inside(rows, w):
        by_wf[r["workflow_id"]].append(r)
    assert set(got) == set(by_wf)
    for wf, runs in by_wf.items():
        ended = [ms(r) for r in runs if r["status"] in ENDED]
        failed = [r for r in runs if r["status"] == "failed"]
        g = got[wf]
        assert (g["runs"], g["failed"]) == (len(runs), len(failed))
        assert g["failure_rate"] == pytest.approx(len(failed) / len(ended))
        assert g["p50_ms"] == pytest.approx(percentile(ended, 0.5))
        assert g["p95_ms"] == pytest.approx(percentile(ended, 0.95))
        assert g["last_failure"] == max((r["started_at"] for r in failed), default=None)
        assert g["workflow"] == f"{runs[0]['source']} → {runs[0]['destination']}"


def pattern(message: str) -> str:
    message = re.sub(r"'[^']*'|\"[^\"]*\"", "…", message)
    return re.sub(r"[A-Za-z0-9_.-]*[0-9][A-Za-z0-9_.-]*", "#", message)


def test_top_errors_group_messages_without_ids_numbers_or_quoted_values(cur, rows):
    w = WINDOWS["week"]
    failed = [r for r in inside(rows, w) if r["status"] == "failed" and r["error_message"]]
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
    failed = [r for r in inside(rows, w) if r["status"] == "failed"]
    by_kind, by_app = overview_sql.failures_by_kind_and_app(cur, w)
    assert dict(by_kind.iter_rows()) == Counter(r["error_kind"] or "(none)" for r in failed)
    expected_app = Counter(apps.get((r["id"], r["error_step"])) or dest[r["id"]] or "(unknown)" for r in failed)
    assert dict(by_app.iter_rows()) == expected_app


def test_a_workflow_filter_narrows_every_figure(cur, rows):
    wf = rows[0]["workflow_id"]
    w = overview.Window(WINDOWS["week"].start, WINDOWS["week"].end, (wf,))
    assert overview_sql.headlines(cur, w)[0].runs == len(inside(rows, w)) < len(inside(rows, WINDOWS["week"]))
    assert set(overview_sql.per_workflow(cur, w)["workflow_id"]) == {wf}
    assert overview_sql.bucket_counts(cur, w)["runs"].sum() == len(inside(rows, w))


def test_an_empty_window_gives_zeros_not_errors(cur):
    w = overview.Window(datetime(2001, 1, 1, tzinfo=UTC), datetime(2001, 1, 2, tzinfo=UTC))
    now, _prev = overview_sql.headlines(cur, w)
    assert (now.runs, now.failure_rate, now.median_ms, now.unresolved) == (0, None, None, 0)
    buckets = overview_sql.bucket_counts(cur, w)
    assert buckets.is_empty() and overview.failure_rates(buckets).is_empty()
    assert overview_sql.per_workflow(cur, w).is_empty() and overview_sql.top_errors(cur, w).is_empty()


def test_workflow_health_counts_the_last_day_and_week_and_each_day(cur, rows):
    now = datetime(2026, 10, 29, 18, tzinfo=UTC)
    got = {r["workflow_id"]: r for r in health.workflow_health(cur, now).to_dicts()}
    assert set(got) == {r["workflow_id"] for r in rows}
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for wf, g in got.items():
        mine = [r for r in rows if r["workflow_id"] == wf]
        week = [r for r in mine if now - timedelta(days=7) <= r["started_at"] < now]
        assert g["runs_24h"] == sum(now - timedelta(days=1) <= r["started_at"] < now for r in mine)
        assert g["runs_7d"] == len(week)
        assert g["failed_7d"] == sum(r["status"] == "failed" for r in week)
        ended = sum(r["status"] in ENDED for r in week)
        assert g["failure_rate_7d"] == (pytest.approx(g["failed_7d"] / ended) if ended else None)
        assert g["last_run"] == max(r["started_at"] for r in mine)
        days = [today - timedelta(days=overview.SPARK_DAYS - 1 - i) for i in range(overview.SPARK_DAYS)]
        assert g["daily"] == [sum(d <= r["started_at"] < min(d + timedelta(days=1), now) for r in mine) for d in days]
    assert sum(sum(g["daily"]) for g in got.values()) > 0
