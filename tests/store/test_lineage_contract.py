"""Handled marks, the audit and the re-trigger ledger, on both engines: each change made alike to the embedded store
and to its ClickHouse copy (chDB, in this process) reads back alike, and moves the counts the pages show alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fourgent.filters import RunFilter
from fourgent.overview import Window
from fourgent.store import AuditEntry, Retrigger

WHOLE = Window(datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
UNRESOLVED = RunFilter(statuses=("failed",), unresolved=True)


def _both(both, change):
    embedded, copy = both
    return change(embedded), change(copy)


def _marks(store, ids):
    """Handled marks without the instant each engine stamped them with."""
    return {r: (h.by, h.reason) for r, h in store.handled(ids).items()}


def test_marking_and_unmarking_handled_moves_the_unresolved_counts_alike(both):
    embedded, copy = both
    some = embedded.select_ids(UNRESOLVED, limit=3)
    before = copy.unresolved_count(UNRESOLVED)
    mine, theirs = _both(both, lambda s: s.mark_handled([*some, "no-such-run"], "ana@example.com", "a duplicate"))
    assert sorted(mine) == sorted(theirs) == sorted(some)
    assert _both(both, lambda s: s.mark_handled(some, "li", "again")) == ([], [])  # marked once
    assert _marks(copy, some) == _marks(embedded, some) and copy.handled(some)[some[0]].by == "ana@example.com"
    assert abs(copy.handled(some)[some[0]].at - datetime.now(UTC)) < timedelta(minutes=1)
    assert copy.unresolved_count(UNRESOLVED) == embedded.unresolved_count(UNRESOLVED) == before - 3
    for exact_max in (None, 0):  # from the runs, and from rollups written again for the marked days
        mine_view, their_view = embedded.overview(WHOLE, exact_max=exact_max), copy.overview(WHOLE, exact_max=exact_max)
        assert their_view.now == mine_view.now and their_view.estimated == mine_view.estimated
    assert copy.rollups_current()
    assert sorted(_both(both, lambda s: s.unmark_handled(some[:1]))[1]) == some[:1]
    assert _marks(copy, some) == _marks(embedded, some) and some[0] not in copy.handled(some)
    assert copy.overview(WHOLE, exact_max=0).now == embedded.overview(WHOLE, exact_max=0).now


def test_audit_entries_are_appended_and_read_back_alike(both):
    embedded, copy = both
    at = datetime(2026, 12, 1, 10, 0, 0, 654_321, tzinfo=UTC)
    for i in range(3):
        entry = AuditEntry(at=at + timedelta(seconds=i), actor="ops@example.com", role="admin", via="cli",
                           action="prune", target=None if i else "wf", detail={"runs": i, "ok": True} if i else None,
                           outcome="failed" if i == 2 else "ok", message="disk full" if i == 2 else None)
        _both(both, lambda s, e=entry: s.record_audit(e))
    for filters in ({}, {"actor": "OPS@"}, {"outcome": "failed"}, {"since": at + timedelta(seconds=1)}):
        assert copy.audit_entries(**filters) == embedded.audit_entries(**filters), filters
    assert [e.detail for e in copy.audit_entries(action="prune")] == [{"runs": 2, "ok": True},
                                                                       {"runs": 1, "ok": True}, None]


def test_re_triggers_recorded_before_they_run_read_back_and_are_forgotten_alike(both):
    embedded, copy = both
    originals = embedded.select_ids(UNRESOLVED, limit=2)
    at = datetime(2026, 12, 2, 9, tzinfo=UTC)
    planned = [Retrigger(f"run_new_{i}", o, "ana@example.com", at + timedelta(minutes=i), mode="edited",
                         payload_diff=[{"path": "amount", "before": 1, "after": 2}], owner="99999999:1")
               for i, o in enumerate(originals)]
    _both(both, lambda s: s.record_retriggers(planned))
    assert copy.retriggered_since(originals, at) == embedded.retriggered_since(originals, at) == \
        {o: f"run_new_{i}" for i, o in enumerate(originals)}
    assert copy.retriggered_since(originals, at + timedelta(hours=1)) == {}
    assert sorted(copy.orphaned_retriggers("1:1")) == sorted(embedded.orphaned_retriggers("1:1"))
    assert ("run_new_0", "99999999:1", None) in copy.orphaned_retriggers("1:1")
    _both(both, lambda s: s.forget_retriggers(["run_new_0"]))
    assert copy.retriggered_since(originals, at) == embedded.retriggered_since(originals, at) == \
        {originals[1]: "run_new_1"}


def test_what_a_replay_reads_of_its_originals_is_the_same_on_both(both):
    embedded, copy = both
    ids = embedded.select_ids(RunFilter(), limit=400)
    assert copy.originals(ids) == embedded.originals(ids) and len(copy.originals(ids)) == len(ids)
    assert copy.parents(ids) == embedded.parents(ids) and copy.parents(ids)
    recorded = copy.recorded_runs(ids)
    assert recorded == embedded.recorded_runs(ids)
    assert any(r.steps and r.steps[0].get("input") is not None for r in recorded.values())
    assert copy.originals(["no-such-run"]) == {} and copy.recorded_runs([]) == {}


def test_a_run_record_reads_the_same_on_both(both):
    """The run's page: its row, its steps, the run it re-triggered and its re-triggers, where it was read."""
    embedded, copy = both
    ids = embedded.select_ids(RunFilter(), limit=1000)
    parents = embedded.parents(ids)
    some = [next(iter(parents)), next(iter(parents.values())), ids[0], "run_awk_2"]
    assert copy.run_record("no-such-run") is None
    for run_id in some:
        mine, theirs = embedded.run_record(run_id), copy.run_record(run_id)
        assert mine is not None and theirs is not None
        assert theirs.run == mine.run, run_id
        assert theirs.steps == mine.steps, run_id
        assert (theirs.parent, theirs.children) == (mine.parent, mine.children), run_id
        assert (theirs.source_file, theirs.source_line) == (mine.source_file, mine.source_line), run_id
    assert copy.run_record(some[1]).children and copy.run_record(some[0]).parent
