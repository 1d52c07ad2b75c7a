"""The Overview's and the Workflows page's figures on both engines: the embedded store, and ClickHouse (chDB, in this
process) holding a copy of it, must show a reader the same numbers for any window, zone and workflow."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from fourgent.filters import RunFilter
from fourgent.overview import OverviewView, Window

WF = "hubspot-closed-won-quickbooks-invoice"
# The sample runs lie in 2026-08-01 .. 2026-10-29: weeks (a 90-day window), days, hours (two days), in UTC, in a
# zone with daylight saving that changes inside the window (Berlin, 25 October), and in a half-hour zone.
WINDOWS = [
    Window(datetime(2026, 8, 20, tzinfo=UTC), datetime(2026, 11, 18, tzinfo=UTC)),
    Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC), zone="Europe/Berlin"),
    Window(datetime(2026, 10, 1, 3, 17, tzinfo=UTC), datetime(2026, 10, 8, 3, 17, tzinfo=UTC), zone="Asia/Kolkata"),
    Window(datetime(2026, 10, 14, tzinfo=UTC), datetime(2026, 10, 16, tzinfo=UTC)),
    Window(datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC), workflows=(WF,)),
    Window(datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 8, tzinfo=UTC)),  # no runs at all
]


def _same(a: pl.DataFrame, b: pl.DataFrame, what: str) -> None:
    """Equal as a reader sees them: every column and type, rows in any order where the figures tie."""
    assert a.schema == b.schema, what
    keys = [c for c, t in a.schema.items() if not isinstance(t, pl.List)]
    assert_frame_equal(a.sort(keys, nulls_last=True), b.sort(keys, nulls_last=True),
                       check_exact=False, rel_tol=1e-12, abs_tol=0), what  # interpolations round alike to 1e-12


def _compare(mine: OverviewView, theirs: OverviewView) -> None:
    for f in fields(OverviewView):
        a, b = getattr(mine, f.name), getattr(theirs, f.name)
        if f.name == "top_errors":  # the example of a pattern: any of its most frequent messages
            a, b = a.drop("example"), b.drop("example")
        if isinstance(a, pl.DataFrame):
            _same(a, b, f.name)
        else:
            assert a == b, f.name


@pytest.mark.parametrize("w", WINDOWS, ids=lambda w: f"{w.bucket}-{w.zone}-{len(w.workflows)}")
def test_the_overview_reads_the_same_figures_on_clickhouse_as_on_the_embedded_store(both, w):
    embedded, copy = both
    mine, theirs = embedded.overview(w), copy.overview(w)
    _compare(mine, theirs)
    if w.start.year == 2026 and not w.workflows:
        assert mine.now.runs > 0 and not mine.buckets.is_empty()
    for pattern, example in theirs.top_errors.select("pattern", "example").iter_rows():
        assert copy.count(RunFilter(error=pattern, q="")) > 0 and example


def test_an_unresolved_count_moves_alike_when_a_failure_is_handled(both):
    embedded, copy = both
    w = WINDOWS[0]
    before = copy.overview(w).now.unresolved
    assert before == embedded.overview(w).now.unresolved > 0
    bulk = RunFilter(statuses=("failed",), unresolved=True)
    assert copy.unresolved_count(bulk) == embedded.unresolved_count(bulk) > 0
    assert copy.unresolved_count(RunFilter(q="no such run")) == embedded.unresolved_count(RunFilter(q="no such run"))


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kathmandu"])
def test_the_workflows_page_reads_the_same_health_on_both(both, zone):
    embedded, copy = both
    for now in (datetime(2026, 10, 29, 18, tzinfo=UTC), datetime(2026, 10, 10, 7, 45, tzinfo=UTC)):
        mine, theirs = embedded.workflow_health(now, zone), copy.workflow_health(now, zone)
        assert theirs.equals(mine), (zone, now)
        assert mine["runs_7d"].sum() > 0 and mine["daily"].list.sum().sum() > 0


@pytest.mark.parametrize("w", [w for w in WINDOWS if w.bucket != "hour" and w.whole_hours and w.start.year == 2026],
                         ids=lambda w: f"{w.bucket}-{w.zone}-{len(w.workflows)}")
def test_from_the_rollups_both_engines_estimate_the_same_figures(both, w):
    """Past EXACT_MAX runs both read whole hours from their rollups (forced here with exact_max=0): the counts
    stay exact and both estimate the durations from the same 1% buckets."""
    embedded, copy = both
    mine, theirs = embedded.overview(w, exact_max=0), copy.overview(w, exact_max=0)
    assert mine.estimated and theirs.estimated
    _compare(mine, theirs)
    exact = copy.overview(w)
    assert not exact.estimated and (theirs.now.runs, theirs.now.unresolved) == (exact.now.runs, exact.now.unresolved)


def test_a_changed_day_is_read_from_the_runs_until_its_rollup_is_written_again(both):
    """A refresh writes a new generation of the marked days; until then the Overview does not trust the rollups."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from fourgent.store.clickhouse import rollup

    embedded, copy = both
    w = WINDOWS[0]
    assert copy.rollups_current() and copy.refresh_rollups() == 0
    before = copy.overview(w, exact_max=0)
    some = copy.select_ids(RunFilter(statuses=("failed",), originals=True, unresolved=True), limit=1)[0]
    _, reader = next(embedded.dump())
    runs = pa.Table.from_batches(list(reader))
    row = runs.filter(pc.equal(runs["id"], some))
    row = row.set_column(row.schema.get_field_index("status"), "status", pa.array(["finished"]))
    row = row.set_column(row.schema.get_field_index("seq"), "seq", pa.array([10**9], pa.uint64()))
    copy.client.insert_arrow("runs", row)  # a later snapshot: the failure finished after all
    rollup.mark_all(copy)
    assert not copy.rollups_current()
    stale = copy.overview(w, exact_max=0)  # read from the runs: already right
    assert not stale.estimated and stale.now.failed == before.now.failed - 1
    assert copy.refresh_rollups() > 0 and copy.rollups_current()
    again = copy.overview(w, exact_max=0)
    assert again.estimated and (again.now.failed, again.now.unresolved) == (before.now.failed - 1,
                                                                             before.now.unresolved - 1)
    assert copy.client.query("SELECT count() FROM rollup_days WHERE generation < (SELECT max(generation) "
                             "FROM rollup_days)").result_rows[0][0] == 0  # the replaced generations are gone


def test_a_database_of_another_schema_version_is_refused_in_words_and_left_as_it_was(both, tmp_path):
    from fourgent.store.clickhouse import SCHEMA_VERSION, ClickHouseStore, SchemaMismatch

    _, copy = both
    runs = copy.run_count()
    copy.client.command("INSERT INTO meta (key, value) VALUES ('schema_version', '0')")
    copy.close()
    with pytest.raises(SchemaMismatch, match=f"holds Fourgent tables of version 0; this is version {SCHEMA_VERSION}"):
        ClickHouseStore(f"chdb://{tmp_path / 'clickhouse'}")
    import clickhouse_connect

    raw = clickhouse_connect.get_client(dsn=f"chdb://{tmp_path / 'clickhouse'}")
    try:
        assert raw.query("SELECT count() FROM fourgent.runs FINAL").result_rows[0][0] == runs  # nothing changed
    finally:
        raw.close()
