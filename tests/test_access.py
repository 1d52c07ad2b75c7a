"""Roles enforced in the domain: every action refuses a role that may not act, and every attempt is audited."""

from __future__ import annotations

import pytest

from fourgent import comments, pauses
from fourgent.access import MIN_ROLE, Action, Actor, Forbidden, Role, RoleMap
from fourgent.audit import perform
from fourgent.workspace import check_connection, open_workspace, retrigger, save_connection
from helpers import run_line

VIEWER = Actor("vera@example.com", Role.VIEWER, "web")
OPERATOR = Actor("otto@example.com", Role.OPERATOR, "web")
ADMIN = Actor("ada@example.com", Role.ADMIN, "web")
XERO = {"id": "stripe-payment-xero-invoice", "source": "Stripe Payment", "destination": "Xero Invoice",
        "source_app": "Stripe", "destination_app": "Xero"}


@pytest.fixture
def ws(tmp_path, write_log):
    workspace = open_workspace(tmp_path / "data")
    write_log(workspace.paths.logs_dir / "a.jsonl",
              run_line("f1", workflow=XERO, status="failed", error={"message": "401", "step": 1, "kind": "auth"},
                       trigger_payload={"payment_id": "p1", "amount": 10.0, "customer_email": "a@example.com"}))
    workspace.ingest_logs()
    yield workspace
    workspace.store.close()


def test_roles_come_from_emails_domains_and_groups_the_highest_winning():
    roles = RoleMap.from_config({"admins": ["Ada@Example.com"], "operators": ["@ops.example.com"],
                                 "viewer_groups": ["readers"], "operator_groups": ["on-call"]})
    assert roles.problems == ()
    assert roles.role_for("ada@example.com") is Role.ADMIN
    assert roles.role_for("sam@ops.example.com") is Role.OPERATOR
    assert roles.role_for("sam@evilops.example.com") is Role.VIEWER  # a domain is whole, not a suffix
    assert roles.role_for("ada@example.com", ["readers"]) is Role.ADMIN
    assert roles.role_for("kim@elsewhere.org", ["On-Call"]) is Role.OPERATOR
    assert roles.role_for("kim@elsewhere.org") is Role.VIEWER  # anyone else signed in: a viewer
    assert roles.role_for(None) is None and roles.role_for("") is None


def test_strangers_can_be_refused_and_a_bad_setting_refuses_rather_than_admits():
    assert RoleMap.from_config({"others": "refuse"}).role_for("kim@elsewhere.org") is None
    bad = RoleMap.from_config({"others": "admn", "admins": "ada@example.com", "operator": ["x"]})
    assert bad.role_for("kim@elsewhere.org") is None and bad.role_for("ada@example.com") is Role.ADMIN
    assert any("roles.others" in p for p in bad.problems) and any("roles.operator " in p for p in bad.problems)


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("actor", [VIEWER, OPERATOR, ADMIN], ids=lambda a: a.role.label)
def test_every_action_is_refused_below_its_role_and_audited_either_way(ws, action, actor):
    done: list[bool] = []
    allowed = actor.role >= MIN_ROLE[action]
    if allowed:
        perform(ws.store, actor, action, "target-1", lambda: done.append(True))
    else:
        with pytest.raises(Forbidden, match=f"takes the {MIN_ROLE[action].label} role"):
            perform(ws.store, actor, action, "target-1", lambda: done.append(True))
    assert done == ([True] if allowed else [])
    [entry] = ws.store.audit_entries()
    assert (entry.actor, entry.role, entry.action, entry.target) == (actor.name, actor.role.label, action.value,
                                                                     "target-1")
    assert entry.outcome == ("ok" if allowed else "refused")


def test_a_viewer_calling_the_domain_directly_changes_nothing(ws):
    with pytest.raises(Forbidden):
        comments.add(ws.store, VIEWER, "f1", "forged note")
    with pytest.raises(Forbidden):
        pauses.set_paused(ws.store, VIEWER, XERO["id"], True)
    with pytest.raises(Forbidden):
        retrigger(ws, VIEWER, ["f1"])
    with pytest.raises(Forbidden):
        save_connection(ws, OPERATOR, "Xero", "https://evil.example.com", "stolen-token-1234")
    with pytest.raises(Forbidden):
        check_connection(ws, VIEWER, "Xero")
    assert comments.for_run(ws.store, "f1") == [] and ws.store.paused() == {}
    assert ws.store.retriggered_since(["f1"], ws.store.audit_entries()[-1].at) == {}
    assert all(c.base_url != "https://evil.example.com" for c in ws.store.connection_rows())
    assert [e.outcome for e in ws.store.audit_entries()] == ["refused"] * 5


