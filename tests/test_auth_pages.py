"""Pages under AppTest with sign-in configured: what each role is offered, and who a comment is signed by."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from helpers import APP

SECRETS = {"auth": {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "x" * 40,
                    "client_id": "c", "client_secret": "s",
                    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"},
           "roles": {"admins": ["ada@example.com"], "operators": ["@ops.example.com"], "others": "viewer"}}
FAILED_RUN = "run_01000000170"


def signed_in(email: str | None, page: str | None = None, roles: dict | None = None, **params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets = {**SECRETS, "roles": roles or SECRETS["roles"]}
    at.user = {"is_logged_in": True, "email": email, "name": email} if email else {"is_logged_in": False}
    at.run()
    if page:
        for key, value in params.items():
            at.query_params[key] = value
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def team(sampled_app):
    return sampled_app


def test_no_page_shows_anything_before_sign_in(team):
    at = signed_in(None)
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.dataframe and not at.metric


def test_a_viewer_is_offered_no_action(team):
    at = signed_in("vera@elsewhere.org", "app_pages/run_detail.py", id=FAILED_RUN)
    assert "vera@elsewhere.org · viewer" in [t.value for t in at.sidebar.text]
    retrigger = next(b for b in at.button if b.label == "↻ Re-trigger this run")
    assert retrigger.disabled and "Needs the operator role" in (retrigger.help or "")
    assert not at.text_area  # no comment form
    runs = signed_in("vera@elsewhere.org")
    bulk = next(b for b in runs.button if b.label.startswith("↻ Re-trigger the"))
    assert bulk.disabled


def test_an_operators_comment_is_signed_with_their_email_not_a_typed_name(team):
    at = signed_in("sam@ops.example.com", "app_pages/run_detail.py", id=FAILED_RUN)
    assert not next(b for b in at.button if b.label == "↻ Re-trigger this run").disabled
    assert not [t for t in at.text_input if "name" in t.label.lower()]
    at.text_area[0].set_value("Looking into it")
    next(b for b in at.button if b.label == "Add comment").click().run()
    assert "sam@ops.example.com:" in [t.value for t in at.text]


def test_the_audit_page_is_for_admins_only(team):
    admin = signed_in("ada@example.com", "app_pages/audit.py")
    assert [t.value for t in admin.title] == ["Audit"] and admin.dataframe
    with pytest.raises(ValueError, match="Could not find a navigation page"):  # not in a viewer's navigation
        signed_in("vera@elsewhere.org", "app_pages/audit.py")


def test_someone_with_no_role_is_refused_when_strangers_are(team):
    at = signed_in("kim@elsewhere.org", roles={"admins": ["ada@example.com"], "others": "refuse"})
    assert any("`kim@elsewhere.org` has no role on this dashboard" in e.value for e in at.error)
    assert [b.label for b in at.button] == ["Sign out"] and not at.dataframe


def test_an_email_the_provider_does_not_vouch_for_gives_no_email_role(team):
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets = SECRETS
    at.user = {"is_logged_in": True, "email": "ada@example.com", "email_verified": False, "sub": "u-42"}
    at.run()
    # Not the admin the address names: with no group either, the stranger rule needs a vouched address.
    assert any("`sub:u-42` has no role on this dashboard" in e.value for e in at.error)


def test_names_from_the_identity_provider_are_shown_as_text_never_markup(team):
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets = {**SECRETS, "roles": {"operators": ["@ops.example.com"]}}
    at.user = {"is_logged_in": True, "email": "sam@ops.example.com", "name": "[Support](https://evil.example)"}
    at.run()
    assert "[Support](https://evil.example) · operator" in [t.value for t in at.sidebar.text]
    markdown = [m.value for m in (*at.sidebar.markdown, *at.sidebar.caption)]
    assert not [m for m in markdown if "](https://evil.example" in m]
