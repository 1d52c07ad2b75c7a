"""The Audit page under AppTest: admins see every entry with filters and a CSV; it offers no edit."""

from __future__ import annotations

import pytest

from fourgent import comments
from fourgent.access import Action, Actor, Forbidden, Role
from fourgent.audit import perform
from fourgent.filters import RunFilter
from helpers import open_page
from ui.workspace import workspace

OTTO = Actor("otto@example.com", Role.OPERATOR, "web")


def test_the_audit_lists_actions_newest_first_filters_them_and_exports_them(dashboard):
    dashboard(300)
    at = open_page("app_pages/audit.py")  # the single user of a dashboard without login is its admin
    store = workspace().store
    run_id = store.select_ids(RunFilter(), limit=1)[0]
    comments.add(store, OTTO, run_id, "=HYPERLINK(\"http://evil\")")
    with pytest.raises(Forbidden):
        perform(store, Actor("vera@example.com", Role.VIEWER, "web"), Action.PAUSE, "wf", lambda: None)
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["Who"]) == ["vera@example.com", "otto@example.com"]
    assert list(table["Outcome"]) == ["refused", "ok"] and table["Target"][1] == run_id
    at.selectbox(key="audit_outcome").set_value("refused").run()
    assert list(at.dataframe[0].value["Who"]) == ["vera@example.com"]
    at.selectbox(key="audit_outcome").set_value("Any").run()
    at.text_input(key="audit_who").set_value("otto").run()
    assert list(at.dataframe[0].value["Action"]) == ["comment"]
    assert [b.label for b in at.get("download_button")] == ["Download as CSV"]
    assert not [b for b in at.button if "delete" in b.label.lower() or "edit" in b.label.lower()]
