"""The Alerts page under AppTest: destinations and rules made from the page, the history with its Runs links,
bad input refused in words, secrets never shown, and what a viewer and an operator are offered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from receivers import Webhook
from test_auth_pages import signed_in

from fourgent import alerts
from fourgent.filters import RunsQuery
from helpers import open_page, run_line
from ui.workspace import workspace

PAGE = "app_pages/alerts.py"
TOKEN = "tok-5e6f7a8b9c0d"


def _failed(run_id: str) -> dict:
    started = datetime.now(UTC) - timedelta(minutes=5)
    return run_line(run_id, status="failed", started_at=started.isoformat(),
                    finished_at=(started + timedelta(seconds=2)).isoformat(),
                    error={"message": "401 Unauthorized", "kind": "auth"})


def _button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_a_destination_and_a_rule_made_on_the_page_fire_into_the_history_with_a_runs_link(dashboard, write_log):
    data = dashboard(FOURGENT_ALERT_TICK="0")  # the test checks by hand: no ticker thread
    hook = Webhook()
    try:
        at = open_page(PAGE)
        assert "Nothing is firing." in [t.value for t in at.text]
        at.text_input(key="ad_name").set_value("ops")
        at.text_input(key="ad_url").set_value(hook.url(f"/hook/{TOKEN}"))
        _button(at, "Save destination").click().run()
        assert not at.exception, at.exception
        assert "Saved the destination “ops”." in [s.value for s in at.success]
        shown = at.dataframe[-1].value
        assert list(shown["Destination"]) == ["json://127.0.0.1/••••••••"]
        shown_anywhere = [*(e.value for kind in ("text", "markdown", "caption", "success", "error", "text_input")
                            for e in at.get(kind)), *(repr(d.value) for d in at.dataframe)]
        assert TOKEN not in repr(shown_anywhere) and at.session_state["ad_url"] == ""  # not kept in the session

        at.selectbox(key="alert_kind").set_value("error_kind").run()
        suffix = "new_error_kind"
        at.text_input(key=f"ar_name_{suffix}").set_value("Auth failures")
        at.selectbox(key=f"ar_dest_{suffix}").set_value("ops")
        _button(at, "Add rule").click().run()
        assert not at.exception, at.exception
        assert "Saved the rule “Auth failures”." in [s.value for s in at.success]
        rules = at.dataframe[0].value
        assert list(rules["Rule"]) == ["Auth failures"] and list(rules["Sends to"]) == ["ops"]

        write_log(data / "logs" / "a.jsonl", _failed("a_1"), _failed("a_2"))
        ws = workspace()
        ws.ingest_logs()
        alerts.check(ws.store, by="dashboard")
        alerts.deliver_all(ws.store, alerts.key(ws.paths, ws.store), wait_s=0.01)
        at.run()
        assert not at.exception, at.exception
        assert "🔴 Auth failures — 2 runs failed with error kind auth in the last 1 h" in [t.value for t in at.text]
        link = next(p for p in at.get("page_link") if p.proto.label.startswith("Open the 2 runs"))
        history = at.dataframe[0].value
        assert list(history["State"]) == ["🔴 firing"] and list(history["Message"]) == ["✅ delivered"]
        query = RunsQuery.from_string(history["Open"][0].removeprefix("./?"))
        assert sorted(ws.store.select_ids(query.filter(datetime.now(UTC), alerts.UTC_ZONE))) == ["a_1", "a_2"]
        assert RunsQuery.from_string(link.proto.query_string) == query  # the same runs from the "Firing now" link
        assert len(hook.bodies) == 1
    finally:
        hook.close()


def test_a_bad_rule_and_a_bad_destination_are_refused_in_words(dashboard):
    dashboard(FOURGENT_ALERT_TICK="0")
    at = open_page(PAGE)
    at.selectbox(key="alert_kind").set_value("app").run()
    _button(at, "Add rule").click().run()  # no name
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ["A rule needs a name of 1 to 100 characters."]
    at.text_input(key="ad_name").set_value("ops")
    at.text_input(key="ad_url").set_value(f"https://{TOKEN}@hooks.example.com/x")  # not an Apprise URL
    _button(at, "Save destination").click().run()
    assert "Apprise does not understand that URL" in at.error[0].value and TOKEN not in at.error[0].value
    assert workspace().store.alert_destinations() == [] and workspace().store.alert_rules() == []


def test_a_rule_can_be_edited_turned_off_and_deleted(dashboard):
    dashboard(FOURGENT_ALERT_TICK="0")
    at = open_page(PAGE)
    at.selectbox(key="alert_kind").set_value("stuck").run()
    at.text_input(key="ar_name_new_stuck").set_value("Stuck runs")
    _button(at, "Add rule").click().run()
    rule = workspace().store.alert_rules()[0]
    at.selectbox(key="alert_edit").set_value(rule.rule_id).run()
    suffix = f"{rule.rule_id}_stuck"
    assert at.number_input(key=f"ar_t_{suffix}").value == 30
    at.number_input(key=f"ar_t_{suffix}").set_value(90)
    at.toggle(key=f"ar_on_{suffix}").set_value(False)
    _button(at, "Save rule").click().run()
    assert not at.exception, at.exception
    (saved,) = workspace().store.alert_rules()
    assert saved.threshold == 90 and not saved.enabled and saved.rule_id == rule.rule_id
    assert list(at.dataframe[0].value["State"]) == ["⏸️ off"]
    at.selectbox(key="alert_edit").set_value(rule.rule_id).run()
    _button(at, "Delete this rule").click().run()
    assert workspace().store.alert_rules() == []
    assert "Deleted the rule “Stuck runs”; its history stays." in [s.value for s in at.success]


def test_a_viewer_reads_the_page_and_is_offered_no_change(sampled_app, monkeypatch):
    monkeypatch.setenv("FOURGENT_ALERT_TICK", "0")
    at = signed_in("vera@elsewhere.org", PAGE)
    add = _button(at, "Add rule")
    assert add.disabled and "Needs the operator role" in (add.help or "")
    assert not [t for t in at.text_input if t.key == "ad_url"]  # no destination form
    assert "Needs the admin role" in " ".join(c.value for c in at.caption)


def test_an_operator_may_add_rules_but_not_destinations(sampled_app, monkeypatch):
    monkeypatch.setenv("FOURGENT_ALERT_TICK", "0")
    at = signed_in("olga@ops.example.com", PAGE)
    assert not _button(at, "Add rule").disabled
    assert not [t for t in at.text_input if t.key == "ad_url"]


def test_how_it_works_says_how_alerts_are_checked_and_sent_from_the_code(dashboard):
    dashboard(FOURGENT_ALERT_TICK="7")
    at = open_page("app_pages/how_it_works.py")
    said = " ".join(m.value for m in at.markdown)
    assert "every 7 s" in said and f"{alerts.ATTEMPTS} attempts with backoff" in said
    table = next(d.value for d in at.dataframe if "Fires when" in d.value.columns)
    assert list(table["Rule"]) == list(alerts.KINDS.values())
