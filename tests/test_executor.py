"""The executor against the demo apps served on 127.0.0.1: outcomes, retries, and what a run log records."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from fourgent import workflows
from fourgent.executor import Connection, Executor, log_writer, retry_after_seconds
from fourgent.sandbox import Sandbox, serve, slug

PAYLOAD = {"record_id": "1893", "name": "Acme Corp – Renewal", "amount": 12000.0, "contact_email": "a@example.com"}


@pytest.fixture
def apps():
    sandbox = Sandbox()
    server, url = serve(sandbox)
    yield sandbox, url
    server.shutdown()
    server.server_close()


@pytest.fixture
def hubspot_wf():
    return workflows.load(workflows.BUILTIN_DIR)["hubspot-closed-won-quickbooks-invoice"]


def connect(sandbox: Sandbox, url: str, *apps_: str) -> dict[str, Connection]:
    conns = {}
    for app in apps_:
        token = f"token-{slug(app)}-s3cr3t"
        sandbox.tokens[slug(app)] = token
        conns[app] = Connection(app, f"{url}/{slug(app)}", token)
    return conns


def make(sandbox, url, lines, **kw):
    return Executor(connect(sandbox, url, "HubSpot", "QuickBooks"), lines.append, sleep=lambda s: None, **kw)


def test_a_run_that_works_finishes_and_logs_pending_running_finished(apps, hubspot_wf):
    sandbox, url = apps
    lines: list[dict] = []
    run = make(sandbox, url, lines).run(hubspot_wf, PAYLOAD, reference="Acme")
    assert run["status"] == "finished"
    assert [s["status"] for s in run["steps"]] == ["finished"] * 4
    assert [line["status"] for line in lines][0:2] == ["pending", "running"] and lines[-1]["status"] == "finished"
    assert [(r.app, r.method) for r in sandbox.requests] == [
        ("hubspot", "GET"), ("quickbooks", "POST"), ("quickbooks", "POST"), ("hubspot", "POST")]
    assert sandbox.requests[1].body == {"record_id": "1893", "name": "Acme Corp – Renewal", "amount": 12000.0,
                                        "email": "a@example.com"}


def test_401_fails_with_auth_at_that_step(apps, hubspot_wf):
    sandbox, url = apps
    ex = make(sandbox, url, [])
    sandbox.expire("QuickBooks")
    run = ex.run(hubspot_wf, PAYLOAD)
    assert run["status"] == "failed"
    assert run["error"]["kind"] == "auth" and run["error"]["step"] == 1
    assert "QuickBooks expired or revoked" in run["error"]["message"]
    assert len(sandbox.requests) == 2  # nothing after the failing step


def test_503_twice_then_200_finishes_after_three_attempts_with_one_idempotency_key(apps, hubspot_wf):
    sandbox, url = apps
    ex = make(sandbox, url, [])
    sandbox.fail_next("QuickBooks", 503, 503)
    run = ex.run(hubspot_wf, PAYLOAD)
    assert run["status"] == "finished"
    assert run["steps"][1]["attempts"] == 3
    keys = {r.idempotency_key for r in sandbox.requests
            if r.app == "quickbooks" and r.path == "/find-or-create-customer"}
    assert keys == {f"{run['id']}-1"}


def test_every_attempt_is_recorded_with_its_answer_and_timing(apps, hubspot_wf):
    sandbox, url = apps
    ex = make(sandbox, url, [])
    sandbox.fail_next("QuickBooks", 503, (429, {"Retry-After": "1"}))
    run = ex.run(hubspot_wf, PAYLOAD)
    tries = [a for a in run["attempt_log"] if a["step"] == 1]
    assert [(a["attempt"], a["status_code"]) for a in tries] == [(1, 503), (2, 429), (3, 201)]
    assert tries[0]["outcome"].startswith("QuickBooks answered 503") and tries[2]["outcome"] == "ok"
    assert all(a["duration_ms"] >= 0 and a["started_at"].endswith("Z") for a in run["attempt_log"])
    assert len(run["attempt_log"]) == sum(s["attempts"] for s in run["steps"])


def test_waits_never_reach_past_the_runs_deadline(apps, hubspot_wf):
    sandbox, url = apps
    waits: list[float] = []
    quick = replace(hubspot_wf, retry=replace(hubspot_wf.retry, deadline_s=2.0))
    ex = Executor(connect(sandbox, url, "HubSpot", "QuickBooks"), [].append, sleep=waits.append)
    sandbox.fail_next("HubSpot", (503, {"Retry-After": "30"}))
    assert ex.run(quick, PAYLOAD)["status"] == "finished"
    assert 0 < waits[0] <= 2.0  # the server asked for 30 s; the run had 2 s left


def test_a_run_past_its_deadline_fails_unavailable_without_another_call(apps, hubspot_wf):
    sandbox, url = apps
    quick = replace(hubspot_wf, retry=replace(hubspot_wf.retry, deadline_s=0.3))
    ex = Executor(connect(sandbox, url, "HubSpot", "QuickBooks"), [].append, sleep=time.sleep)
    sandbox.fail_next("HubSpot", (503, {"Retry-After": "5"}))
    run = ex.run(quick, PAYLOAD)
    assert run["status"] == "failed" and run["error"]["kind"] == "unavailable"
    assert "deadline of 0.3 s passed after 1 attempt" in run["error"]["message"]
    assert run["steps"][0]["attempts"] == 1 and len(run["attempt_log"]) == 1
    assert [r.app for r in sandbox.requests] == ["hubspot"]


def test_unavailable_after_the_attempt_limit(apps, hubspot_wf):
    sandbox, url = apps
    ex = make(sandbox, url, [])
    sandbox.fail_next("HubSpot", 503, 502, 504)
    run = ex.run(hubspot_wf, PAYLOAD)
    assert run["error"]["kind"] == "unavailable" and run["error"]["step"] == 0
    assert run["error"]["message"].endswith("after 3 attempts")


def test_retry_after_is_honoured_in_seconds_and_as_an_http_date(apps, hubspot_wf):
    sandbox, url = apps
    waits: list[float] = []
    ex = Executor(connect(sandbox, url, "HubSpot", "QuickBooks"), [].append, sleep=waits.append)
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    sandbox.fail_next("HubSpot", (429, {"Retry-After": "7"}), (503, {"Retry-After": soon}))
    assert ex.run(hubspot_wf, PAYLOAD)["status"] == "finished"
    assert waits[0] == 7.0 and 17 <= waits[1] <= 20
    assert retry_after_seconds("3600", cap=30) == 30  # capped
    assert retry_after_seconds("soon", cap=30) is None


def test_a_timeout_is_unavailable(apps, hubspot_wf):
    sandbox, url = apps
    fast = workflows.parse({**json.loads((workflows.BUILTIN_DIR / f"{hubspot_wf.id}.json").read_text()),
                            "retry": {"attempts": 2, "timeout_s": 0.2}})
    sandbox.delay_s["hubspot"] = 0.5
    run = make(sandbox, url, []).run(fast, PAYLOAD)
    assert run["error"]["kind"] == "unavailable"
    assert run["error"]["message"] == "Timed out after 0.2s waiting for HubSpot after 2 attempts"


def test_a_refused_connection_is_unavailable(hubspot_wf):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    conns = {app: Connection(app, f"http://127.0.0.1:{port}", "t") for app in ("HubSpot", "QuickBooks")}
    run = Executor(conns, [].append, sleep=lambda s: None).run(hubspot_wf, PAYLOAD)
    assert run["error"]["kind"] == "unavailable" and "Could not reach HubSpot" in run["error"]["message"]


def test_a_missing_field_fails_validation_before_any_call(apps, hubspot_wf):
    sandbox, url = apps
    run = make(sandbox, url, []).run(hubspot_wf, {**PAYLOAD, "contact_email": None})
    assert run["error"] == {"message": "Missing required field: contact_email", "step": None, "kind": "validation"}
    assert sandbox.requests == []


def test_an_unexpected_answer_is_logic(apps, hubspot_wf):
    sandbox, url = apps
    sandbox.fail_next("QuickBooks", 422)
    run = make(sandbox, url, []).run(hubspot_wf, PAYLOAD)
    assert run["error"]["kind"] == "logic" and "422" in run["error"]["message"]


def test_the_log_it_writes_is_read_by_ingest_with_lineage_and_no_secret(apps, hubspot_wf, store, tmp_path):
    sandbox, url = apps
    log = tmp_path / "logs" / "executor.jsonl"
    ex = Executor(connect(sandbox, url, "HubSpot", "QuickBooks"), log_writer(log), sleep=lambda s: None)
    sandbox.expire("QuickBooks")
    original = ex.run(hubspot_wf, PAYLOAD, reference="Acme")
    connect(sandbox, url, "HubSpot", "QuickBooks")
    replay = ex.run(hubspot_wf, original["trigger_payload"], reference="Acme", retrigger_of=original["id"])
    report = store.ingest([log])
    assert report.rejected == 0 and report.added == 2
    rows = dict(store.db.cursor().execute("SELECT id, status FROM runs").fetchall())
    assert rows == {original["id"]: "failed", replay["id"]: "finished"}
    # The executor's line alone is a claim: only a re-trigger the store recorded (retrigger.py) is lineage.
    assert store.db.cursor().execute("SELECT retrigger_of, retrigger_claim FROM runs WHERE id = ?",
                                     [replay["id"]]).fetchall() == [(None, original["id"])]
    text = log.read_text()
    assert "s3cr3t" not in text and "Bearer" not in text


def test_the_builtin_definitions_cover_every_demo_workflow():
    from fourgent.demo import WORKFLOWS

    assert set(workflows.load(workflows.BUILTIN_DIR)) == {w.id for w in WORKFLOWS}


def test_a_broken_definition_names_the_file_and_field(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"id": "x", "source": "A", "destination": "B",
                                                   "steps": [{"name": "s", "app": "A", "method": "GET"}]}))
    with pytest.raises(workflows.DefinitionError, match="bad.json: step 0 needs 'path'"):
        workflows.load(tmp_path)


def test_connection_repr_hides_the_token():
    assert "s3cr3t" not in repr(Connection("HubSpot", "http://x", "s3cr3t"))


def test_client_is_reused_across_runs(apps, hubspot_wf):
    sandbox, url = apps
    client = httpx.Client()
    ex = make(sandbox, url, [], client=client)
    ex.run(hubspot_wf, PAYLOAD)
    ex.run(hubspot_wf, PAYLOAD)
    assert not client.is_closed and len(sandbox.requests) == 8


def test_the_in_process_transport_answers_like_the_served_apps(hubspot_wf):
    from fourgent.sandbox import transport

    sandbox = Sandbox()
    conns = {}
    for app in ("HubSpot", "QuickBooks"):
        sandbox.tokens[slug(app)] = f"t-{slug(app)}"
        conns[app] = Connection(app, f"http://sandbox/{slug(app)}", f"t-{slug(app)}")
    ex = Executor(conns, [].append, client=httpx.Client(transport=transport(sandbox)), sleep=lambda s: None)
    sandbox.fail_next("QuickBooks", (503, {"Retry-After": "1"}))
    assert ex.run(hubspot_wf, PAYLOAD)["steps"][1]["attempts"] == 2
    sandbox.expire("HubSpot")
    assert ex.run(hubspot_wf, PAYLOAD)["error"]["kind"] == "auth"


@pytest.fixture
def trickle():
    """An app on 127.0.0.1 that answers at once, then sends its body one byte every half second."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = b'{"deal_id": "1893", "padding": "' + b"x" * 200 + b'"}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            try:
                for i in range(len(body)):
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                    time.sleep(0.5)
            except OSError:
                pass  # the client gave up: that is the point

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_server_trickling_its_body_cannot_keep_a_run_past_its_deadline(trickle, hubspot_wf):
    wf = replace(hubspot_wf, retry=replace(hubspot_wf.retry, timeout_s=1.5, deadline_s=3.0, attempts=5))
    lines: list[dict] = []
    executor = Executor({"HubSpot": Connection("HubSpot", trickle, "tok")}, lines.append, sleep=lambda s: None)
    started = time.monotonic()
    run = executor.run(wf, PAYLOAD)
    took = time.monotonic() - started
    assert took < 3.0 + 1.0  # the deadline, and at most one chunk's wait past it (it was 120 s against 60)
    assert run["status"] == "failed" and run["error"]["kind"] == "unavailable"
    first = run["steps"][0]
    assert first["error"].startswith("HubSpot's answer did not arrive whole within 1.5 s after ")
    assert 1 <= first["attempts"] <= 2  # each attempt bounded by its 1.5 s; the deadline ends the retries
