"""Real-browser tests of the operator's other actions: an edited replay, a re-run from the failed step, mark
handled, and cancelling a run mid-wait, in Chromium against the app served on 127.0.0.1."""

from __future__ import annotations

import json
import time

import pytest
from test_browser import serve, shot, wait_ready

from fourgent.store import close_store
from fourgent.workspace import connections, open_workspace
from helpers import ROOT, SlowApp, run_line

pytestmark = pytest.mark.browser

SHOPIFY = {"id": "shopify-order-slack-message", "source": "Shopify Order Created", "destination": "Slack Message",
           "source_app": "Shopify", "destination_app": "Slack"}
XERO = {"id": "stripe-payment-xero-invoice", "source": "Stripe Payment Succeeded", "destination": "Xero Invoice",
        "source_app": "Stripe", "destination_app": "Xero"}
PAYLOAD = {"record_id": "1", "name": "Deal", "amount": 5.0, "contact_email": "a@example.com"}
NAMES = [("Fetch charge", "Stripe"), ("Match contact", "Xero"), ("Create invoice", "Xero"), ("Mark paid", "Xero")]


def steps_until(failed: int) -> list[dict]:
    done = [{"name": n, "app": a, "status": "finished", "attempts": 1, "output": {"id": f"obj_{i}"}}
            for i, (n, a) in enumerate(NAMES[:failed])]
    return [*done, {"name": NAMES[failed][0], "app": NAMES[failed][1], "status": "failed", "attempts": 3,
                    "error": "Xero answered 503"}]


@pytest.fixture
def app(tmp_path, write_log):
    """The dashboard over a few failed runs; Slack points at the slow app, every other app at the demo apps."""
    slow = SlowApp()
    data = tmp_path / "data"
    write_log(data / "logs" / "a.jsonl",
              run_line("no_email", workflow=XERO, status="failed", steps=[],
                       trigger_payload={**PAYLOAD, "contact_email": None},
                       error={"message": "Missing required field: contact_email", "step": None,
                              "kind": "validation"}),
              run_line("at_step_3", workflow=XERO, status="failed", trigger_payload=PAYLOAD, steps=steps_until(2),
                       error={"message": "Xero answered 503 after 3 attempts", "step": 2, "kind": "unavailable"}),
              run_line("dup", workflow=XERO, status="failed", trigger_payload=PAYLOAD, steps=steps_until(1),
                       error={"message": "Xero answered 409 Conflict", "step": 1, "kind": "logic"}),
              run_line("slack_down", workflow=SHOPIFY, status="failed", trigger_payload=PAYLOAD, steps=[],
                       error={"message": "Slack answered 503", "step": 1, "kind": "unavailable"}))
    ws = open_workspace(data)
    ws.ingest_logs()
    conns = connections(ws)
    conns.save("Slack", f"{slow.url}/slack", "slack-token")
    conns.record(ok=["Slack"])
    close_store(ws.store)
    proc, url = serve(ROOT, env={"FOURGENT_DATA_DIR": str(data), "FOURGENT_DEMO_RUNS": "0"})
    yield url, slow
    proc.terminate()
    proc.wait(timeout=20)
    slow.close()


def open_run(pg, url: str, run_id: str) -> None:
    pg.goto(f"{url}/run?id={run_id}")
    wait_ready(pg, "Run details")


