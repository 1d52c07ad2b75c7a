"""Re-triggering replays the original payload as a new run: once per click, in bulk, stoppable."""

from __future__ import annotations

import functools
import threading
from datetime import UTC, datetime, timedelta

import pytest
from test_executor import connect

from fourgent import workflows
from fourgent.access import Actor, Role
from fourgent.executor import Executor, log_writer
from fourgent.pauses import paused, set_paused
from fourgent.retrigger import BulkJob, Retriggerer
from fourgent.sandbox import Sandbox, serve
from fourgent.store.duckdb import sql
from helpers import run_line

WF_ID = "hubspot-closed-won-quickbooks-invoice"
WF = {"id": WF_ID, "source": "HubSpot Closed Won", "destination": "QuickBooks Invoice",
      "source_app": "HubSpot", "destination_app": "QuickBooks"}


ANA = Actor("ana@example.com", Role.OPERATOR, "web")


def failed_run(i: int, email: str | None = "a@example.com") -> dict:
    payload = {"record_id": str(1000 + i), "name": f"Deal {i}", "amount": 10.0 + i, "contact_email": email}
    return run_line(f"orig_{i:04d}", workflow=WF, status="failed", trigger_payload=payload,
                    error={"message": "401 Unauthorized", "step": 1, "kind": "auth"})


@pytest.fixture
def setup(store, tmp_path, write_log):
    sandbox = Sandbox()
    server, url = serve(sandbox)
    log = tmp_path / "logs" / "retriggers.jsonl"
    executor = Executor(connect(sandbox, url, "HubSpot", "QuickBooks"), log_writer(log), sleep=lambda s: None)
    retriggerer = Retriggerer(store, executor, workflows.load(workflows.BUILTIN_DIR))
    yield sandbox, retriggerer, log
    server.shutdown()
    server.server_close()


def test_bulk_of_500_gives_exact_outcome_counts_and_lineage(store, tmp_path, write_log, setup):
    _sandbox, retriggerer, log = setup
    runs = [failed_run(i, email=None if i % 5 == 0 else "a@example.com") for i in range(500)]
    store.ingest([write_log(tmp_path / "orig.jsonl", *runs)])
    ids = [r["id"] for r in runs]
    result = retriggerer.bulk(ids, "ana@example.com", concurrency=16)
    assert result.outcomes == {"finished": 400, "failed": 100}
    assert result.refused == {} and result.cancelled == 0
    store.ingest([log])
    cur = store.db.cursor()
    assert cur.execute("SELECT count(*) FROM runs WHERE retrigger_of LIKE 'orig_%'").fetchall()[0][0] == 500
    assert cur.execute("SELECT count(DISTINCT retrigger_of) FROM runs WHERE retrigger_of IS NOT NULL"
                       ).fetchall()[0][0] == 500
    who = cur.execute("SELECT DISTINCT retriggered_by FROM retriggers").fetchall()
    assert who == [("ana@example.com",)]
    assert cur.execute("SELECT count(*) FROM retriggers JOIN runs ON runs.id = retriggers.run_id "
                       "AND runs.retrigger_of = retriggers.retrigger_of").fetchall()[0][0] == 500


def test_the_replay_sends_the_original_payload(store, tmp_path, write_log, setup):
    sandbox, retriggerer, _ = setup
    store.ingest([write_log(tmp_path / "orig.jsonl", failed_run(7))])
    # The deal has changed in HubSpot since the run fired: the replay still sends what fired then.
    sandbox.records[("hubspot", "/deals/1007")] = {"record_id": "1007", "amount": 99.0, "contact_email": "new@x.io"}
    result = retriggerer.bulk(["orig_0007"], "ana")
    assert result.outcomes == {"finished": 1}
    fetched = [r for r in sandbox.requests if r.method == "GET" and r.path == "/deals/1007"]
    assert fetched  # the changed record was there to be read
    posted = [r.body for r in sandbox.requests if r.method == "POST"]
    assert posted and all(b["record_id"] == "1007" and b["amount"] == 17.0 for b in posted)
    assert all(b.get("contact_email") in (None, "a@example.com") for b in posted)


def test_payload_values_in_a_path_stay_one_segment(store, tmp_path, write_log, setup):
    sandbox, retriggerer, _ = setup
    run = failed_run(8)
    run["trigger_payload"]["record_id"] = "../admin?x=1#y"
    store.ingest([write_log(tmp_path / "orig.jsonl", run)])
    retriggerer.bulk(["orig_0008"], "ana")
    gets = [r.path for r in sandbox.requests if r.method == "GET"]
    assert gets == ["/deals/..%2Fadmin%3Fx%3D1%23y"]


def test_a_run_already_being_re_triggered_is_refused_once(store, tmp_path, write_log, setup):
    _, retriggerer, _ = setup
    store.ingest([write_log(tmp_path / "orig.jsonl", failed_run(1))])
    assert store.claim(["orig_0001"]) == {"orig_0001"}  # a first click, still running
    second = retriggerer.bulk(["orig_0001", "orig_0001"], "ana")
    assert second.refused == {"orig_0001": "a re-trigger of this run is already under way"}
    assert sum(second.outcomes.values()) == 0
    store.release(["orig_0001"])
    assert sum(retriggerer.bulk(["orig_0001"], "ana").outcomes.values()) == 1


