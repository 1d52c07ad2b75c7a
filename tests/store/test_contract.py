"""The store contract: what every engine behind fourgent.store must do, written against the protocols only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fourgent.filters import RunFilter
from fourgent.overview import Window
from fourgent.spec import STATUSES
from fourgent.store import QueryRefused, Store
from helpers import record_as_ours, run_line

SAMPLE_RUNS, SAMPLE_REJECTED = 356, 8


def test_ingest_accounts_for_every_line(engine_store: Store, samples):
    report = engine_store.ingest([samples])
    assert report.lines == report.snapshots + report.rejected == 369
    assert report.rejected == SAMPLE_REJECTED and engine_store.run_count() == SAMPLE_RUNS
    again = engine_store.ingest([samples])
    assert again.lines == 0 and engine_store.run_count() == SAMPLE_RUNS  # read on from where it stopped


def test_the_runs_view_counts_pages_and_orders_alike(loaded: Store):
    view = loaded.runs_view(RunFilter(), page=1, size=25)
    assert view.total == view.store_runs == SAMPLE_RUNS and view.rejected_lines == SAMPLE_REJECTED
    assert sum(view.by_status.values()) == SAMPLE_RUNS and set(view.by_status) == set(STATUSES)
    newest = view.rows["started_at"].to_list()
    assert newest == sorted(newest, reverse=True) and len(newest) == 25
    every = [i for p in range(1, 16) for i in loaded.page(RunFilter(), page=p, size=25)["id"].to_list()]
    assert len(every) == len(set(every)) == SAMPLE_RUNS  # pages never overlap
    assert loaded.select_ids(RunFilter(), limit=10) == every[:10]
    failed = RunFilter(statuses=("failed",))
    assert loaded.count(failed) == loaded.status_counts(RunFilter())["failed"] == len(loaded.select_ids(failed))
    assert loaded.daily_counts(RunFilter())["runs"].sum() == SAMPLE_RUNS


def test_an_exact_id_is_found_and_text_is_only_ever_a_parameter(loaded: Store):
    some = loaded.select_ids(RunFilter(), limit=1)[0]
    assert loaded.find_exact(some) and loaded.runs_view(RunFilter(q=some)).exact_id == some
    assert loaded.count(RunFilter(q="'; DROP TABLE runs; --")) == 0 and loaded.run_count() == SAMPLE_RUNS


@pytest.mark.parametrize("field, value", [
    ("statuses", ("failed",)), ("workflows", ("stripe-payment-xero-invoice",)),
    ("start", datetime(2026, 10, 1, tzinfo=UTC)), ("end", datetime(2026, 10, 15, tzinfo=UTC)),
    ("kinds", ("auth",)), ("apps", ("QuickBooks",)), ("q", "acme"), ("error", "#"),
])
def test_the_unresolved_count_is_the_count_of_what_the_bulk_takes(loaded: Store, field, value):
    f = RunFilter(**{field: value})
    selection = f.bulk_selection()
    assert selection is not None
    assert loaded.unresolved_count(f) == loaded.count(selection) == len(loaded.select_ids(selection))


def test_overview_figures_add_up_to_the_runs_counted(loaded: Store):
    w = Window(datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
    view = loaded.overview(w)
    counted = loaded.count(RunFilter(start=w.start, end=w.end))
    assert view.now.runs == view.buckets["runs"].sum() == view.per_workflow["runs"].sum() == counted > 0
    assert view.by_kind["failures"].sum() == view.now.failed == loaded.count(
        RunFilter(statuses=("failed",), start=w.start, end=w.end))
    assert loaded.overview(w, exact_max=0).now.runs == counted  # from the rollups: the same counts
    health = loaded.workflow_health(datetime(2026, 11, 1, tzinfo=UTC))
    assert set(health["workflow_id"]) == {wf for wf, _ in loaded.workflows()}


def test_a_claim_is_held_once_until_released(engine_store: Store):
    assert engine_store.claim(["a", "b"]) == {"a", "b"}
    assert engine_store.claim(["a", "c"]) == {"c"}
    engine_store.release(["a"])
    assert engine_store.claim(["a"]) == {"a"}


def test_a_run_record_has_its_steps_lineage_and_source(engine_store: Store, tmp_path, write_log):
    original = run_line("orig", status="failed", error={"message": "401", "step": 0, "kind": "auth"})
    child = run_line("child", retrigger_of="orig", started_at="2026-11-20T15:00:00Z",
                     retriggered_by="ana")
    record_as_ours(engine_store, child)
    engine_store.ingest([write_log(tmp_path / "logs" / "a.jsonl", original, child)], logs_dir=tmp_path / "logs")
    record = engine_store.run_record("orig")
    assert record is not None and record.run["status"] == "failed" and len(record.steps) == 1
    assert [c["id"] for c in record.children] == ["child"] and record.children[0]["by"] == "ana"
    assert (record.source_file, record.source_line) == ("a.jsonl", 1)
    assert engine_store.parents(["child", "orig"]) == {"child": "orig"}
    assert engine_store.originals(["orig"])["orig"][2] == {"deal_id": "1893", "amount": "12000.00"}
    assert engine_store.retriggered_since(["orig"], datetime(2026, 11, 20, 14, tzinfo=UTC)) == {"orig": "child"}
    assert engine_store.run_record("nope") is None


def test_a_line_claiming_to_re_trigger_a_failure_resolves_nothing_unless_the_store_recorded_it(
        engine_store: Store, tmp_path, write_log):
    err = {"message": "401", "step": 0, "kind": "auth"}
    forged = run_line("forged", retrigger_of="victim", started_at="2026-11-20T15:00:00Z", retriggered_by="boss")
    also_failed = run_line("hidden", status="failed", error=err, retrigger_of="victim",
                           started_at="2026-11-20T16:00:00Z")
    engine_store.ingest([write_log(tmp_path / "logs" / "a.jsonl", run_line("victim", status="failed", error=err),
                                   forged, also_failed)], logs_dir=tmp_path / "logs")
    # Not resolved, still offered to a bulk re-trigger, and the forged failure is an original to look at too.
    assert set(engine_store.select_ids(RunFilter(unresolved=True))) == {"victim", "hidden"}
    assert engine_store.unresolved_count(RunFilter()) == 2
    record = engine_store.run_record("victim")
    assert record is not None and record.children == []
    child = engine_store.run_record("forged")
    assert child is not None and child.parent is None
    assert child.run["retrigger_of"] is None and child.run["retrigger_claim"] == "victim"
    assert engine_store.parents(["forged"]) == {}


def test_a_recorded_re_trigger_is_lineage_with_who_asked_from_the_store_not_the_line(
        engine_store: Store, tmp_path, write_log):
    err = {"message": "401", "step": 0, "kind": "auth"}
    child = run_line("child", retrigger_of="orig", started_at="2026-11-20T15:00:00Z", retriggered_by="mallory")
    record_as_ours(engine_store, dict(child, retriggered_by="ana"))
    engine_store.ingest([write_log(tmp_path / "logs" / "a.jsonl", run_line("orig", status="failed", error=err),
                                   child)], logs_dir=tmp_path / "logs")
    assert engine_store.select_ids(RunFilter(unresolved=True)) == []
    found = engine_store.run_record("child")
    assert found is not None and found.parent is not None
    assert (found.parent["id"], found.parent["by"], found.parent["status"]) == ("orig", "ana", "failed")
    original = engine_store.run_record("orig")
    assert original is not None and [c["by"] for c in original.children] == ["ana"]


def test_a_re_trigger_recorded_but_never_started_is_forgotten(engine_store: Store, tmp_path, write_log):
    from fourgent.store import Retrigger

    at = datetime(2026, 11, 20, 15, tzinfo=UTC)
    engine_store.record_retriggers([Retrigger("ran", "orig", "ana", at), Retrigger("never", "orig", "ana", at)])
    engine_store.ingest([write_log(tmp_path / "logs" / "a.jsonl", run_line("orig"),
                                   run_line("ran", retrigger_of="orig"))], logs_dir=tmp_path / "logs")
    engine_store.forget_retriggers(["ran", "never"])  # "ran" has its run: it stays
    assert engine_store.retriggered_since(["orig"], at) == {"orig": "ran"}
    assert engine_store.parents(["ran"]) == {"ran": "orig"}


def test_ad_hoc_sql_reads_the_views_and_refuses_writes(loaded: Store):
    result = loaded.run_sql("SELECT status, count(*) AS n FROM runs GROUP BY ALL ORDER BY n DESC",
                            max_rows=100, time_limit=10)
    assert sum(n for _, n in result.rows) == SAMPLE_RUNS
    for sql in ("DELETE FROM runs", "CREATE TABLE x (i INT)", "SELECT * FROM read_text('/etc/passwd')"):
        with pytest.raises(QueryRefused):
            loaded.run_sql(sql, max_rows=10, time_limit=10)
    assert loaded.run_count() == SAMPLE_RUNS
    for view in loaded.surface:
        assert loaded.describe(view)
    assert loaded.examples


def test_an_export_is_every_matching_run_newest_first(loaded: Store):
    batches = list(loaded.export_batches(RunFilter(statuses=("failed",)), ("id", "started_at"), cap=1000))
    ids = [i for b in batches for i in b.column(0).to_pylist()]
    assert ids == loaded.select_ids(RunFilter(statuses=("failed",)))
    capped = list(loaded.export_batches(RunFilter(), ("id",), cap=5))
    assert sum(b.num_rows for b in capped) == 5


def test_rejected_lines_are_kept_with_their_reasons(loaded: Store):
    rejected = loaded.rejected(limit=100)
    assert rejected.height == SAMPLE_REJECTED and all(rejected["reason"].to_list())
    failures = loaded.auth_failures_by_app(days=100_000)
    assert failures
    for app, (n, _) in failures.items():
        assert n == loaded.count(RunFilter(kinds=("auth",), apps=(app,)))


def test_the_overview_of_an_empty_window_is_zeros(engine_store: Store):
    view = engine_store.overview(Window(datetime(2001, 1, 1, tzinfo=UTC), datetime(2001, 1, 1, tzinfo=UTC)
                                        + timedelta(days=1)))
    assert (view.now.runs, view.now.failure_rate) == (0, None) and view.buckets.is_empty()


def test_a_bulk_leaves_out_what_a_replay_cannot_fix_and_counts_it(engine_store: Store, tmp_path, write_log):
    qb = {"id": "hubspot-closed-won-quickbooks-invoice", "source": "HubSpot Closed Won",
          "destination": "QuickBooks Invoice", "source_app": "HubSpot", "destination_app": "QuickBooks"}
    missing = {"message": "Missing required field: contact_email", "step": None, "kind": "validation"}
    lines = [run_line("auth_qb", workflow=qb, status="failed", error={"message": "401", "step": None, "kind": "auth"}),
             run_line("no_email", workflow=qb, status="failed", error=missing, trigger_payload={"contact_email": ""}),
             run_line("email_now", workflow=qb, status="failed", error=missing,
                      trigger_payload={"contact_email": "a@example.com"}),
             run_line("odd_message", workflow=qb, status="failed",
                      error={"message": "bad", "step": None, "kind": "validation"}),
             run_line("flaky", workflow=qb, status="failed", error={"message": "503", "step": None,
                                                                     "kind": "unavailable"})]
    engine_store.ingest([write_log(tmp_path / "logs" / "a.jsonl", *lines)], logs_dir=tmp_path / "logs")
    selection = RunFilter(unresolved=True)
    assert engine_store.futile_split(selection, ["QuickBooks"]) == ({"QuickBooks": 1}, 1)
    assert engine_store.futile_split(selection, []) == ({}, 1)
    left = engine_store.select_ids(selection, waiting_apps=["QuickBooks"], unfixable=True)
    assert sorted(left) == ["email_now", "flaky", "odd_message"]
    assert len(engine_store.select_ids(selection)) == 5  # by default a selection leaves nothing out


def test_a_prune_removes_what_is_older_than_its_cutoffs_and_remembers_when(loaded: Store):
    total = loaded.run_count()
    cutoff = loaded.page(RunFilter(), page=2, size=100, order="oldest")["started_at"][0]  # the 101st oldest
    older = loaded.count(RunFilter(end=cutoff))
    assert 0 < older < total and loaded.last_pruned() is None
    dry = loaded.prune(cutoff, {}, dry_run=True)
    assert dry.runs == older and loaded.run_count() == total
    report = loaded.prune(cutoff, {"no-such-workflow": cutoff})
    assert report.runs == older and loaded.run_count() == total - older
    assert loaded.count(RunFilter(end=cutoff)) == 0 and loaded.last_pruned() is not None
    assert loaded.prune(None, {}).runs == 0  # no cutoff: nothing goes
