"""The per-hour rollups stay equal to the runs they summarise, through live appends, superseded snapshots,
re-triggers and crashes; and the Overview reads the same figures from them as from the runs."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from fourgent import overview, quantiles
from fourgent.filters import RunFilter
from fourgent.store.duckdb import overview as overview_sql
from fourgent.store.duckdb import rollup, sql, unresolved
from fourgent.store.duckdb import runs as runs_sql
from helpers import load_demo, record_as_ours, run_line

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
WF = {"id": "hubspot-closed-won-quickbooks-invoice", "source": "HubSpot Closed Won",
      "destination": "QuickBooks Invoice", "source_app": "HubSpot", "destination_app": "QuickBooks"}


@pytest.fixture
def demo_store(store, tmp_path):
    load_demo(store, tmp_path / "logs", 8000, days=60, now=NOW)
    return store


def recomputed(cur) -> tuple[pl.DataFrame, pl.DataFrame]:
    """What the rollups must hold: computed now, over every run."""
    since = datetime(1970, 1, 1, tzinfo=UTC)
    facts = cur.sql(rollup.facts_sql("true"), params={"since": since}).pl()
    hist = cur.sql(rollup.hist_sql("true")).pl()
    return facts, hist


def stored(cur) -> tuple[pl.DataFrame, pl.DataFrame]:
    return (cur.sql("SELECT * RENAME (hour AS slot) FROM fg.hour_runs").pl(),
            cur.sql("SELECT * RENAME (hour AS slot) FROM fg.hour_durations").pl())


def same(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    keys = [c for c in a.columns if c not in ("source", "destination")]
    a, b = a.select(keys), b.select(keys).cast(dict(a.select(keys).schema))
    return a.sort(keys, nulls_last=True).equals(b.sort(keys, nulls_last=True))


def assert_current(cur) -> None:
    assert rollup.is_current(cur)
    (facts, hist), (kept_facts, kept_hist) = recomputed(cur), stored(cur)
    assert same(kept_facts, facts) and same(kept_hist, hist)


def test_an_ingest_leaves_rollups_equal_to_the_runs(demo_store):
    cur = demo_store.db.cursor()
    assert_current(cur)
    assert cur.execute("SELECT sum(runs) FROM fg.hour_runs").fetchall()[0][0] == demo_store.run_count()


def test_live_appends_superseded_snapshots_and_a_resolving_re_trigger_keep_them_current(demo_store, tmp_path,
                                                                                         write_log):
    cur = demo_store.db.cursor()
    # Three different days, so no change is marked dirty by accident of another.
    failed = cur.execute("SELECT id, started_at FROM runs WHERE status = 'failed' AND retrigger_of IS NULL "
                         f"AND id IN ({sql.UNRESOLVED_SQL}) AND started_at < '2026-11-10' "
                         "ORDER BY started_at DESC LIMIT 1").fetchall()[0]
    day = int(failed[1].timestamp() * 1000) // rollup.DAY_MS
    before = cur.execute("SELECT sum(unresolved) FROM fg.hour_runs WHERE hour // 24 = ?", [day]).fetchall()[0][0]
    running, was = cur.execute("SELECT id, started_at FROM runs WHERE status = 'finished' "
                               "AND started_at BETWEEN '2026-10-01' AND '2026-10-02' LIMIT 1").fetchall()[0]
    assert {day, int(was.timestamp() * 1000) // rollup.DAY_MS} & {20_723} == set()  # 2026-09-27 is neither
    lines = [
        # a re-trigger, weeks later, that finished: its original's (old) day loses an unresolved failure
        run_line("rt_new", workflow=WF, retrigger_of=failed[0], started_at="2026-11-25T11:00:00Z",
                 finished_at="2026-11-25T11:00:02Z"),
        # a newer snapshot of an old run, now failed
        run_line(running, workflow=WF, status="failed", started_at="2026-09-27T10:00:00Z",
                 finished_at="2026-09-27T10:00:05Z", updated_at="2026-11-25T11:30:00Z",
                 error={"message": "boom", "kind": "logic"}),
        run_line("brand_new", workflow=WF, started_at="2026-11-25T11:45:00Z", finished_at="2026-11-25T11:45:01Z"),
    ]
    record_as_ours(demo_store, *lines)
    demo_store.ingest([write_log(tmp_path / "logs" / "live.jsonl", *lines)])
    assert_current(cur)
    after = cur.execute("SELECT sum(unresolved) FROM fg.hour_runs WHERE hour // 24 = ?", [day]).fetchall()[0][0]
    assert after == before - 1


def test_a_crash_before_the_refresh_is_repaired_by_the_next_ingest(demo_store, tmp_path, write_log, monkeypatch):
    cur = demo_store.db.cursor()

    def crash(cur):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(rollup, "refresh", crash)
    with pytest.raises(KeyboardInterrupt):
        demo_store.ingest([write_log(tmp_path / "logs" / "a.jsonl", run_line("late", workflow=WF))])
    assert not rollup.is_current(cur)  # the batch committed with its days marked
    # The Overview does not read stale rollups meanwhile: it counts the runs.
    w = overview.Window(datetime(2026, 11, 1, tzinfo=UTC), NOW)
    assert overview_sql.overview_view(cur, w, exact_max=0).estimated is False
    monkeypatch.undo()
    demo_store.ingest([tmp_path / "logs"])
    assert_current(cur)


@pytest.mark.parametrize("days, workflows, zone", [
    (3, (), "UTC"), (30, (), "UTC"), (59, (), "UTC"), (45, ("stripe-payment-xero-invoice",), "UTC"),
    # across the end of daylight saving (2026-10-25 in Paris, 2026-11-01 in New York): 25-hour days
    (40, (), "Europe/Paris"), (59, (), "America/New_York"), (20, (), "Pacific/Auckland"),
    # half-hour and quarter-hour zones: the hours their midnights cut come from the runs
    (30, (), "Asia/Kolkata"), (12, ("stripe-payment-xero-invoice",), "Asia/Kathmandu"),
])
def test_the_overview_reads_the_same_figures_from_rollups_as_from_the_runs(demo_store, days, workflows, zone):
    cur = demo_store.db.cursor()
    w = overview.Window(NOW - timedelta(days=days, hours=5, minutes=17), NOW - timedelta(hours=3, minutes=2),
                        workflows, zone)
    rolled = overview_sql.overview_view(cur, w, exact_max=0)
    exact = overview_sql.overview_view(cur, w, exact_max=10**12)
    assert rolled.estimated and not exact.estimated
    for a, b in ((rolled.now, exact.now), (rolled.previous, exact.previous)):
        assert (a.runs, a.failed, a.ended, a.unresolved) == (b.runs, b.failed, b.ended, b.unresolved)
        assert a.median_ms == pytest.approx(b.median_ms, rel=0.005)
    assert rolled.buckets.equals(exact.buckets) and rolled.retriggers.equals(exact.retriggers)
    assert (rolled.now.retriggers, rolled.now.retriggers_failed) == (exact.now.retriggers, exact.now.retriggers_failed)
    assert rolled.by_kind.equals(exact.by_kind) and rolled.by_app.equals(exact.by_app)
    cols = ["workflow_id", "workflow", "runs", "failed", "unresolved", "retriggers", "last_failure"]
    assert rolled.per_workflow.select(cols).equals(exact.per_workflow.select(cols))
    for a, b in zip(rolled.per_workflow["p95_ms"], exact.per_workflow["p95_ms"], strict=True):
        assert a == pytest.approx(b, rel=0.005)


def test_a_half_hour_zone_cuts_its_days_at_its_own_midnights_reading_those_hours_from_the_runs(demo_store):
    cur = demo_store.db.cursor()
    w = overview.Window(NOW - timedelta(days=30), NOW, (), "Asia/Kolkata")
    assert not w.whole_hours and w.slots.size == overview.QUARTER_MS
    assert len(w.cut_hours) in (30, 31)  # one UTC hour per local midnight (18:30 UTC)
    assert all(datetime.fromtimestamp(h * 3600, UTC).hour == 18 for h in w.cut_hours)
    view = overview_sql.overview_view(cur, w, exact_max=0)
    assert view.estimated  # the rolled path
    midnight = [b.astimezone(ZoneInfo("Asia/Kolkata")) for b in view.buckets["bucket"].unique().to_list()]
    assert midnight and all((t.hour, t.minute) == (0, 0) for t in midnight)
    assert view.now.runs == overview_sql.overview_view(cur, overview.Window(w.start, w.end)).now.runs


@pytest.mark.parametrize("f", [
    RunFilter(), RunFilter(statuses=("failed", "finished")), RunFilter(statuses=("finished",)),
    RunFilter(workflows=("stripe-payment-xero-invoice", "pipedrive-deal-sheets-row")),
    RunFilter(start=NOW - timedelta(days=7, hours=3)), RunFilter(start=NOW - timedelta(days=40), end=NOW),
    RunFilter(q="deal"),
    RunFilter(kinds=("auth",)), RunFilter(apps=("QuickBooks", "Xero"), start=NOW - timedelta(days=20)),
])
def test_the_bulk_count_from_rollups_equals_counting_the_runs(demo_store, f):
    cur = demo_store.db.cursor()
    selection = f.bulk_selection()
    assert unresolved.unresolved_count(cur, f) == (runs_sql.count(cur, selection) if selection else 0)


def test_histogram_quantiles_are_within_half_a_percent():
    rng = random.Random(3)
    values = [int(rng.lognormvariate(7.5, 1.2)) + 1 for _ in range(20_000)]
    hist: dict[int, int] = {}
    for v in values:
        b = 1 + int(__import__("math").floor(__import__("math").log(v) * rollup.BUCKETS_PER_E))
        hist[b] = hist.get(b, 0) + 1
    ordered = sorted(values)
    for q in (0.5, 0.95, 0.99):
        pos = (len(ordered) - 1) * q
        exact = ordered[int(pos)] + (ordered[min(int(pos) + 1, len(ordered) - 1)] - ordered[int(pos)]) * (pos % 1)
        assert quantiles.quantile(list(hist.items()), q) == pytest.approx(exact, rel=0.005)
    assert quantiles.quantile([], 0.5) is None
