"""Sign-in end to end: a real OIDC provider on 127.0.0.1, the dashboard behind serve.py, Debian's Chromium.

Viewers see no action they may not take, an operator's re-trigger is recorded under their email, an admin
reads it on the Audit page; signing out ends the session; a tampered or expired session cookie is refused.
"""

from __future__ import annotations

import json
import threading
import time
from unittest import mock

import pytest
from test_browser import sample_data, serve, shot, wait_ready

from helpers import ROOT

pytestmark = pytest.mark.browser
oidc = pytest.importorskip("oidc_provider_mock", reason="oidc-provider-mock is not installed")
COOKIE_SECRET = "test-cookie-secret-that-is-long-enough-0123456789"
USERS = {"ada": {"email": "ada@example.com", "name": "Ada Admin"},
         "otto": {"email": "otto@example.com", "name": "Otto Operator", "groups": ["on-call"]},
         "vera": {"email": "vera@example.com", "name": "Vera Viewer"}}
FAILED_RUN = "run_01000000170"


@pytest.fixture(scope="module")
def provider():
    import werkzeug.serving

    users = [oidc.User(sub=sub, claims=claims) for sub, claims in USERS.items()]
    server = werkzeug.serving.make_server("127.0.0.1", 0, oidc.app(user_claims=users), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def team(tmp_path_factory, provider):
    folder = tmp_path_factory.mktemp("team")
    data = sample_data(folder)
    secrets = folder / "secrets.toml"
    # The redirect URI names the dashboard's port, which serve() picks: Streamlit fills in {port} itself.
    secrets.write_text(f"""
[auth]
redirect_uri = "http://127.0.0.1:{{port}}/oauth2callback"
cookie_secret = "{COOKIE_SECRET}"
client_id = "fourgent-runs"
client_secret = "fourgent-test-secret"
server_metadata_url = "{provider}/.well-known/openid-configuration"

[roles]
admins = ["ada@example.com"]
operator_groups = ["on-call"]
""")
    proc, url = serve(ROOT, env={"FOURGENT_DATA_DIR": str(data), "FOURGENT_DEMO_RUNS": "0"},
                      args=("--secrets.files", str(secrets)))
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    yield ctx
    ctx.close()


def sign_in(context, url: str, who: str):
    page = context.new_page()
    page.goto(url)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name=who, exact=True).click()  # the provider's one-click user
    wait_ready(page, "Matching runs")
    return page


def sidebar(page) -> str:
    return page.locator('[data-testid="stSidebar"]').inner_text()


def test_every_page_asks_to_sign_in_first(context, team):
    page = context.new_page()
    for path in ("/", f"/run?id={FAILED_RUN}", "/explore?sql=SELECT%201", "/connections"):
        page.goto(team + path)
        page.get_by_role("button", name="Sign in").wait_for(timeout=30_000)
        assert "Matching runs" not in page.inner_text("body") and FAILED_RUN not in page.inner_text("body")
    shot(page, "sign-in")


def test_a_viewer_reads_everything_but_has_no_action_to_take(context, team):
    page = sign_in(context, team, "vera")
    assert "vera@example.com" in sidebar(page) or "Vera Viewer · viewer" in sidebar(page)
    assert "· viewer" in sidebar(page) and "Audit" not in sidebar(page)
    bulk = page.get_by_role("button", name="↻ Re-trigger the")
    bulk.first.wait_for(timeout=30_000)
    assert bulk.first.is_disabled()  # the count is shown; the action is not offered
    page.goto(f"{team}/run?id={FAILED_RUN}")
    wait_ready(page, "Lineage")
    assert page.get_by_role("button", name="↻ Re-trigger this run").is_disabled()
    assert page.get_by_text("Add a note").count() == 0  # no comment form
    page.goto(f"{team}/connections")
    page.get_by_text("Needs the admin role").first.wait_for(state="attached", timeout=30_000)  # in each expander
    assert page.locator("button", has_text="Test connection").count() == 0
    shot(page, "viewer-connections")