def test_an_operator_acts_under_their_own_name_and_the_audit_says_what_came_of_it(ws):
    note = comments.add(ws.store, OPERATOR, "f1", "Reconnected Xero")
    pauses.set_paused(ws.store, OPERATOR, XERO["id"], True)
    pauses.set_paused(ws.store, OPERATOR, XERO["id"], False)
    result = retrigger(ws, OPERATOR, ["f1"], bulk_filter="status=failed&unresolved=1")
    assert note.author == OPERATOR.name and sum(result.outcomes.values()) == 1
    newest = ws.store.audit_entries()
    assert [e.action for e in newest] == ["bulk re-trigger", "unpause", "pause", "comment"]
    bulk = newest[0]
    assert bulk.target == "status=failed&unresolved=1" and bulk.detail is not None
    assert bulk.detail["count"] == 1 and bulk.detail["runs"] == ["f1"] and bulk.detail["outcomes"] == result.outcomes
    child = ws.store.run_record(result.new_runs["f1"])
    assert child is not None and child.parent is not None and child.parent["by"] == OPERATOR.name


def test_a_credential_replaced_by_an_admin_is_audited_without_the_secret(ws):
    save_connection(ws, ADMIN, "Xero", "http://sandbox/xero", "s3cr3t-token-9876")
    connected, _ = check_connection(ws, ADMIN, "Xero")
    tested, replaced = ws.store.audit_entries()[:2]
    assert (replaced.action, replaced.outcome) == ("connection replaced", "ok")
    assert replaced.detail == {"base_url": "http://sandbox/xero", "credential": "replaced", "tested": False,
                               "answer": "Refused: 401 Unauthorized"}
    assert tested.action == "connection tested" and tested.detail is not None
    assert tested.detail["connected"] is connected is False  # the demo Xero wants its own demo token
    ws.store.close()
    snapshot = b"".join(f.read_bytes() for f in (ws.paths.data_dir / "fourgent.snapshot").glob("*.parquet"))
    assert b"s3cr3t" not in snapshot and b"s3cr3t" not in ws.paths.db_path.read_bytes()


def test_a_failed_action_is_audited_as_failed_with_why(ws):
    with pytest.raises(comments.CommentRejected):
        comments.add(ws.store, OPERATOR, "no-such-run", "hello")
    [entry] = ws.store.audit_entries()
    assert entry.outcome == "failed" and entry.message is not None and "no run with that ID" in entry.message


def test_a_connections_url_is_audited_without_its_user_password_or_query(ws):
    save_connection(ws, ADMIN, "Xero", "https://bot:tok3n@api.example.com:8443/v2?api_key=k3y#x", "a-token-123456")
    [entry] = ws.store.audit_entries()
    assert entry.detail is not None and entry.detail["base_url"] == "https://api.example.com:8443/v2 (query removed)"
    assert "tok3n" not in str(entry.detail) and "k3y" not in str(entry.detail)


def test_a_domain_written_without_its_at_sign_is_reported_not_silently_ignored():
    roles = RoleMap.from_config({"operators": ["example.com"], "operator_groups": ["ops"]})
    assert roles.problems == ('roles.operators: "example.com" is neither an email nor a domain written '
                              '"@example.com"',)


def test_saving_a_credential_tests_it_so_a_wrong_token_never_reads_as_connected(ws):
    from fourgent.workspace import connection_states, demo_token

    def state(app: str) -> str:
        return next(s.credential for s in connection_states(ws)[0] if s.app == app)

    assert state("Xero") == "Connected"  # the demo's own token
    assert save_connection(ws, ADMIN, "Xero", "http://sandbox/xero", "wrong-token-0000")[0] is False
    assert state("Xero") == "Expired"
    assert save_connection(ws, ADMIN, "Xero", "http://sandbox/xero", demo_token("Xero")) == (True, "Connected: 200 OK")
    assert state("Xero") == "Connected"
    connected, answer = save_connection(ws, ADMIN, "Xero", "http://127.0.0.1:9/xero", "a-token-nobody-checks")
    assert not connected and answer.startswith("Could not reach it") and state("Xero") == "Untested"
