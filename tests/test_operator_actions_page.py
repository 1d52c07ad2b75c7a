"""The operator's other actions on the pages (AppTest): a run's page and the Runs page's bulk bar."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from fourgent.filters import RunFilter
from helpers import APP, button, open_app, run_line, settle
from ui.workspace import workspace

XERO = {"id": "stripe-payment-xero-invoice", "source": "Stripe Payment Succeeded", "destination": "Xero Invoice",
        "source_app": "Stripe", "destination_app": "Xero"}
PAYLOAD = {"record_id": "1", "name": "Deal", "amount": 5.0, "contact_email": "a@example.com"}
NAMES = [("Fetch charge", "Stripe"), ("Match contact", "Xero"), ("Create invoice", "Xero"), ("Mark paid", "Xero")]


def steps_until(failed: int) -> list[dict]:
    out = [{"name": n, "app": a, "status": "finished", "attempts": 1, "output": {"id": f"obj_{i}"}}
           for i, (n, a) in enumerate(NAMES[:failed])]
    return [*out, {"name": NAMES[failed][0], "app": NAMES[failed][1], "status": "failed", "attempts": 3,
                   "error": "Xero answered 503"}]


@pytest.fixture
def runs(dashboard, write_log):
    data = dashboard()
    write_log(data / "logs" / "a.jsonl",
              run_line("at_step_3", workflow=XERO, status="failed", trigger_payload=PAYLOAD, steps=steps_until(2),
                       error={"message": "Xero answered 503 after 3 attempts", "step": 2, "kind": "unavailable"}),
              run_line("no_email", workflow=XERO, status="failed", steps=[],
                       trigger_payload={**PAYLOAD, "contact_email": None},
                       error={"message": "Missing required field: contact_email", "step": None,
                              "kind": "validation"}),
              run_line("dup", workflow=XERO, status="failed", trigger_payload=PAYLOAD, steps=steps_until(1),
                       error={"message": "Xero answered 409 Conflict", "step": 1, "kind": "logic"}),
              run_line("outside", workflow=XERO, status="running", finished_at=None, steps=[]))
    return data


def detail(run_id: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.query_params["id"] = run_id
    at.switch_page("app_pages/run_detail.py").run()
    assert not at.exception, at.exception
    return at


def area(at: AppTest, label: str):
    return next(t for t in at.text_area if t.label == label)


def unresolved() -> int:
    return workspace().store.count(RunFilter(statuses=("failed",), unresolved=True))


def test_an_edited_replay_refuses_bad_json_shows_the_diff_and_resolves_the_run(runs):
    at = detail("no_email")
    button(at, "✎ Re-trigger with changes").click().run()
    editor = area(at, "Trigger payload (JSON)")
    assert json.loads(editor.value) == {**PAYLOAD, "contact_email": None}
    editor.set_value('{"record_id": "1",').run()
    assert any("Not valid JSON" in e.value for e in at.error)
    assert button(at, "Re-trigger with these changes").disabled
    area(at, "Trigger payload (JSON)").set_value(json.dumps({**PAYLOAD, "contact_email": ""})).run()
    assert any("Missing required field of workflow stripe-payment-xero-invoice: contact_email" in e.value
               for e in at.error)
    area(at, "Trigger payload (JSON)").set_value(json.dumps({**PAYLOAD, "contact_email": "fixed@example.com"},
                                                            indent=2)).run()
    diff = next(c.value for c in at.code if c.language == "diff")
    assert '-  "contact_email": null' in diff and '+  "contact_email": "fixed@example.com"' in diff
    settle(button(at, "Re-trigger with these changes").click().run())
    assert not at.exception, at.exception
    new = next(t.value for t in at.text if t.value.startswith("Re-triggered no_email as "))
    assert new.endswith(": 🟢 Finished")
    assert unresolved() == 2  # at_step_3 and dup are left
    new_id = new.split(" as ")[1].split(":")[0]
    child = detail(new_id)
    assert any(link.label == "Edited replay of `no_email`" for link in child.get("page_link"))
    assert any("$.contact_email: null → \"fixed@example.com\"" in c.value for c in child.code)


def test_a_re_run_from_the_failed_step_is_offered_by_name_and_reuses_the_steps_before(runs):
    at = detail("at_step_3")
    assert not button(at, "Re-run from step 3 (Create invoice)").disabled
    button(at, "Re-run from step 3 (Create invoice)").click().run()
    assert any("Steps 1–2 are reused from at_step_3" in t.value for t in at.text)
    confirm = [b for b in at.button if b.label == "Re-run from step 3 (Create invoice)"]
    assert len(confirm) == 2 and confirm[-1].proto.type == "primary"  # the menu's, then the dialog's
    settle(confirm[-1].click().run())
    done = next(t.value for t in at.text if t.value.startswith("Re-triggered at_step_3 as "))
    new_id = done.split(" as ")[1].split(":")[0]
    child = detail(new_id)
    labels = [e.label for e in child.expander]
    assert any(label.startswith("Step 1 · 🟢 Finished · reused from `at_step_3`") for label in labels)
    assert any(label.startswith("Step 3 · 🟢 Finished ·") and "reused" not in label for label in labels)
    # A failure before any step offers no step to re-run from, and says why.
    no_step = button(detail("no_email"), "⤼ Re-run from the failed step")
    assert no_step.disabled and "before any step ran" in no_step.help


def test_mark_handled_needs_a_reason_leaves_the_unresolved_count_and_can_be_undone(runs):
    at = detail("dup")
    button(at, "✋ Mark handled").click().run()
    assert button(at, "Mark handled").disabled  # no reason yet
    area(at, "Why it needs no replay (required)").set_value("A duplicate of deal 1's first run").run()
    button(at, "Mark handled").click().run()
    assert not at.exception, at.exception
    assert any(s.value.startswith("Handled by `local user (single-user)`") for s in at.success)
    assert "A duplicate of deal 1's first run" in [t.value for t in at.text]
    assert unresolved() == 2
    runs_page = open_app(q="dup")
    assert list(runs_page.dataframe[0].value["Re-trigger"]) == ["✋ handled"]
    button(at, "Undo handled").click().run()
    assert unresolved() == 3 and any(s.value.startswith("No longer handled") for s in at.success)


def test_a_run_from_an_outside_engine_says_it_cannot_be_cancelled_here(runs):
    at = detail("outside")
    cancel = button(at, "⏹ Cancel run")
    assert cancel.disabled
    assert any("written by an outside engine" in c.value for c in at.caption)


def test_the_bulk_bar_marks_the_filtered_failures_handled_with_one_reason(runs):
    at = open_app(status="failed", workflow=XERO["id"])
    assert button(at, "↻ Re-trigger the 3 unresolved").label.startswith("↻ Re-trigger the 3 unresolved")
    button(at, "✋ Mark the 3 unresolved failures handled").click().run()
    area(at, "Why they need no replay (required)").set_value("Test records from the sandbox account").run()
    button(at, "Mark 3 handled").click().run()
    assert not at.exception, at.exception
    assert any(t.value == "Marked 3 of 3 handled." for t in at.text)
    assert unresolved() == 0
    assert not any(b.label.startswith("↻ Re-trigger the") for b in at.button)
    entry = workspace().store.audit_entries(action="marked handled")[0]
    assert entry.detail and entry.detail["count"] == 3 and entry.target == "status=failed&workflow=" + XERO["id"]


def test_a_live_re_trigger_is_cancelled_from_its_page_within_a_second(runs, write_log):
    import threading
    import time

    from fourgent.access import SINGLE_USER
    from fourgent.cancel import LIVE
    from fourgent.workspace import connections, retrigger
    from helpers import SlowApp

    shopify = {"id": "shopify-order-slack-message", "source": "Shopify Order Created",
               "destination": "Slack Message", "source_app": "Shopify", "destination_app": "Slack"}
    write_log(runs / "logs" / "b.jsonl", run_line("slack_down", workflow=shopify, status="failed", steps=[],
                                                  trigger_payload=PAYLOAD,
                                                  error={"message": "Slack answered 503", "step": 1,
                                                         "kind": "unavailable"}))
    slow = SlowApp()
    try:
        ws = workspace()
        ws.ingest_logs()
        connections(ws).save("Slack", f"{slow.url}/slack", "slack-token")
        results = []
        job = threading.Thread(target=lambda: results.append(retrigger(ws, SINGLE_USER, ["slack_down"])))
        job.start()
        deadline = time.monotonic() + 20
        while not (LIVE.live() and slow.posts) and time.monotonic() < deadline:
            time.sleep(0.05)
        (new_id,) = LIVE.live()
        ws.ingest_logs()
        at = detail(new_id)
        button(at, "⏹ Cancel run").click().run()
        assert any("Cancelled by local user (single-user)" in t.value for t in at.text)
        asked = time.monotonic()
        button(at, "Cancel the run").click().run()
        assert any(s.value == "Cancel sent: the run ends within a second." for s in at.success)
        job.join(5)
        assert not job.is_alive() and time.monotonic() - asked < 2.0
        assert results[0].outcomes == {"failed": 1} and slow.posts == ["/slack/post-message"]
        run = workspace().store.run_record(new_id)
        assert run and run.run["error_kind"] == "cancelled"
        assert run.run["error_message"] == "Cancelled by local user (single-user)"
        assert unresolved() == 4  # the original is still unresolved: a cancelled replay fixes nothing
        entry = workspace().store.audit_entries(action="cancel")[0]
        assert entry.outcome == "ok" and entry.target == new_id
    finally:
        slow.close()
