"""The operator's other actions: an edited replay, a re-run from the failed step, cancel, and mark handled."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from test_executor import connect

from fourgent import cancel, handled, replay, workflows
from fourgent.access import Actor, Forbidden, Role
from fourgent.cancel import LiveRuns
from fourgent.executor import Executor, log_writer
from fourgent.filters import RunFilter
from fourgent.overview import Window
from fourgent.retrigger import Retriggerer
from fourgent.sandbox import Sandbox, serve
from fourgent.store.duckdb import rollup
from helpers import run_line

WF_ID = "hubspot-closed-won-quickbooks-invoice"
WF = {"id": WF_ID, "source": "HubSpot Closed Won", "destination": "QuickBooks Invoice",
      "source_app": "HubSpot", "destination_app": "QuickBooks"}
DEFINITIONS = workflows.load(workflows.BUILTIN_DIR)
ANA = Actor("ana@example.com", Role.OPERATOR, "web")
VIEWER = Actor("vic@example.com", Role.VIEWER, "web")
PAYLOAD = {"record_id": "1001", "name": "Deal 1", "amount": 11.0, "contact_email": "a@example.com"}
STEP_NAMES = [("Fetch deal", "HubSpot"), ("Find or create customer", "QuickBooks"), ("Create invoice", "QuickBooks"),
              ("Write back invoice ID", "HubSpot")]


def step(i: int, status: str = "finished", output: object = "default") -> dict:
    name, app = STEP_NAMES[i]
    s = {"name": name, "app": app, "status": status, "attempts": 1, "started_at": "2026-11-20T14:03:11.200Z",
         "finished_at": "2026-11-20T14:03:11.610Z", "input": {"path": f"/step-{i}"}}
    if output == "default":
        s["output"] = {"id": f"obj_{i}", "from": "the original"}
    elif output is not None:
        s["output"] = output
    return s


def failed_at(run_id: str, index: int, steps: list[dict] | None = None, kind: str = "unavailable",
              payload: dict | None = None, **fields) -> dict:
    recorded = steps if steps is not None else [*(step(i) for i in range(index)), step(index, "failed", None)]
    return run_line(run_id, workflow=WF, status="failed", trigger_payload=payload or PAYLOAD, steps=recorded,
                    error={"message": "QuickBooks answered 503 Service Unavailable after 3 attempts",
                           "step": index, "kind": kind}, **fields)


@pytest.fixture
def apps(store, tmp_path):
    """The demo apps on 127.0.0.1 and a re-triggerer whose runs go to logs/retriggers.jsonl."""
    sandbox = Sandbox()
    server, url = serve(sandbox)
    log = tmp_path / "logs" / "retriggers.jsonl"
    executor = Executor(connect(sandbox, url, "HubSpot", "QuickBooks"), log_writer(log), sleep=lambda s: None)
    yield sandbox, Retriggerer(store, executor, DEFINITIONS), log
    server.shutdown()
    server.server_close()


def unresolved(store, **kw) -> int:
    return store.count(RunFilter(statuses=("failed",), unresolved=True, **kw))


def rollups_match_a_fresh_recompute(store) -> None:
    cur = store.db.cursor()
    kept = cur.execute("SELECT * FROM fg.hour_runs ORDER BY ALL").fetchall()
    cur.execute("INSERT INTO fg.dirty_days SELECT DISTINCT epoch_ms(started_at) // 86400000 FROM fg.runs "
                "ON CONFLICT DO NOTHING")
    rollup.refresh(cur)
    assert cur.execute("SELECT * FROM fg.hour_runs ORDER BY ALL").fetchall() == kept


# ---------------------------------------------------------------- 1. an edited replay

@pytest.mark.parametrize(("text", "says"), [
    ('{"record_id": "1001",', "Not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"record_id": "1001", "amount": 5}', "Missing required field of workflow"),
    ('{"record_id": "1001", "amount": 5, "contact_email": ""}', "contact_email"),
    ('{"record_id": "1001", "amount": NaN, "contact_email": "a@example.com"}', "NaN is not a JSON number"),
])
def test_an_edited_payload_that_is_not_json_or_lacks_a_required_field_is_refused_in_words(text, says):
    with pytest.raises(replay.PayloadRejected, match=says):
        replay.parse_payload(text, DEFINITIONS[WF_ID])


def test_the_diff_names_each_changed_added_and_removed_field():
    before = {"a": 1, "b": {"c": "x", "d": [1, 2]}, "gone": True}
    after = {"a": 1, "b": {"c": "y", "d": [1, 3]}, "new": None}
    assert replay.payload_diff(before, after) == [
        {"path": "$.b.c", "before": "x", "after": "y"}, {"path": "$.b.d[1]", "before": 2, "after": 3},
        {"path": "$.gone", "before": True}, {"path": "$.new", "after": None}]
    assert "-    \"c\": \"x\"," in replay.diff_text(before, after)
    assert replay.payload_diff(before, before) == [] and replay.diff_text(before, before) == ""


def test_an_edited_replay_sends_the_edit_records_its_diff_and_resolves_the_original(store, tmp_path, write_log,
                                                                                     apps):
    sandbox, retriggerer, log = apps
    bad = dict(PAYLOAD, contact_email=None)
    store.ingest([write_log(tmp_path / "orig.jsonl", run_line(
        "orig_1", workflow=WF, status="failed", trigger_payload=bad, steps=[],
        error={"message": "Missing required field: contact_email", "step": None, "kind": "validation"}))])
    assert unresolved(store) == 1
    edited = replay.parse_payload(json.dumps(dict(PAYLOAD, contact_email="fixed@example.com")), DEFINITIONS[WF_ID])
    result = retriggerer.bulk(["orig_1"], ANA.who, payloads={"orig_1": edited})
    assert result.outcomes == {"finished": 1}
    posted = [r.body for r in sandbox.requests if r.method == "POST"]
    assert posted and all(b["email"] == "fixed@example.com" for b in posted)
    store.ingest([log])
    new = result.new_runs["orig_1"]
    cur = store.db.cursor()
    row = cur.execute("SELECT retrigger_of, retriggered_by, mode, payload_diff FROM retriggers WHERE run_id = ?",
                      [new]).fetchall()[0]
    assert row[:3] == ("orig_1", ANA.who, "edited")
    assert json.loads(row[3]) == [{"path": "$.contact_email", "before": None, "after": "fixed@example.com"}]
    assert json.loads(cur.execute("SELECT trigger_payload FROM runs WHERE id = ?", [new]).fetchall()[0][0]) == edited
    assert unresolved(store) == 0 and store.unresolved_count(RunFilter()) == 0
    assert store.runs_view(RunFilter(q=new)).marks == {new: "edited"}
    record = store.run_record(new)
    assert record and record.parent and record.parent["mode"] == "edited"
    assert record.parent["payload_diff"] == [{"path": "$.contact_email", "before": None,
                                              "after": "fixed@example.com"}]


def test_re_triggering_an_edited_replay_again_replays_its_edited_payload(store, tmp_path, write_log, apps):
    sandbox, retriggerer, log = apps
    store.ingest([write_log(tmp_path / "orig.jsonl", failed_at("orig_1", 1))])
    sandbox.fail_next("QuickBooks", 422)  # the edited replay fails too
    first = retriggerer.bulk(["orig_1"], "ana", payloads={"orig_1": dict(PAYLOAD, name="Edited")})
    store.ingest([log])
    again = retriggerer.bulk([first.new_runs["orig_1"]], "ana")
    store.ingest([log])
    sent = [r.body for r in sandbox.requests if r.method == "POST"]
    assert again.outcomes == {"finished": 1} and sent[-1]["name"] == "Edited"
    parent = store.run_record(again.new_runs[first.new_runs["orig_1"]])
    assert parent and parent.parent and parent.parent["id"] == "orig_1"  # still a re-trigger of the original


# ---------------------------------------------------------------- 2. a re-run from the failed step

def test_a_re_run_from_the_failed_step_calls_no_app_for_the_steps_before_it(store, tmp_path, write_log, apps):
    sandbox, retriggerer, log = apps
    store.ingest([write_log(tmp_path / "orig.jsonl", failed_at("orig_1", 2))])
    result = retriggerer.bulk(["orig_1"], "ana", from_step=True)
    assert result.outcomes == {"finished": 1}, result.refused
    # Steps 3 and 4 were called; Fetch deal and Find or create customer were not.
    assert [(r.app, r.path) for r in sandbox.requests] == [("quickbooks", "/create-invoice"),
                                                           ("hubspot", "/write-back-invoice-id")]
    store.ingest([log])
    new = result.new_runs["orig_1"]
    record = store.run_record(new)
    assert record is not None
    outputs = [json.loads(s["output"]) for s in record.steps[:2]]
    assert outputs == [{"id": "obj_0", "from": "the original"}, {"id": "obj_1", "from": "the original"}]
    assert json.loads(record.run["extra"])["reused_steps"] == {"from": "orig_1", "count": 2}
    assert record.parent and record.parent["mode"] == "from step" and record.parent["from_step"] == 3
    assert store.runs_view(RunFilter(q=new)).marks == {new: "from step 3"}
    assert unresolved(store) == 0  # a finished re-run resolves the original like any re-trigger


@pytest.mark.parametrize(("run", "says"), [
    (failed_at("r", 2, [step(0), step(1, output=None), step(2, "failed", None)]), "output was not recorded"),
    (failed_at("r", 2, [step(0), step(1, "skipped"), step(2, "failed", None)]), "did not finish"),
    (run_line("r", workflow=WF, status="failed", steps=[], trigger_payload=PAYLOAD,
              error={"message": "Missing required field: amount", "step": None, "kind": "validation"}),
     "before any step ran"),
    (run_line("r", workflow=WF, status="finished", trigger_payload=PAYLOAD), "Only a failed run"),
    (failed_at("r", 1, [dict(step(0), name="Fetch contact"), step(1, "failed", None)]), "steps changed"),
])
def test_a_re_run_from_a_step_is_refused_in_words_when_it_cannot_reuse_the_steps_before(
        store, tmp_path, write_log, apps, run, says):
    sandbox, retriggerer, _ = apps
    store.ingest([write_log(tmp_path / "orig.jsonl", run)])
    result = retriggerer.bulk(["r"], "ana", from_step=True)
    assert says in result.refused["r"] and not result.outcomes
    assert sandbox.requests == []


def test_a_bulk_re_run_uses_each_runs_own_failed_step(store, tmp_path, write_log, apps):
    sandbox, retriggerer, log = apps
    runs = [failed_at("at_1", 0), failed_at("at_2", 1), failed_at("at_4", 3),
            failed_at("unrecorded", 2, [step(0), step(1, output=None), step(2, "failed", None)])]
    store.ingest([write_log(tmp_path / "orig.jsonl", *runs)])
    result = retriggerer.bulk([r["id"] for r in runs], "ana", from_step=True)
    assert result.outcomes == {"finished": 3} and list(result.refused) == ["unrecorded"]
    # Calls: 4 for the run that failed at step 1, 3 from step 2, 1 from step 4.
    assert len(sandbox.requests) == 4 + 3 + 1
    store.ingest([log])
    steps = dict(store.db.cursor().execute(
        "SELECT retrigger_of, from_step FROM retriggers").fetchall())
    assert steps == {"at_1": 1, "at_2": 2, "at_4": 4}


# ---------------------------------------------------------------- 3. cancel

@pytest.fixture
def slow_apps(store, tmp_path):
    """Apps that answer 429 with a 60 s Retry-After; the executor really waits (on the run's cancel flag)."""
    sandbox = Sandbox()
    server, url = serve(sandbox)
    wf = replace(DEFINITIONS[WF_ID], retry=replace(DEFINITIONS[WF_ID].retry, retry_after_cap_s=120,
                                                    deadline_s=300))
    live = LiveRuns()
    lines: list[dict] = []
    executor = Executor(connect(sandbox, url, "HubSpot", "QuickBooks"), lines.append, live=live)
    yield sandbox, executor, wf, live, lines
    server.shutdown()
    server.server_close()


def test_a_cancel_lands_within_a_second_during_a_60_s_retry_after_wait(store, slow_apps):
    sandbox, executor, wf, live, lines = slow_apps
    sandbox.fail_next("HubSpot", (429, {"Retry-After": "60"}))
    done: list[dict] = []
    worker = threading.Thread(target=lambda: done.append(executor.run(wf, PAYLOAD, run_id="run_slow")))
    worker.start()
    deadline = time.monotonic() + 10
    while not sandbox.requests and time.monotonic() < deadline:  # the first attempt has been answered
        time.sleep(0.02)
    time.sleep(0.3)  # now inside the 60 s wait
    asked = time.monotonic()
    result = cancel.cancel(store, ANA, ["run_slow"], live=live)
    worker.join(5)
    took = time.monotonic() - asked
    assert result.cancelled == ["run_slow"] and not worker.is_alive() and took < 1.0
    run = done[0]
    assert run["status"] == "failed" and run["error"] == {"message": f"Cancelled by {ANA.who}", "step": 0,
                                                          "kind": "cancelled"}
    assert len(sandbox.requests) == 1  # no second attempt after the cancel
    assert "run_slow" not in live.live()


def test_a_cancel_before_the_next_step_stops_there_and_no_later_step_is_called(store, slow_apps):
    sandbox, executor, wf, live, _ = slow_apps
    sandbox.delay_s["hubspot"] = 2.0  # the first step takes two seconds
    done: list[dict] = []
    worker = threading.Thread(target=lambda: done.append(executor.run(wf, PAYLOAD, run_id="run_mid")))
    worker.start()
    deadline = time.monotonic() + 10
    while not sandbox.requests and time.monotonic() < deadline:  # the first step's call is under way
        time.sleep(0.02)
    assert cancel.cancel(store, ANA, ["run_mid"], live=live).cancelled == ["run_mid"]
    worker.join(5)
    assert done[0]["error"]["step"] == 1 and done[0]["error"]["kind"] == "cancelled"
    assert [r.app for r in sandbox.requests] == ["hubspot"]  # step 1 finished; step 2 was never called


def test_runs_not_executed_here_cannot_be_cancelled_and_the_reason_says_why(store, tmp_path, write_log):
    from datetime import UTC, datetime

    from fourgent.store import Retrigger

    store.record_retriggers([Retrigger("ours_gone", "orig", "ana", datetime.now(UTC))])
    store.ingest([write_log(tmp_path / "r.jsonl", run_line("orig", workflow=WF, status="failed",
                                                           error={"message": "x", "step": 0, "kind": "logic"}),
                            run_line("outside", workflow=WF, status="running", finished_at=None),
                            run_line("ours_gone", workflow=WF, status="running", finished_at=None,
                                     retrigger_of="orig"),
                            run_line("ended", workflow=WF))])
    result = cancel.cancel(store, ANA, ["outside", "ours_gone", "ended", "missing"], live=LiveRuns())
    assert result.cancelled == []
    assert "outside engine" in result.refused["outside"]
    assert "interrupted" in result.refused["ours_gone"]
    assert "already ended (finished)" in result.refused["ended"]
    assert result.refused["missing"] == "no such run"
    with pytest.raises(Forbidden):
        cancel.cancel(store, VIEWER, ["outside"], live=LiveRuns())
    actions = [(e.action, e.outcome) for e in store.audit_entries()]
    assert actions == [("cancel", "refused"), ("cancel", "ok")]


def test_cancelled_runs_are_not_unresolved_unless_the_filter_asks_for_kind_cancelled(store, tmp_path, write_log):
    store.ingest([write_log(tmp_path / "r.jsonl",
                            failed_at("cancelled_1", 1, kind="cancelled"), failed_at("failed_1", 1))])
    assert unresolved(store) == 1 and store.unresolved_count(RunFilter()) == 1
    assert store.select_ids(RunFilter().bulk_selection()) == ["failed_1"]
    assert store.runs_view(RunFilter(statuses=("failed",))).marks == {"cancelled_1": "cancelled"}
    asked = RunFilter(kinds=("cancelled",))
    assert store.unresolved_count(asked) == 1
    assert store.select_ids(asked.bulk_selection()) == ["cancelled_1"]
    rollups_match_a_fresh_recompute(store)


# ---------------------------------------------------------------- 4. mark handled

def test_a_handled_failure_leaves_the_unresolved_counts_and_comes_back_when_undone(store, tmp_path, write_log):
    store.ingest([write_log(tmp_path / "r.jsonl", failed_at("dup", 1), failed_at("real", 1),
                            run_line("ok", workflow=WF))])
    rollup_count = store.unresolved_count(RunFilter())  # from the rollups
    assert rollup_count == unresolved(store) == 2
    result = handled.mark(store, ANA, ["dup", "ok", "nope"], "A duplicate of real (deal merged in HubSpot)")
    assert result.marked == ["dup"] and result.not_marked == 2  # a finished run and a missing one are not marked
    assert unresolved(store) == 1 and store.unresolved_count(RunFilter()) == 1
    assert store.select_ids(RunFilter().bulk_selection()) == ["real"]
    assert store.count(RunFilter(statuses=("failed",))) == 2  # it keeps its status
    mark = handled.of(store, "dup")
    assert mark and mark.by == ANA.who and mark.reason.startswith("A duplicate")
    assert store.runs_view(RunFilter(q="dup")).marks == {"dup": "handled"}
    # The Overview's "resolved or handled since" opens it (resolved=1: the failures that need nothing more).
    assert store.select_ids(RunFilter(statuses=("failed",), resolved=True)) == ["dup"]
    window = Window(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    view = store.overview(window, exact_max=0)  # from the rollups
    assert view.now.unresolved == 1 and view.now.failed == 2  # still failing leaves it out; failed counts it
    assert store.overview(window, exact_max=10**9).now.unresolved == 1  # and from the runs
    rollups_match_a_fresh_recompute(store)
    assert handled.unmark(store, ANA, ["dup"]) == ["dup"]
    assert unresolved(store) == 2 and store.unresolved_count(RunFilter()) == 2 and handled.of(store, "dup") is None
    rollups_match_a_fresh_recompute(store)
    assert [e.action for e in store.audit_entries()] == ["unmarked handled", "marked handled"]


@pytest.mark.parametrize(("reason", "says"), [("   ", "Say why"), ("x" * 501, "limit is 500")])
def test_marking_handled_needs_a_reason_and_a_role(store, tmp_path, write_log, reason, says):
    store.ingest([write_log(tmp_path / "r.jsonl", failed_at("dup", 1))])
    with pytest.raises(handled.HandledRejected, match=says):
        handled.mark(store, ANA, ["dup"], reason)
    with pytest.raises(Forbidden):
        handled.mark(store, VIEWER, ["dup"], "a duplicate")
    assert unresolved(store) == 1 and handled.of(store, "dup") is None


def test_an_edited_payload_cannot_be_combined_with_a_re_run_from_a_step(dashboard):
    from fourgent.access import SINGLE_USER
    from fourgent.workspace import open_workspace, retrigger

    dashboard()
    ws = open_workspace()
    with pytest.raises(ValueError, match="cannot reuse steps"):
        retrigger(ws, SINGLE_USER, ["r"], payload=PAYLOAD, from_step=True)


def test_a_replay_is_not_marked_handled_only_its_original_can_be(store, tmp_path, write_log):
    from helpers import record_as_ours

    replay_line = failed_at("replay_1", 1, retrigger_of="orig_1")
    record_as_ours(store, replay_line)
    store.ingest([write_log(tmp_path / "r.jsonl", failed_at("orig_1", 1), replay_line)])
    assert handled.mark(store, ANA, ["replay_1"], "a duplicate").marked == []
    assert unresolved(store) == 1


def test_cancelling_a_run_of_a_bulk_re_trigger_stops_the_bulk_starting_more(store, tmp_path, write_log):
    from fourgent.cancel import LIVE
    from fourgent.retrigger import BulkJob

    sandbox = Sandbox()
    server, url = serve(sandbox)
    try:
        executor = Executor(connect(sandbox, url, "HubSpot", "QuickBooks"), log_writer(tmp_path / "r.jsonl"))
        retriggerer = Retriggerer(store, executor, DEFINITIONS)
        store.ingest([write_log(tmp_path / "orig.jsonl", *(failed_at(f"orig_{i}", 1) for i in range(3)))])
        for _ in range(3):
            sandbox.fail_next("QuickBooks", (429, {"Retry-After": "60"}))
        job = BulkJob(lambda ids, **k: retriggerer.bulk(ids, "ana", **k), ["orig_0", "orig_1", "orig_2"],
                      concurrency=1)
        deadline = time.monotonic() + 10
        while not any(r.app == "quickbooks" for r in sandbox.requests) and time.monotonic() < deadline:
            time.sleep(0.02)  # the first replay waits on its Retry-After
        (first,) = job.started.values()
        assert cancel.cancel(store, ANA, [first]).cancelled == [first]
        assert job.wait(5) and job.result is not None
        assert job.result.outcomes == {"failed": 1} and job.result.cancelled == 2  # the other two never started
        assert first not in LIVE.live()
    finally:
        server.shutdown()
        server.server_close()