def test_two_clicks_at_once_make_one_re_trigger(store, tmp_path, write_log, setup):
    sandbox, retriggerer, _ = setup
    store.ingest([write_log(tmp_path / "orig.jsonl", failed_run(2))])
    sandbox.delay_s["hubspot"] = 0.3
    results = []
    threads = [threading.Thread(target=lambda: results.append(retriggerer.bulk(["orig_0002"], "ana")))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(sum(r.outcomes.values()) for r in results) == [0, 1]


def test_cancel_stops_a_bulk_re_trigger_midway(store, tmp_path, write_log, setup):
    _, retriggerer, _ = setup
    runs = [failed_run(i) for i in range(200)]
    store.ingest([write_log(tmp_path / "orig.jsonl", *runs)])
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        if done >= 40:
            cancel.set()

    result = retriggerer.bulk([r["id"] for r in runs], "ana", concurrency=4, cancel=cancel, progress=progress)
    done = sum(result.outcomes.values())
    assert 40 <= done < 60 and result.cancelled == 200 - done
    # The re-triggers never started are not left recorded as Fourgent's.
    assert store.db.cursor().execute("SELECT count(*) FROM retriggers").fetchall()[0][0] == done


def test_unknown_runs_and_workflows_are_refused_with_a_reason(store, tmp_path, write_log, setup):
    _, retriggerer, _ = setup
    other = run_line("no_def", workflow={"id": "custom-flow", "source": "A", "destination": "B"})
    store.ingest([write_log(tmp_path / "orig.jsonl", other)])
    result = retriggerer.bulk(["ghost", "no_def"], "ana")
    assert result.refused == {"ghost": "no such run", "no_def": "no definition for workflow custom-flow"}


def test_a_run_re_triggered_after_the_confirmation_opened_is_not_replayed_again(store, tmp_path, write_log, setup):
    _, retriggerer, log = setup
    store.ingest([write_log(tmp_path / "orig.jsonl", failed_run(3))])
    opened = datetime.now(UTC) - timedelta(seconds=1)  # a second tab's confirmation, opened a moment ago
    first = retriggerer.bulk(["orig_0003"], "ana")
    store.ingest([log])
    second = retriggerer.bulk(["orig_0003"], "li", since=opened)
    assert second.refused == {"orig_0003": f"re-triggered meanwhile as {first.new_runs['orig_0003']}"}
    assert sum(second.outcomes.values()) == 0


def test_the_result_names_the_apps_that_answered_and_refused(store, tmp_path, write_log, setup):
    sandbox, retriggerer, _ = setup
    store.ingest([write_log(tmp_path / "orig.jsonl", failed_run(4))])
    sandbox.expire("QuickBooks")
    result = retriggerer.bulk(["orig_0004"], "ana")
    assert result.outcomes == {"failed": 1}
    assert result.apps_ok == {"HubSpot"} and result.apps_refused == {"QuickBooks"}


def test_a_bulk_job_reports_progress_and_its_result_from_a_thread(store, tmp_path, write_log, setup):
    _sandbox, retriggerer, _ = setup
    runs = [failed_run(i) for i in range(30)]
    store.ingest([write_log(tmp_path / "orig.jsonl", *runs)])
    job = BulkJob(functools.partial(retriggerer.bulk, who="ana"), [r["id"] for r in runs], concurrency=4)
    assert job.wait(60)
    assert job.error is None and job.done == job.total == 30
    assert job.result.outcomes == {"finished": 30}


def test_a_bulk_job_that_raises_keeps_the_error_to_show(setup):
    def broken(*args, **kwargs):
        raise RuntimeError("store gone")

    job = BulkJob(broken, ["x"])
    assert job.wait(10) and job.error == "RuntimeError: store gone" and job.result is None


def test_runs_of_a_paused_workflow_are_not_re_triggered_until_it_is_resumed(store, tmp_path, write_log, setup):
    _, retriggerer, _ = setup
    store.ingest([write_log(tmp_path / "orig.jsonl", failed_run(5))])
    set_paused(store, ANA, WF_ID, True)
    assert paused(store)[WF_ID][1] == "ana@example.com"
    result = retriggerer.bulk(["orig_0005"], "li")
    assert result.refused == {"orig_0005": f"workflow {WF_ID} is paused"} and not result.outcomes
    set_paused(store, ANA, WF_ID, False)
    assert retriggerer.bulk(["orig_0005"], "li").outcomes == {"finished": 1}


def test_re_triggering_a_failed_re_trigger_replays_the_original_and_resolves_it(store, tmp_path, write_log, setup):

    sandbox, retriggerer, log = setup
    store.ingest([write_log(tmp_path / "orig.jsonl", failed_run(6))])
    token = sandbox.tokens["quickbooks"]
    sandbox.expire("QuickBooks")
    first = retriggerer.bulk(["orig_0006"], "ana")
    assert first.outcomes == {"failed": 1}
    store.ingest([log])
    failed_again = first.new_runs["orig_0006"]
    sandbox.tokens["quickbooks"] = token  # the credential fixed
    second = retriggerer.bulk([failed_again], "ana")  # the detail page of the failed re-trigger
    assert second.outcomes == {"finished": 1}
    store.ingest([log])
    cur = store.db.cursor()
    new = second.new_runs[failed_again]
    assert cur.execute("SELECT retrigger_of FROM runs WHERE id = ?", [new]).fetchall() == [("orig_0006",)]
    assert cur.execute(f"SELECT count(*) FROM ({sql.UNRESOLVED_SQL}) WHERE id = 'orig_0006'").fetchall() == [(0,)]
    # Two runs with the same original in one batch replay it once.
    third = retriggerer.bulk(["orig_0006", failed_again], "ana")
    assert sum(third.outcomes.values()) == 1
    assert third.refused == {failed_again: "same original (orig_0006) as orig_0006, re-triggered once"}
