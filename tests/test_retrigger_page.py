"""Re-triggering from the Runs page: a row's More options, and the bulk re-trigger with progress and cancel.

The demo's story runs through here: QuickBooks' token has expired, so its runs fail with auth;
reconnecting it and bulk re-triggering the unresolved failures turns them finished.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from fourgent.access import SINGLE_USER
from fourgent.filters import RunFilter
from fourgent.store.duckdb import runs as runs_sql
from fourgent.store.duckdb import sql
from fourgent.workspace import connections, demo_sandbox, demo_token
from helpers import button, open_app, run_ids, settle
from ui.workspace import workspace

QB_FLOW = "hubspot-closed-won-quickbooks-invoice"


@pytest.fixture
def demo(dashboard):
    dashboard(4000)
    sandbox = demo_sandbox()
    yield sandbox
    sandbox.delay_s.clear()


open_runs = open_app


def unresolved(workflow: str = QB_FLOW) -> int:
    return runs_sql.count(workspace().store.db.cursor(), RunFilter(workflows=(workflow,), unresolved=True))


def run_bulk(at: AppTest, *, include: bool = False) -> AppTest:
    """Open the bulk confirmation and confirm it (`include`: also the failures it leaves out by default)."""
    button(at, "↻ Re-trigger the").click().run()
    if include:
        at.checkbox(key="bulk_include").check().run()
    button(at, "Re-trigger ").click().run()
    assert not at.exception, at.exception
    job = at.session_state["bulk_job"]
    assert job.wait(120)
    return at.run()


def test_the_expired_demo_app_fails_until_reconnected_then_a_bulk_re_trigger_resolves_its_runs(demo):
    at = open_runs(workflow=QB_FLOW, unresolved="1")
    before = unresolved()
    recent_auth = workspace().store.db.cursor().execute(
        "SELECT count(*) FROM runs WHERE workflow_id = ? AND error_kind = 'auth' AND retrigger_of IS NULL "
        "AND started_at >= now() - INTERVAL 6 HOUR", [QB_FLOW]).fetchall()[0][0]
    assert recent_auth > 0 and before >= recent_auth
    assert button(at, "↻ Re-trigger the").label == (
        f"↻ Re-trigger the {before:,} unresolved failed runs matching these filters")

    # Before reconnecting, the confirmation leaves QuickBooks' auth failures out and says why.
    button(at, "↻ Re-trigger the").click().run()
    waiting = next(t.value for t in at.text if "wait for QuickBooks to be reconnected" in t.value)
    held = int(waiting.split()[0].replace(",", ""))
    assert held >= recent_auth
    edits = [int(t.value.split()[0].replace(",", "")) for t in at.text if "need an edited payload" in t.value]
    assert button(at, "Re-trigger ").label.startswith(f"Re-trigger {before - held - sum(edits):,} run")
    assert any(link.label.startswith("Open Connections") for link in at.get("page_link"))
    at.run()
    # Included on purpose, the replays reach QuickBooks and are refused again.
    at = run_bulk(open_runs(workflow=QB_FLOW, unresolved="1"), include=True)
    summary = next(t.value for t in at.text if t.value.startswith("Re-triggered "))
    assert f"of {before:,}" in summary
    assert any(t.value == "Still refused (reconnect in Connections): QuickBooks" for t in at.text)
    assert unresolved() >= recent_auth

    connections(workspace()).save("QuickBooks", "http://sandbox/quickbooks", demo_token("QuickBooks"))
    at = open_runs(workflow=QB_FLOW, unresolved="1")
    left = unresolved()
    at = run_bulk(at)
    assert unresolved() < left
    # Every replay that failed at QuickBooks' credential is now finished: no auth failure is left unresolved.
    still_auth = workspace().store.db.cursor().execute(
        f"SELECT count(*) FROM runs WHERE id IN ({sql.UNRESOLVED_SQL}) AND workflow_id = ? AND error_kind = 'auth'",
        [QB_FLOW]).fetchall()[0][0]
    assert still_auth == 0
    states = {s.app: s.credential for s in connections(workspace()).states()}
    assert states["QuickBooks"] == "Connected"


def test_the_bulk_count_follows_the_filters_and_is_absent_without_failures(demo):
    at = open_runs(status="finished")
    assert not [b for b in at.button if b.label.startswith("↻ Re-trigger the")]
    at = open_runs(status="failed")
    n = runs_sql.count(workspace().store.db.cursor(), RunFilter(statuses=("failed",)).bulk_selection())
    assert button(at, "↻ Re-trigger the").label.startswith(f"↻ Re-trigger the {n:,} unresolved")


def test_a_paused_workflow_is_left_out_of_the_bulk_count_and_said_so(demo):
    from fourgent.pauses import set_paused

    cur = workspace().store.db.cursor()
    everything = runs_sql.count(cur, RunFilter().bulk_selection())
    set_paused(workspace().store, SINGLE_USER, "zendesk-ticket-jira-issue", True)
    held = runs_sql.count(cur, RunFilter(workflows=("zendesk-ticket-jira-issue",)).bulk_selection())
    assert held > 0
    at = open_runs()
    assert button(at, "↻ Re-trigger the").label.startswith(f"↻ Re-trigger the {everything - held:,} unresolved")
    assert any(t.value.startswith("Paused, so left out of re-triggers: zendesk-ticket-jira-issue") for t in at.text)
    at = open_runs(workflow="zendesk-ticket-jira-issue", unresolved="1")
    assert not [b for b in at.button if b.label.startswith("↻ Re-trigger the")]  # nothing it may replay


def test_cancel_stops_a_bulk_re_trigger_and_says_how_many_were_not_started(demo):
    demo.delay_s["hubspot"] = 0.4  # each run waits on HubSpot: time to press Cancel
    at = open_runs(status="failed")
    button(at, "↻ Re-trigger the").click().run()
    button(at, "Re-trigger ").click().run()
    assert any(p for p in at.get("progress"))
    button(at, "Cancel").click().run()
    job = at.session_state["bulk_job"]
    assert job.cancelled and job.wait(120)
    at.run()
    assert job.result.cancelled > 0
    assert f"Cancelled: {job.result.cancelled:,} not started." in [t.value for t in at.text]
    button(at, "Dismiss").click().run()
    assert "bulk_job" not in at.session_state


def test_re_trigger_from_a_rows_more_options_and_the_table_shows_how_it_went(demo):
    connections(workspace()).save("QuickBooks", "http://sandbox/quickbooks", demo_token("QuickBooks"))
    at = open_runs(workflow=QB_FLOW, unresolved="1")
    run_id = run_ids(at.dataframe[0].value)[0]
    at.session_state["selected_id"] = run_id
    at.run()
    at.button(key="row_retrigger").click().run()
    ask = at.session_state["confirm_retrigger"]
    settle(button(at, "Re-trigger").click().run())
    assert not at.exception, at.exception
    outcome = next(t.value for t in at.text if t.value.startswith(f"Re-triggered {run_id} as "))
    assert outcome.endswith("Finished")
    # A double click: the same confirmation arrives again and makes nothing more.
    at.session_state["confirm_retrigger"] = ask
    at.run()
    settle(button(at, "Re-trigger").click().run())
    children = workspace().store.db.cursor().execute(
        "SELECT count(*) FROM runs WHERE retrigger_of = ?", [run_id]).fetchall()[0][0]
    assert children == 1
    at = open_runs(q=run_id)
    frame = at.dataframe[0].value
    assert dict(zip(run_ids(frame), frame["Re-trigger"], strict=True))[run_id] == "✅ resolved"
    new_id = outcome.split()[3].rstrip(":")
    replay = open_runs(q=new_id).dataframe[0].value
    assert dict(zip(run_ids(replay), replay["Re-trigger"], strict=True))[new_id] == "↩ replay"


def test_the_runs_page_warns_while_failures_point_at_a_broken_connection(demo):
    banner = "failed at QuickBooks's credential in the last 7 days, and its connection is expired"
    at = open_runs()
    [text] = [t.value for t in at.text if banner in t.value]
    failed = workspace().store.auth_failures_by_app()["QuickBooks"][0]
    assert text.startswith(f"⚠️ {failed:,} runs failed")
    assert any(link.label.startswith("Reconnect") and "QuickBooks" in link.label for link in at.get("page_link"))
    connections(workspace()).save("QuickBooks", "http://sandbox/quickbooks", demo_token("QuickBooks"))
    connections(workspace()).record(ok=["QuickBooks"])
    assert not [t for t in open_runs().text if banner in t.value]  # reconnected: no more warning
