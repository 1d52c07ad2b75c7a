"""The Connections page: states, a masked credential, reconnecting and testing — no secret on the page."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from helpers import APP, open_page

SECRET = "brand-new-secret-token-9876"


@pytest.fixture
def page(dashboard):
    dashboard()
    return open_page("app_pages/connections.py")


def everything_shown(at: AppTest) -> str:
    parts = [str(d.value.to_dict()) for d in at.dataframe]
    parts += [e.value for e in at.text] + [e.value for e in at.success] + [e.value for e in at.error]
    parts += [e.label for e in at.expander] + [t.value for t in at.text_input]
    return " ".join(parts)


def test_every_demo_app_is_listed_and_only_quickbooks_starts_expired(page):
    frame = page.dataframe[0].value.set_index("App")
    assert {"HubSpot", "QuickBooks", "Xero", "Slack"} <= set(frame.index)
    assert frame.loc["QuickBooks", "Credential"] == "🔴 Expired"
    assert set(frame.drop(index="QuickBooks")["Credential"]) == {"🟢 Connected"}


def test_an_app_a_later_definition_adds_is_listed_missing_and_can_be_connected(page, tmp_path):
    import json

    folder = tmp_path / "data" / "workflows"
    base = json.loads((folder / "hubspot-closed-won-quickbooks-invoice.json").read_text())
    base["id"] = "hubspot-deal-notion-page"
    base["steps"][-1]["app"] = "Notion"
    (folder / "hubspot-deal-notion-page.json").write_text(json.dumps(base))
    page.run()
    frame = page.dataframe[0].value.set_index("App")
    assert frame.loc["Notion", "Credential"] == "⚪ Missing"
    notion = [e.label for e in page.expander].index("⚪ Notion")
    [b for b in page.button if b.label == "Test connection"][notion].click().run()
    assert any(t.value == "❌ No base URL: set one and save it first." for t in page.text)
    [t for t in page.text_input if t.label == "Base URL"][notion].set_value("https://api.notion.example")
    [t for t in page.text_input if t.label == "New credential"][notion].set_value("secret-notion-token-1234")
    [b for b in page.button if b.label == "Reconnect / update credential"][notion].click().run()
    frame = page.dataframe[0].value.set_index("App")
    # Saved, but nothing answered its test call: it is not shown as working.
    assert frame.loc["Notion", "Credential"] == "🟡 Untested" and frame.loc["Notion", "Token"].endswith("1234")
    assert any("Saved, not tested" in w.value for w in page.warning)
    assert frame.loc["Notion", "Base URL"] == "https://api.notion.example"


def test_reconnecting_the_expired_demo_app_with_its_demo_token_connects_it(page):
    quickbooks = [e.label for e in page.expander].index("🔴 QuickBooks")
    [t for t in page.text_input if t.label == "New credential"][quickbooks].set_value("demo-quickbooks")
    [b for b in page.button if b.label == "Reconnect / update credential"][quickbooks].click().run()
    assert page.dataframe[0].value.set_index("App").loc["QuickBooks", "Credential"] == "🟢 Connected"
    link = next(p for p in page.get("page_link") if p.label.startswith("Unresolved failures"))
    assert "QuickBooks" in link.label
    [b for b in page.button if b.label == "Test connection"][quickbooks].click().run()
    assert any(t.value.startswith("✅ Connected: 200") for t in page.text)


def test_reconnecting_stores_the_credential_masked_and_never_shows_it(page):
    form_inputs = [t for t in page.text_input if t.label == "New credential"]
    form_inputs[0].set_value(SECRET)
    next(b for b in page.button if b.label == "Reconnect / update credential").click().run()
    assert not page.exception
    assert any("Saved, but" in e.value and "refused it when tested" in e.value for e in page.error)
    assert any(t.value == "Refused: 401 Unauthorized" for t in page.text)  # a wrong token is said so at once
    assert "••••••••9876" in set(page.dataframe[0].value["Token"])
    assert SECRET not in everything_shown(page)


def test_test_connection_reports_the_answer(page):
    next(b for b in page.button if b.label == "Test connection").click().run()
    assert any(t.value.startswith("✅ Connected: 200") for t in page.text)
    form_inputs = [t for t in page.text_input if t.label == "New credential"]
    form_inputs[0].set_value("wrong-token-000000")
    next(b for b in page.button if b.label == "Reconnect / update credential").click().run()
    next(b for b in page.button if b.label == "Test connection").click().run()
    assert any(t.value.startswith("❌ Refused: 401") for t in page.text)
    assert page.dataframe[0].value["Credential"][0] == "🔴 Expired"  # the refusal is remembered


def test_an_empty_credential_is_refused_with_a_message(page):
    next(b for b in page.button if b.label == "Reconnect / update credential").click().run()
    assert any(e.value == "The credential is empty." for e in page.error)


def test_auth_failures_after_the_credential_was_set_show_it_expired(tmp_path, monkeypatch, write_log):
    from datetime import UTC, datetime, timedelta

    from helpers import run_line

    monkeypatch.setenv("FOURGENT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FOURGENT_DEMO_RUNS", "0")
    monkeypatch.delenv("FOURGENT_SECRET_KEY", raising=False)
    # Started after the demo credentials are set (on this first page load): they must be stale.
    now = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    steps = [{"name": "Create invoice", "app": "QuickBooks", "status": "failed", "error": "401"}]
    write_log(tmp_path / "data" / "logs" / "auth.jsonl",
              run_line("q1", status="failed", started_at=now, finished_at=None, steps=steps,
                       error={"message": "401", "step": 0, "kind": "auth"}),
              run_line("q2", status="failed", started_at=now, finished_at=None,  # same workflow, not auth
                       error={"message": "Missing required field: contact_email", "step": None,
                              "kind": "validation"}))
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/connections.py").run()
    frame = at.dataframe[0].value.set_index("App")
    assert frame.loc["QuickBooks", "Auth failures (7 d)"] == 1
    assert frame.loc["QuickBooks", "Credential"] == "🔴 Expired"
    assert frame.loc["HubSpot", "Credential"] == "🟢 Connected"
    link = next(p for p in at.get("page_link") if p.proto.label.endswith("failed with auth in the last 7 days"))
    runs = AppTest.from_file(APP, default_timeout=60)
    for key, value in parse_qs(link.proto.query_string).items():
        runs.query_params[key] = value
    runs.run()
    assert next(m.value for m in runs.metric if m.label == "Matching runs") == "1"  # the same run, no other
    st.cache_resource.clear()


def test_a_missing_key_is_said_in_words_and_the_page_changes_nothing(page, tmp_path):
    from ui.workspace import workspace

    key = workspace().paths.data_dir / "secret.key"
    key.unlink()
    at = open_page("app_pages/connections.py")
    assert "is missing" in at.error[0].value and "stored credential" in at.error[0].value
    assert not key.exists()
