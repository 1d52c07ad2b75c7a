"""Retention on both engines: the same cutoffs prune the same runs, ledger rows and rejected lines from the embedded
store and from its ClickHouse copy (chDB, in this process), archive them, and leave the same figures."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow.parquet as pq

from fourgent.filters import RunFilter
from fourgent.overview import Window

WF = "hubspot-closed-won-quickbooks-invoice"
WHOLE = Window(datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))


def test_a_prune_removes_and_archives_the_same_rows_on_both(both, tmp_path):
    embedded, copy = both
    cutoff = datetime(2026, 9, 15, tzinfo=UTC)  # a month and a half of the samples; August drops whole
    per_workflow = {WF: datetime(2026, 10, 10, tzinfo=UTC)}
    assert copy.last_pruned() is None
    dry_mine, dry_theirs = embedded.prune(cutoff, per_workflow, dry_run=True), copy.prune(cutoff, per_workflow,
                                                                                          dry_run=True)
    assert (dry_theirs.runs, dry_theirs.rejected_lines, dry_theirs.comments, dry_theirs.ledger_rows) == \
        (dry_mine.runs, dry_mine.rejected_lines, dry_mine.comments, dry_mine.ledger_rows)
    assert dry_theirs.runs > 0 and copy.run_count() == embedded.run_count()  # a dry run changes nothing
    mine = embedded.prune(cutoff, per_workflow, archive=tmp_path / "a1")
    theirs = copy.prune(cutoff, per_workflow, archive=tmp_path / "a2")
    assert (theirs.runs, theirs.rejected_lines, theirs.comments, theirs.ledger_rows) == \
        (mine.runs, mine.rejected_lines, mine.comments, mine.ledger_rows) == \
        (dry_mine.runs, dry_mine.rejected_lines, dry_mine.comments, dry_mine.ledger_rows)
    assert copy.run_count() == embedded.run_count()
    assert copy.count(RunFilter(end=cutoff)) == 0
    assert copy.count(RunFilter(workflows=(WF,), end=per_workflow[WF])) == 0
    ids = embedded.select_ids(RunFilter(), limit=1000)
    assert copy.select_ids(RunFilter(), limit=1000) == ids
    assert copy.latest_retriggers(ids) == embedded.latest_retriggers(ids)
    assert copy.overview(WHOLE, exact_max=0).now == embedded.overview(WHOLE, exact_max=0).now
    assert copy.rollups_current() and copy.last_pruned() is not None
    months = {m for (m,) in copy.client.query("SELECT DISTINCT partition FROM system.parts WHERE active AND "
                                               "database = currentDatabase() AND table = 'runs'").result_rows}
    assert "202608" not in months and "202610" in months  # August went whole: dropped, its disk freed
    archived = {p.stem: pq.read_table(p).num_rows for p in (tmp_path / "a2").glob("*/*.parquet")}
    assert archived["runs"] == theirs.runs and archived["rejected_lines"] == theirs.rejected_lines
    assert archived["comments"] == theirs.comments
    kept = copy.run_count()
    assert copy.prune(None, {}).runs == 0 and copy.run_count() == kept  # no cutoff: nothing goes
    only = copy.prune(None, {WF: datetime(2026, 10, 20, tzinfo=UTC)})  # one workflow's own cutoff, no default
    assert only.runs == embedded.prune(None, {WF: datetime(2026, 10, 20, tzinfo=UTC)}).runs > 0
    assert only.rejected_lines == 0 and copy.run_count() == embedded.run_count() == kept - only.runs
