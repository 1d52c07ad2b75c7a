"""Failure alerts: each rule's condition, one episode fired and resolved once, the link opening exactly the runs
behind it, delivery to real receivers on 127.0.0.1 (retried, slow or down), secrets kept out, roles, the CLI."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from receivers import Mailbox, Webhook, free_port

from fourgent import alerts
from fourgent.access import SINGLE_USER, Action, Actor, Forbidden, Role
from fourgent.config import Paths
from fourgent.filters import RunsQuery
from fourgent.store import AlertRule
from helpers import record_as_ours, run_line

HUBSPOT = "hubspot-closed-won-quickbooks-invoice"
PAYLOAD_SECRET = "PAYLOAD-SECRET-4711"
TOKEN = "tok-9f8e7d6c5b4a"
OPERATOR = Actor("op@example.com", Role.OPERATOR, "web")
VIEWER = Actor("viewer@example.com", Role.VIEWER, "web")


def ago(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def run(run_id: str, minutes_ago: float, status: str = "failed", kind: str = "auth", **fields) -> dict:
    extra: dict = {"trigger_payload": {"deal_id": PAYLOAD_SECRET}}
    if status == "failed":
        extra["error"] = {"message": f"401 Unauthorized {PAYLOAD_SECRET}", "kind": kind}
    if status in ("running", "pending"):
        extra["finished_at"] = None
    else:
        extra["finished_at"] = ago(minutes_ago - 0.05)
    return run_line(run_id, status=status, started_at=ago(minutes_ago), **{**extra, **fields})


@pytest.fixture
def logs(data_paths, store, write_log):
    """Append runs to a log file and read them into the store."""
    counter = iter(range(10_000))

    def add(*lines: dict) -> None:
        store.ingest([write_log(data_paths.logs_dir / f"part-{next(counter):04d}.jsonl", *lines)])

    return add


@pytest.fixture
def hook():
    w = Webhook()
    yield w
    w.close()


@pytest.fixture
def fernet(data_paths, store):
    return alerts.key(data_paths, store)


def rule(store, kind: str = "consecutive", **fields) -> AlertRule:
    base = {"consecutive": dict(threshold=3, workflow_id=HUBSPOT), "failure_rate": dict(
        threshold=0.5, workflow_id=HUBSPOT, min_runs=4, window_minutes=60),
        "error_kind": dict(threshold=1, subject="auth"), "app": dict(threshold=1, subject="QuickBooks"),
        "stuck": dict(threshold=30), "unresolved": dict(threshold=2)}[kind]
    chosen = AlertRule(kind=kind, **{"name": f"{kind} rule", **base, **fields})  # type: ignore[arg-type]
    rule_id = alerts.save_rule(store, SINGLE_USER, chosen)
    return next(r for r in store.alert_rules() if r.rule_id == rule_id)


def opened(store, episode) -> list[str]:
    """The run IDs the episode's link opens on the Runs page."""
    return store.select_ids(RunsQuery.from_string(episode.query).filter(datetime.now(UTC), alerts.UTC_ZONE))


# ---------------------------------------------------------------- the conditions

def test_consecutive_failures_fire_once_with_a_link_to_exactly_those_runs_then_resolve(store, logs):
    r = rule(store, "consecutive")
    logs(run("ok_1", 30, "finished"), run("f_1", 20), run("f_2", 15))
    assert alerts.check(store, by="cli").fired == []  # two in a row, not three
    logs(run("f_3", 10), run("still_running", 5, "running"))
    first = alerts.check(store, by="cli")
    assert [e.rule for e in first.fired] == [r.name]
    episode = first.fired[0]
    assert sorted(opened(store, episode)) == ["f_1", "f_2", "f_3"] and episode.runs == 3
    assert episode.summary == "The last 3 runs of HubSpot Closed Won → QuickBooks Invoice that ended all failed"
    again = alerts.check(store, by="dashboard")
    assert again.fired == [] and [e.episode for e in again.firing] == [episode.episode]  # once per episode
    logs(run("ok_2", 1, "finished"))
    done = alerts.check(store, by="cli")
    assert [e.episode for e in done.resolved] == [episode.episode] and done.firing == []
    assert store.alert_history()[0].resolved_at is not None