def test_edit_and_replay_re_run_from_a_step_mark_handled_and_cancel_mid_wait(app, browser):
    url, slow = app
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Paris")
    pg = context.new_page()
    try:
        # 1. An edited replay: a bad edit is refused in words, a good one shows its diff and resolves the run.
        open_run(pg, url, "no_email")
        pg.get_by_role("button", name="✎ Re-trigger with changes…").click()
        dialog = pg.get_by_role("dialog")
        editor = dialog.get_by_label("Trigger payload (JSON)")
        editor.fill('{"record_id": "1",')
        editor.press("Control+Enter")
        dialog.get_by_text("Not valid JSON", exact=False).wait_for(timeout=15_000)
        editor.fill(json.dumps({**PAYLOAD, "contact_email": "fixed@example.com"}, indent=2))
        editor.press("Control+Enter")
        dialog.get_by_text('+  "contact_email": "fixed@example.com"', exact=False).wait_for(timeout=15_000)
        shot(pg, "actions-edited-replay-diff")
        dialog.get_by_role("button", name="Re-trigger with these changes").click()
        pg.get_by_text("Re-triggered no_email as run_", exact=False).wait_for(timeout=30_000)
        assert pg.get_by_text("🟢 Finished", exact=False).count() >= 1
        pg.get_by_role("link", name="Open the new run").click()
        pg.get_by_text("Edited replay of", exact=False).wait_for(timeout=30_000)
        pg.get_by_text('$.contact_email: null → "fixed@example.com"', exact=False).wait_for()
        shot(pg, "actions-edited-replay-lineage")

        # 2. A re-run from the failed step: steps 1–2 reused, not called.
        open_run(pg, url, "at_step_3")
        pg.get_by_role("button", name="Re-run from step 3 (Create invoice)").click()
        dialog = pg.get_by_role("dialog")
        dialog.get_by_text("Steps 1–2 are reused from at_step_3", exact=False).wait_for(timeout=15_000)
        dialog.get_by_role("button", name="Re-run from step 3 (Create invoice)").click()
        pg.get_by_text("Re-triggered at_step_3 as run_", exact=False).wait_for(timeout=30_000)
        pg.get_by_role("link", name="Open the new run").click()
        pg.get_by_text("reused from", exact=False).first.wait_for(timeout=30_000)
        pg.get_by_text("Re-run from step 3 of", exact=False).wait_for()
        shot(pg, "actions-re-run-from-step")

        # 3. Mark handled, with its reason; the Runs table says handled.
        open_run(pg, url, "dup")
        pg.get_by_role("button", name="✋ Mark handled…").click()
        dialog = pg.get_by_role("dialog")
        why = dialog.get_by_label("Why it needs no replay (required)")
        why.fill("A duplicate of the deal's first run")
        why.press("Control+Enter")
        dialog.get_by_role("button", name="Mark handled").click()
        pg.get_by_text("Handled by", exact=False).wait_for(timeout=30_000)
        pg.get_by_text("A duplicate of the deal's first run").wait_for()
        shot(pg, "actions-handled")

        # 4. Cancel: a bulk re-trigger of the Slack failure waits on Slack's 60 s Retry-After; a second tab
        # cancels it, and it ends within a second.
        pg.goto(f"{url}/?workflow={SHOPIFY['id']}&status=failed")
        wait_ready(pg, "Matching runs")
        pg.get_by_role("button", name="↻ Re-trigger the 1 unresolved failed run", exact=False).click()
        pg.get_by_role("dialog").get_by_role("button", name="Re-trigger 1 run").click()
        deadline = time.monotonic() + 30
        while not slow.posts and time.monotonic() < deadline:
            time.sleep(0.1)
        assert slow.posts == ["/slack/post-message"]
        other = context.new_page()
        more = other.get_by_role("button", name="More bulk actions")
        for _ in range(10):  # until the dashboard has read the running run's line (it ingests every 2 s)
            other.goto(f"{url}/?status=running")
            wait_ready(other, "Matching runs")
            if more.count():
                break
            time.sleep(1)
        more.click()
        other.get_by_role("button", name="⏹ Cancel the 1 running or pending runs…").click()
        dialog = other.get_by_role("dialog")
        dialog.get_by_text("1 are run by this dashboard and can be cancelled", exact=False).wait_for(timeout=15_000)
        shot(other, "actions-cancel-confirm")
        asked = time.monotonic()
        dialog.get_by_role("button", name="Cancel 1 run").click()
        summary = other.get_by_text("Cancelled 1 of 1: 1 ended in", exact=False)
        summary.wait_for(timeout=15_000)
        assert float(summary.inner_text().split(" ended in ")[1].split(" s")[0]) < 1.0
        assert time.monotonic() - asked < 10
        assert slow.posts == ["/slack/post-message"]  # no second attempt after the cancel
        pg.get_by_text("Re-triggered 1 of 1", exact=False).wait_for(timeout=15_000)  # the bulk's own summary
        # A single re-trigger runs in the background: its own page shows it running, with a Cancel.
        open_run(pg, url, "slack_down")
        pg.get_by_role("button", name="↻ Re-trigger this run").click()
        pg.get_by_role("dialog").get_by_role("button", name="Re-trigger", exact=True).click()
        stop = pg.get_by_role("button", name="⏹ Cancel it")
        stop.wait_for(timeout=30_000)
        pg.get_by_text("Re-triggering slack_down as run_", exact=False).wait_for()
        shot(pg, "actions-single-running")
        asked = time.monotonic()
        stop.click()
        done = pg.get_by_text("Re-triggered slack_down as run_", exact=False)
        done.wait_for(timeout=25_000)
        # Well inside the 30 s the executor would otherwise wait (Retry-After is cut to 30 s): the page's
        # poll and rerun and the re-read of the logs take the rest on a busy machine.
        assert time.monotonic() - asked < 20 and done.inner_text().endswith("🔴 Failed")
        assert slow.posts == ["/slack/post-message"] * 2
        other.goto(f"{url}/?workflow={SHOPIFY['id']}&kind=cancelled")
        wait_ready(other, "Matching runs")
        other.get_by_text("kind = cancelled", exact=False).wait_for(timeout=15_000)
        shot(other, "actions-cancelled-run")
    finally:
        context.close()