def test_an_operator_re_triggers_under_their_email_and_the_admin_reads_it_in_the_audit(browser, team):
    ops = browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        page = sign_in(ops, team, "otto")
        assert "Otto Operator · operator" in sidebar(page)
        page.goto(f"{team}/run?id={FAILED_RUN}")
        wait_ready(page, "Lineage")
        page.get_by_role("button", name="↻ Re-trigger this run").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_text("Recorded as re-triggered by otto@example.com").wait_for(timeout=30_000)
        dialog.get_by_role("button", name="Re-trigger", exact=True).click()
        page.get_by_text(f"Re-triggered {FAILED_RUN} as").first.wait_for(timeout=60_000)
    finally:
        ops.close()
    admin = browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        page = sign_in(admin, team, "ada")
        assert "Ada Admin · admin" in sidebar(page)
        page.get_by_role("link", name="Audit").click()
        page.get_by_text("Entries are only ever added").wait_for(timeout=30_000)
        page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=30_000)
        shot(page, "audit-page")
        with page.expect_download() as download:  # the table is drawn on a canvas: read its CSV export
            page.get_by_role("button", name="Download as CSV").click()
        rows = download.value.path().read_text(encoding="utf-8").splitlines()
        by_otto = [r for r in rows if ",otto@example.com,operator,web," in r]
        assert any(",re-trigger," in r and f",{FAILED_RUN}," in r and ",ok," in r for r in by_otto), rows[:5]
        # One sign-in entry per sign-in: Otto's pages opened in new sessions did not add more.
        assert len([r for r in by_otto if ",sign-in," in r]) == 1
        page.goto(f"{team}/connections")
        page.locator("button", has_text="Test connection").first.wait_for(state="attached", timeout=30_000)
    finally:
        admin.close()


def test_signing_out_ends_the_session(context, team):
    page = sign_in(context, team, "otto")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="End session").click()  # the provider's own logout, then back here
    page.get_by_role("button", name="Sign in").wait_for(timeout=30_000)
    assert not [c for c in context.cookies() if c["name"] == "_streamlit_user"]
    page.goto(f"{team}/run?id={FAILED_RUN}")
    page.get_by_role("button", name="Sign in").wait_for(timeout=30_000)
    assert FAILED_RUN not in page.inner_text("body")


def _user_cookie(context) -> dict:
    return next(c for c in context.cookies() if c["name"] == "_streamlit_user")


@pytest.mark.parametrize("spoil", ["tampered", "expired"])
def test_a_tampered_or_expired_session_cookie_is_refused(context, team, spoil):
    from itsdangerous import URLSafeTimedSerializer

    page = sign_in(context, team, "ada")
    cookie = _user_cookie(context)
    serializer = URLSafeTimedSerializer(COOKIE_SECRET, salt="_streamlit_user")
    claims = json.loads(serializer.loads(cookie["value"]))
    # The control: the same cookie put back as it was is a signed-in session.
    context.clear_cookies()
    context.add_cookies([cookie])
    page.goto(team)
    wait_ready(page, "Matching runs")
    if spoil == "tampered":  # claims of someone else, signed without the server's secret
        value = URLSafeTimedSerializer("not-the-secret", salt="_streamlit_user").dumps(
            json.dumps({**claims, "email": "mallory@example.com"}))
    else:  # signed with the real secret, 40 days ago: past the cookie's lifetime
        with mock.patch("time.time", return_value=time.time() - 40 * 86400):
            value = serializer.dumps(json.dumps(claims))
    context.clear_cookies()
    context.add_cookies([{**cookie, "value": value}])
    page.goto(team)
    page.get_by_role("button", name="Sign in").wait_for(timeout=30_000)
    assert "mallory" not in page.inner_text("body") and "Matching runs" not in page.inner_text("body")