def test_failure_rate_needs_the_minimum_of_ended_runs_and_counts_only_the_window(store, logs):
    rule(store, "failure_rate", threshold=0.5, min_runs=4, window_minutes=60)
    logs(run("old_1", 120), run("old_2", 110), run("old_3", 100),  # outside the window
         run("f_1", 30), run("f_2", 20), run("ok_1", 10, "finished"), run("busy", 5, "running"))
    assert alerts.check(store, by="cli").fired == []  # 3 ended in the window: below the minimum of 4
    logs(run("f_3", 2))
    fired = alerts.check(store, by="cli").fired
    assert len(fired) == 1 and "75% (3 of 4 runs that ended failed" in fired[0].summary
    assert sorted(opened(store, fired[0])) == ["f_1", "f_2", "f_3"] and fired[0].runs == 3


def test_any_failure_of_an_error_kind_or_at_an_app_in_the_window(store, logs):
    rule(store, "error_kind", subject="auth", window_minutes=60)
    rule(store, "app", subject="Slack", window_minutes=60)
    logs(run("v_1", 10, kind="validation"), run("a_old", 90, kind="auth"))
    assert alerts.check(store, by="cli").fired == []
    logs(run("a_1", 5, kind="auth"))
    fired = alerts.check(store, by="cli").fired
    assert [e.kind for e in fired] == ["error_kind"] and opened(store, fired[0]) == ["a_1"]
    logs(run("s_1", 3, kind="unavailable", workflow={"id": "shopify-order-slack-message", "source": "Shopify Order",
                                                     "destination": "Slack Message", "destination_app": "Slack"}))
    fired = alerts.check(store, by="cli").fired
    assert [e.kind for e in fired] == ["app"] and opened(store, fired[0]) == ["s_1"]


def test_a_run_stuck_running_or_pending_longer_than_t_and_its_resolve_when_it_ends(store, logs):
    rule(store, "stuck", threshold=30)
    logs(run("young", 10, "running"), run("old_pending", 45, "pending"))
    fired = alerts.check(store, by="cli").fired
    assert len(fired) == 1 and opened(store, fired[0]) == ["old_pending"]
    assert fired[0].summary == "1 run running or pending for longer than 30 min"
    logs(run("old_pending", 45, "finished", updated_at=ago(0)))
    assert len(alerts.check(store, by="cli").resolved) == 1


def test_unresolved_failures_above_n_use_the_stores_unresolved_count(store, logs):
    rule(store, "unresolved", threshold=2)
    logs(run("u_1", 30), run("u_2", 20))
    assert alerts.check(store, by="cli").fired == []  # 2 is not above 2
    logs(run("u_3", 10))
    fired = alerts.check(store, by="cli").fired
    assert fired and sorted(opened(store, fired[0])) == ["u_1", "u_2", "u_3"]
    assert fired[0].runs == store.unresolved_count(RunsQuery.from_string(fired[0].query).filter(
        datetime.now(UTC), alerts.UTC_ZONE))
    fix = run("u_1_rt", 1, "finished", retrigger_of="u_1")
    record_as_ours(store, fix)
    logs(fix)
    assert len(alerts.check(store, by="cli").resolved) == 1  # 2 left


def test_a_resolved_rule_does_not_fire_again_within_its_cooldown(store, logs):
    r = rule(store, "error_kind", subject="auth", window_minutes=10, cooldown_minutes=30)
    logs(run("a_1", 5))
    t0 = datetime.now(UTC)
    assert len(alerts.check(store, by="cli", now=t0).fired) == 1
    assert len(alerts.check(store, by="cli", now=t0 + timedelta(minutes=20)).resolved) == 1  # out of the window
    logs(run("a_2", -20))  # a failure that fired at t0 + 20 min
    assert alerts.check(store, by="cli", now=t0 + timedelta(minutes=25)).fired == []  # cooling down
    later = alerts.check(store, by="cli", now=t0 + timedelta(minutes=51))
    assert later.fired == [] and store.open_alert_episodes() == {}  # a_2 has left the window by then
    logs(run("a_3", -52))
    assert len(alerts.check(store, by="cli", now=t0 + timedelta(minutes=55)).fired) == 1
    assert [e.rule_id for e in store.alert_history()] == [r.rule_id, r.rule_id]


