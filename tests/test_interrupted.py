"""A bulk re-trigger killed mid-way: its claims go with it, its replays end interrupted, nothing is sent twice
without its idempotency key."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fourgent import process
from fourgent.access import cli_actor
from fourgent.store import close_store
from fourgent.workspace import connections, open_workspace, recover_interrupted, retrigger
from helpers import ROOT, run_line

XERO = {"id": "stripe-payment-xero-invoice", "source": "Stripe Payment Succeeded", "destination": "Xero Invoice",
        "source_app": "Stripe", "destination_app": "Xero"}
PAYLOAD = {"record_id": "1", "name": "Deal", "amount": 5.0, "contact_email": "a@example.com"}
RUNS = 12


class Recorder:
    """An app on 127.0.0.1 that takes a third of a second over every call and records each one's key."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None]] = []  # method, path, Idempotency-Key
        app = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                app.calls.append((self.command, self.path, self.headers.get("idempotency-key")))
                time.sleep(0.3)
                body = b'{"id": "obj_1", "ok": true}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError):  # the caller was killed while it waited: the test's point
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = _any  # noqa: N815 - http.server's names

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def killed_bulk(tmp_path, write_log):
    """A data folder whose bulk re-trigger of 12 failed runs was SIGKILLed mid-way, and the app it was calling."""
    app = Recorder()
    data = tmp_path / "data"
    write_log(data / "logs" / "a.jsonl", *[
        run_line(f"orig_{i:02d}", workflow=XERO, status="failed", trigger_payload=PAYLOAD, steps=[],
                 error={"message": "Xero answered 503", "step": 1, "kind": "unavailable"}) for i in range(RUNS)])
    ws = open_workspace(data)
    ws.ingest_logs()
    conns = connections(ws)
    conns.save("Stripe", f"{app.url}/stripe", "stripe-token")
    conns.save("Xero", f"{app.url}/xero", "xero-token")
    close_store(ws.store)  # the bulk's process opens it
    bulk = subprocess.Popen([sys.executable, "-m", "fourgent", "--data-dir", str(data), "retrigger", "--unresolved",
                             "--concurrency", "4"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while sum(1 for c in app.calls if c[0] == "POST") < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(bulk.pid, signal.SIGKILL)
    bulk.wait(10)
    assert bulk.returncode == -signal.SIGKILL
    sent_before = list(app.calls)
    assert sent_before, "the bulk had started calling the app"
    yield data, app, sent_before
    app.close()


def test_a_killed_bulk_leaves_no_claim_no_run_running_and_resends_only_with_its_keys(killed_bulk):
    data, app, sent_before = killed_bulk
    ws = open_workspace(data)
    ws.ingest_logs()
    cur = ws.store.db.cursor()
    assert cur.execute("SELECT count(*) FROM fg.retrigger_claims").fetchall()[0][0] > 0  # the dead process's
    running = {r for (r,) in cur.execute(
        "SELECT id FROM runs WHERE retrigger_of IS NOT NULL AND status IN ('running', 'pending')").fetchall()}
    assert running, "killed while replays were under way"

    found = recover_interrupted(ws)
    assert set(found.interrupted) == running
    ended = dict(cur.execute("SELECT id, error_kind FROM runs WHERE id IN (SELECT unnest(?))",
                             [sorted(running)]).fetchall())
    assert set(ended.values()) == {"interrupted"}  # none left running forever
    assert cur.execute("SELECT count(*) FROM runs WHERE status IN ('running', 'pending')").fetchall() == [(0,)]
    never = cur.execute("SELECT count(*) FROM fg.retriggers t WHERE t.run_id NOT IN (SELECT id FROM fg.runs)")
    assert never.fetchall() == [(0,)]  # planned, never started: forgotten, so they block nothing

    # The next bulk takes every unresolved original at once: no "already under way" from the dead process.
    ids = [r for (r,) in cur.execute("SELECT id FROM runs WHERE id LIKE 'orig_%'").fetchall()]
    resends = ws.store.interrupted_sends(ids)
    assert {run for run, _ in resends.values()} == running  # each original's latest replay, interrupted
    before = len(app.calls)
    result = retrigger(ws, cli_actor("ana"), ids)
    assert result.refused == {}  # every original taken at once: no "already under way" from the dead process
    assert result.outcomes == {"finished": RUNS}
    again = app.calls[before:]
    keys_again = {key for method, _, key in again if method == "POST"}
    resent = 0
    for interrupted, steps in resends.values():
        # Each POST step the interrupted replay may have sent goes again with that replay's own key.
        posted = {key for method, _, key in sent_before if method == "POST" and key and key.startswith(interrupted)}
        assert posted <= keys_again, (interrupted, steps)
        resent += len(posted)
        assert all(f"{interrupted}-{i}" in keys_again for i in steps if i > 0)  # step 0 is a GET: no key
    assert resent > 0  # some steps had been sent before the kill, and went again under their first keys
    assert cur.execute("SELECT count(*) FROM runs WHERE status IN ('running', 'pending')").fetchall() == [(0,)]
    close_store(ws.store)


def test_a_claim_of_a_live_process_holds_and_one_of_a_dead_process_does_not(store):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        alive = f"{sleeper.pid}:{process._started(sleeper.pid)}"
        assert process.alive(alive) and process.alive(process.me())
        store.db.cursor().execute("INSERT INTO fg.retrigger_claims VALUES ('held', now(), ?), ('left', now(), ?)",
                                  [alive, "999999999:1"])
        assert store.claim(["held", "left"]) == {"left"}  # the live one's claim holds, however old
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not process.alive(alive)  # the same pid with another start would not pass either
    assert store.claim(["held"]) == {"held"}  # released at once when its process is gone
    assert not process.alive(None) and not process.alive("x:y")