def test_two_checkers_at_once_open_one_episode(store, logs):
    import threading

    r = rule(store, "error_kind", subject="auth")
    logs(run("a_1", 5))
    barrier = threading.Barrier(4)
    found: list[int] = []

    def checker() -> None:
        barrier.wait()
        found.extend(e.episode for e in alerts.check(store, by="dashboard").fired)

    threads = [threading.Thread(target=checker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(found) == 1 and len(store.alert_history()) == 1
    assert store.fire_alert(r, "again", 1, "", "cli", datetime.now(UTC)) is None  # the store refuses a second


def test_changing_or_deleting_a_rule_closes_its_episode_quietly(store, logs, hook, fernet):
    alerts.save_destination(store, SINGLE_USER, fernet, "ops", hook.url())
    r = rule(store, "error_kind", subject="auth", destination="ops")
    logs(run("a_1", 5))
    alerts.check(store, by="cli")
    alerts.save_rule(store, SINGLE_USER, replace(r, enabled=False))
    assert store.open_alert_episodes() == {}
    assert alerts.check(store, by="cli").fired == []  # disabled
    alerts.delete_rule(store, SINGLE_USER, r)
    assert store.alert_rules() == []
    assert [d.event for d in store.pending_alerts()] == ["fired"]  # no "resolved" for a rule changed by hand


@pytest.mark.parametrize("kind, fields, says", [
    ("consecutive", dict(workflow_id=None), "watches one workflow"),
    ("failure_rate", dict(threshold=1.5), "between 0% and 100%"),
    ("failure_rate", dict(min_runs=0), "minimum of ended runs"),
    ("error_kind", dict(subject="weird"), "error kind must be one of"),
    ("app", dict(subject=" "), "Name the app"),
    ("stuck", dict(threshold=0), "Longer than"),
    ("unresolved", dict(threshold=-1), "0 to"),
    ("error_kind", dict(window_minutes=0), "window must be"),
    ("error_kind", dict(cooldown_minutes=-5), "cooldown must be"),
    ("error_kind", dict(name="  "), "needs a name"),
    ("error_kind", dict(destination="nowhere"), "no destination of that name"),
    ("nonsense", dict(), "Unknown kind"),
])
def test_a_bad_rule_is_refused_in_words_and_nothing_is_stored(store, kind, fields, says):
    base = AlertRule(name="r", kind=kind, threshold=0.5 if kind == "failure_rate" else 1, workflow_id=HUBSPOT,
                     subject="auth", min_runs=1)
    with pytest.raises(alerts.RuleRejected, match=says):
        alerts.save_rule(store, SINGLE_USER, replace(base, **fields))
    assert store.alert_rules() == []
    assert store.audit_entries(action=Action.ALERT_RULE_SAVE.value)[0].outcome == "failed"


# ---------------------------------------------------------------- roles and secrets

def test_viewers_read_operators_edit_rules_admins_edit_destinations(store, fernet, hook):
    with pytest.raises(Forbidden):
        alerts.save_rule(store, VIEWER, AlertRule(name="r", kind="stuck", threshold=30))
    alerts.save_rule(store, OPERATOR, AlertRule(name="r", kind="stuck", threshold=30))
    with pytest.raises(Forbidden):
        alerts.save_destination(store, OPERATOR, fernet, "ops", hook.url())
    assert store.alert_destinations() == []
    outcomes = [(e.actor, e.action, e.outcome) for e in store.audit_entries()]
    assert ("viewer@example.com", "alert rule saved", "refused") in outcomes
    assert ("op@example.com", "alert rule saved", "ok") in outcomes
    assert ("op@example.com", "alert destination saved", "refused") in outcomes


def test_a_destination_is_stored_encrypted_shown_masked_and_never_audited_in_clear(store, data_paths, fernet, hook):
    url = hook.url(f"/hook/{TOKEN}")
    alerts.save_destination(store, SINGLE_USER, fernet, "ops", url)
    row = store.alert_destinations()[0]
    assert row.masked == "json://127.0.0.1/••••••••" and TOKEN not in row.url_encrypted
    assert fernet.decrypt(row.url_encrypted.encode()).decode() == url
    assert alerts.masked("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ") == "slack://••••••••"  # host = token
    assert alerts.masked("mailto://me:hunter2@smtp.example.com?to=x@y") == "mailto://smtp.example.com/••••••••"
    audit = json.dumps([e.detail for e in store.audit_entries()], ensure_ascii=False)
    assert TOKEN not in audit and "json://127.0.0.1/••••••••" in audit
    store.close()
    assert TOKEN.encode() not in data_paths.db_path.read_bytes()


def test_a_url_apprise_does_not_understand_is_refused_and_not_logged(store, fernet, caplog, capsys):
    with caplog.at_level(logging.DEBUG), pytest.raises(alerts.DestinationRejected, match="does not understand"):
        alerts.save_destination(store, SINGLE_USER, fernet, "ops", f"nosuchservice://{TOKEN}@host/x")
    captured = capsys.readouterr()
    assert TOKEN not in caplog.text + captured.out + captured.err
    assert store.alert_destinations() == []
    with pytest.raises(alerts.DestinationRejected, match="needs a name"):
        alerts.save_destination(store, SINGLE_USER, fernet, " ", "json://127.0.0.1/x")


# ---------------------------------------------------------------- delivery

def test_the_webhook_gets_the_alert_and_its_resolve_with_the_runs_link_and_no_payload(store, logs, hook, fernet,
                                                                                      monkeypatch):
    monkeypatch.setenv(alerts.PUBLIC_URL_ENV, "https://runs.example.com/")
    alerts.save_destination(store, SINGLE_USER, fernet, "ops", hook.url(f"/hook/{TOKEN}"))
    rule(store, "consecutive", threshold=2, destination="ops", name="HubSpot keeps failing")
    logs(run("f_1", 20), run("f_2", 10))
    alerts.check(store, by="cli")
    assert alerts.deliver_all(store, fernet, wait_s=0.01) == [True]
    body = hook.bodies[0]
    assert body["title"] == "Alert: HubSpot keeps failing" and body["type"] == "failure"
    link = next(w for w in body["message"].split() if w.startswith("https://"))
    assert link.startswith("https://runs.example.com/?")
    query = RunsQuery.from_string(link.split("?", 1)[1])
    assert sorted(store.select_ids(query.filter(datetime.now(UTC), alerts.UTC_ZONE))) == ["f_1", "f_2"]
    assert "Failed runs of HubSpot Closed Won → QuickBooks Invoice started" in body["message"]
    assert PAYLOAD_SECRET not in json.dumps(body) and TOKEN not in json.dumps(body)
    assert store.alert_history()[0].fired_delivery == "delivered"
    logs(run("ok", 1, "finished"))
    alerts.check(store, by="cli")
    assert alerts.deliver_all(store, fernet, wait_s=0.01) == [True]
    assert hook.bodies[1]["title"] == "Resolved: HubSpot keeps failing" and hook.bodies[1]["type"] == "success"
    assert link in hook.bodies[1]["message"]
    assert store.alert_history()[0].resolved_delivery == "delivered"
    assert alerts.deliver_all(store, fernet, wait_s=0.01) == []  # each message once
    assert len(hook.bodies) == 2


def test_without_a_public_url_the_link_is_the_path_and_says_so(store, logs, hook, fernet, monkeypatch):
    monkeypatch.delenv(alerts.PUBLIC_URL_ENV, raising=False)
    alerts.save_destination(store, SINGLE_USER, fernet, "ops", hook.url())
    rule(store, "error_kind", subject="auth", destination="ops")
    logs(run("a_1", 5))
    alerts.check(store, by="cli")
    alerts.deliver_all(store, fernet, wait_s=0.01)
    assert "/?status=failed" in hook.bodies[0]["message"]
    assert f"set {alerts.PUBLIC_URL_ENV}" in hook.bodies[0]["message"]


def test_an_smtp_destination_gets_the_mail(store, logs, fernet):
    box = Mailbox()
    try:
        alerts.save_destination(store, SINGLE_USER, fernet, "mail", box.url("oncall@example.com"))
        rule(store, "error_kind", subject="auth", destination="mail", name="Auth failures")
        logs(run("a_1", 5))
        alerts.check(store, by="cli")
        assert alerts.deliver_all(store, fernet, wait_s=0.01) == [True]
        sender, to, raw = box.wait()[0]
        mail = email.message_from_string(raw, policy=email.policy.default)
        assert to == ["oncall@example.com"] and mail["Subject"] == "Alert: Auth failures"
        text = mail.get_body(("plain",)).get_content()
        assert "/?status=failed" in text and PAYLOAD_SECRET not in raw + text
    finally:
        box.close()


def test_a_receiver_that_fails_twice_gets_the_alert_on_the_third_attempt(store, logs, fernet):
    flaky = Webhook(fail_first=2)
    try:
        alerts.save_destination(store, SINGLE_USER, fernet, "ops", flaky.url())
        rule(store, "error_kind", subject="auth", destination="ops")
        logs(run("a_1", 5))
        alerts.check(store, by="cli")
        assert alerts.deliver_all(store, fernet, wait_s=0.01) == [True]
        assert flaky.calls == 3 and len(flaky.bodies) == 1
        assert store.alert_history()[0].fired_delivery == "delivered"
    finally:
        flaky.close()


def test_a_receiver_that_is_down_is_retried_then_recorded_undelivered(store, logs, fernet):
    alerts.save_destination(store, SINGLE_USER, fernet, "down", f"json://127.0.0.1:{free_port()}/hook")
    rule(store, "error_kind", subject="auth", destination="down")
    logs(run("a_1", 5))
    alerts.check(store, by="cli")
    assert alerts.deliver_all(store, fernet, wait_s=0.01) == [False]
    episode = store.alert_history()[0]
    assert episode.fired_delivery == "undelivered" and episode.firing  # the alert itself stands
    reason = store.db.cursor().execute("SELECT attempts, reason FROM fg.alert_deliveries").fetchall()
    assert reason == [(alerts.ATTEMPTS, f"not accepted after {alerts.ATTEMPTS} attempts")]


def test_a_slow_receiver_holds_up_neither_the_check_nor_the_dispatch(store, logs, data_paths, monkeypatch):
    monkeypatch.setattr(alerts, "READ_TIMEOUT_S", 0.5)
    slow = Webhook(delay=2.0)
    try:
        fernet = alerts.key(data_paths, store)
        alerts.save_destination(store, SINGLE_USER, fernet, "slow", slow.url())
        rule(store, "error_kind", subject="auth", destination="slow")
        logs(run("a_1", 5))
        sender = alerts.Sender(store, data_paths, wait_s=0.01)
        started = time.monotonic()
        alerts.check(store, by="dashboard")
        assert sender.dispatch() == 1
        assert sender.dispatch() == 0  # already being sent: not twice
        assert time.monotonic() - started < 1.0  # the caller (a page, the ticker) does not wait for the receiver
        deadline = time.monotonic() + 30
        while store.alert_history()[0].fired_delivery == "pending" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert store.alert_history()[0].fired_delivery == "undelivered"  # each attempt timed out at 0.5 s
        assert slow.calls == alerts.ATTEMPTS
    finally:
        slow.close()


def test_a_message_queued_by_a_process_that_died_is_sent_by_the_next(store, logs, hook, fernet, data_paths):
    alerts.save_destination(store, SINGLE_USER, fernet, "ops", hook.url())
    rule(store, "error_kind", subject="auth", destination="ops")
    logs(run("a_1", 5))
    alerts.check(store, by="dashboard")  # queued in the episode's transaction; no sender ran ("the crash")
    assert [d.event for d in store.pending_alerts()] == ["fired"]
    alerts.Sender(store, data_paths, wait_s=0.01).dispatch()
    assert len(hook.wait(1)) == 1


def test_a_removed_destination_is_recorded_undelivered_in_words(store, logs, hook, fernet):
    alerts.save_destination(store, SINGLE_USER, fernet, "ops", hook.url())
    rule(store, "error_kind", subject="auth", destination="ops")
    logs(run("a_1", 5))
    alerts.check(store, by="cli")
    alerts.delete_destination(store, SINGLE_USER, "ops")
    assert alerts.deliver_all(store, fernet, wait_s=0.01) == [False]
    assert store.db.cursor().execute("SELECT reason FROM fg.alert_deliveries").fetchall() == [
        ("its destination was removed",)]
    assert store.alert_rules()[0].destination is None


def test_the_dashboards_ticker_checks_and_sends_with_no_page_open(data_paths, store, logs, hook, fernet):
    from fourgent.workspace import Workspace

    alerts.save_destination(store, SINGLE_USER, fernet, "ops", hook.url())
    rule(store, "error_kind", subject="auth", destination="ops")
    ticker = alerts.Ticker(Workspace(data_paths, store), every=0.2)
    ticker.thread.start()
    try:
        logs(run("a_1", 5))
        assert len(hook.wait(1)) == 1
        assert store.alert_history()[0].fired_by == "dashboard"
        time.sleep(0.6)
        assert len(hook.bodies) == 1  # ticks go on; the episode was sent once
    finally:
        ticker.stop.set()
        ticker.thread.join(timeout=10)


def test_the_alerts_view_is_readable_over_the_snapshot(store, logs):
    rule(store, "error_kind", subject="auth")
    logs(run("a_1", 5))
    alerts.check(store, by="dashboard")
    firing = alerts.firing_in_snapshot(store.path)
    assert [(f.rule, f.runs) for f in firing] == [("error_kind rule", 1)]
    result = store.run_sql("SELECT rule, state, fired_by, destination FROM alerts", max_rows=10, time_limit=10)
    assert result.rows == [("error_kind rule", "firing", "dashboard", None)]


def test_paths_key_file_is_the_connections_key(data_paths):
    assert data_paths.key_file == Paths(data_paths.data_dir).data_dir / "secret.key"


# ---------------------------------------------------------------- the CLI

HOLDER = """
import sys, time
from pathlib import Path
from fourgent.store.duckdb import DuckDBStore
store = DuckDBStore(Path(sys.argv[1]))
print("holding", flush=True)
time.sleep(60)
"""


@pytest.fixture
def cli_store(tmp_path, monkeypatch):
    from fourgent.store import close_store
    from fourgent.workspace import open_workspace

    data = tmp_path / "data"
    monkeypatch.setenv("FOURGENT_DATA_DIR", str(data))
    monkeypatch.setenv(alerts.PUBLIC_URL_ENV, "http://127.0.0.1:8501")
    ws = open_workspace()
    yield ws
    close_store(ws.store)


def test_cli_check_sends_once_exits_1_while_firing_and_0_once_resolved(cli_store, hook, write_log, capsys):
    from fourgent.cli import main

    ws = cli_store
    alerts.save_destination(ws.store, SINGLE_USER, alerts.key(ws.paths, ws.store), "ops", hook.url())
    rule(ws.store, "error_kind", subject="auth", destination="ops", name="Auth failures")
    assert main(["alerts", "check"]) == 0
    assert "Nothing is firing." in capsys.readouterr().out
    write_log(ws.paths.logs_dir / "a.jsonl", run("a_1", 5))
    assert main(["alerts", "check"]) == 1
    out = capsys.readouterr().out
    assert "FIRED  Auth failures: 1 run failed with error kind auth in the last 1 h http://127.0.0.1:8501/?" in out
    assert "Messages: 1 delivered, 0 undelivered" in out
    assert main(["alerts", "check", "--json"]) == 1  # still firing: reported, not sent again
    summary = json.loads(capsys.readouterr().out)
    assert summary["fired"] == 0 and summary["sent"] == 0 and [f["runs"] for f in summary["firing"]] == [1]
    assert len(hook.bodies) == 1
    write_log(ws.paths.logs_dir / "a.jsonl", run("a_1", 5, "finished", updated_at=ago(0)), mode="ab")
    assert main(["alerts", "check"]) == 0
    assert "RESOLVED Auth failures" in capsys.readouterr().out
    assert [b["title"] for b in hook.bodies] == ["Alert: Auth failures", "Resolved: Auth failures"]


def test_cli_check_while_the_dashboard_holds_the_store_reports_its_alerts_and_sends_nothing(
        cli_store, hook, write_log, capsys):
    import os
    import subprocess
    import sys

    from fourgent.cli import main
    from fourgent.store import close_store
    from helpers import ROOT

    ws = cli_store
    alerts.save_destination(ws.store, SINGLE_USER, alerts.key(ws.paths, ws.store), "ops", hook.url())
    rule(ws.store, "error_kind", subject="auth", destination="ops", name="Auth failures")
    write_log(ws.paths.logs_dir / "a.jsonl", run("a_1", 5))
    assert main(["alerts", "check"]) == 1  # the dashboard's first check, as it were: fired and sent
    capsys.readouterr()
    close_store(ws.store)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(ws.paths.db_path)], stdout=subprocess.PIPE,
                              text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        assert main(["alerts", "check"]) == 1
        out = capsys.readouterr().out
        assert f"The dashboard (process {holder.pid}) holds the store" in out and "nothing is sent from here" in out
        assert "FIRING Auth failures: 1 run failed with error kind auth" in out
        assert main(["alerts", "check", "--json"]) == 1
        summary = json.loads(capsys.readouterr().out)
        assert summary["checked_by"] == "dashboard" and summary["sent"] == 0 and len(summary["firing"]) == 1
        assert len(hook.bodies) == 1  # never twice for one episode
    finally:
        holder.kill()
        holder.wait()


def test_cli_check_without_a_store_says_so_with_exit_2(tmp_path, monkeypatch, capsys):
    from fourgent.cli import main

    monkeypatch.setenv("FOURGENT_DATA_DIR", str(tmp_path / "none"))
    assert main(["alerts", "check"]) == 2
    assert "there is no store" in capsys.readouterr().err


def test_the_served_dashboard_checks_and_sends_before_anyone_opens_a_page(tmp_path, hook, write_log):
    import os
    import subprocess
    import sys
    import urllib.request

    from fourgent.store.duckdb import DuckDBStore
    from helpers import ROOT

    data = Paths(tmp_path / "data").ensure()
    setup = DuckDBStore(data.db_path)
    alerts.save_destination(setup, SINGLE_USER, alerts.key(data, setup), "ops", hook.url())
    rule(setup, "error_kind", subject="auth", destination="ops", name="Auth failures")
    setup.close()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "serve.py", "--server.port", str(port), "--server.address",
         "127.0.0.1", "--server.headless", "true"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=dict(os.environ, FOURGENT_DATA_DIR=str(data.data_dir), FOURGENT_DEMO_RUNS="0", FOURGENT_ALERT_TICK="1"))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.3)
        write_log(data.logs_dir / "a.jsonl", run("a_1", 5))  # no page is ever opened
        assert [b["title"] for b in hook.wait(1, timeout=60)] == ["Alert: Auth failures"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_ticker_whose_store_was_closed_stops(tmp_path, monkeypatch):
    import fourgent.store as store_module
    from fourgent.store import open_store
    from fourgent.workspace import Workspace

    paths = Paths(tmp_path / "data").ensure()
    store = open_store(paths.db_path)
    ticker = alerts.Ticker(Workspace(paths, store), every=0.05)
    ticker.thread.start()
    time.sleep(0.2)
    assert ticker.thread.is_alive()
    # close_store's first step, without the close racing a tick's query: the store is forgotten.
    key = next(k for k, held in store_module._instances.items() if held is store)
    del store_module._instances[key]
    ticker.thread.join(timeout=10)
    assert not ticker.thread.is_alive()
    store.close()


def test_a_snapshot_from_before_the_alerts_view_gets_only_that_file_on_open(data_paths, write_log):
    from fourgent.store.duckdb import DuckDBStore, snapshot

    s = DuckDBStore(data_paths.db_path)
    s.ingest([write_log(data_paths.logs_dir / "a.jsonl", run("a_1", 5))])
    folder = s.db.snapshot_dir
    s.close()
    (folder / snapshot.ALERTS).unlink()  # as a store of a version before alerts left it
    days = {p: p.stat().st_mtime_ns for p in (folder / snapshot.RUNS).glob("day-*.parquet")}
    assert days
    time.sleep(0.05)
    s = DuckDBStore(data_paths.db_path)
    assert (folder / snapshot.ALERTS).exists()
    assert {p: p.stat().st_mtime_ns for p in days} == days  # no day rewritten
    s.close()


def test_consecutive_failures_spread_over_days_are_still_consecutive(store, logs):
    rule(store, "consecutive", threshold=3)
    logs(run("ok_old", 5 * 1440, "finished"), run("f_1", 3 * 1440), run("f_2", 2 * 1440), run("f_3", 5))
    fired = alerts.check(store, by="cli").fired  # only one in the last hour or day: read further back
    assert len(fired) == 1 and sorted(opened(store, fired[0])) == ["f_1", "f_2", "f_3"]


def test_a_test_message_reaches_the_destination_once_and_is_audited(store, hook, fernet):
    alerts.save_destination(store, SINGLE_USER, fernet, "ops", hook.url())
    alerts.save_destination(store, SINGLE_USER, fernet, "down", f"json://127.0.0.1:{free_port()}/hook")
    assert alerts.try_destination(store, SINGLE_USER, fernet, "ops")
    assert [b["title"] for b in hook.bodies] == ["Fourgent test message"]
    assert not alerts.try_destination(store, SINGLE_USER, fernet, "down")
    tested = [(e.target, e.detail) for e in store.audit_entries(action=Action.ALERT_DESTINATION_TEST.value)]
    assert tested == [("down", {"accepted": False}), ("ops", {"accepted": True})]
    with pytest.raises(Forbidden):
        alerts.try_destination(store, OPERATOR, fernet, "ops")
    assert len(hook.bodies) == 1
