"""Who is using this session: the signed-in user and their role, or the one user of a dashboard without login."""

from __future__ import annotations

import os

import streamlit as st

from fourgent import audit
from fourgent.access import MIN_ROLE, SINGLE_USER, Action, Actor, Role, RoleMap
from ui.text import literal
from ui.workspace import login_configured, secrets_section, workspace

SIGNED_IN_KEY = "auth_signed_in"  # the sign-in of this session has its audit entry
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
ANONYMOUS_ENV = "FOURGENT_ALLOW_ANONYMOUS"
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-Ip")


def open_without_login(address: str | None = None) -> str | None:
    """Why the dashboard must not serve: it would be reachable beyond this machine with no sign-in (None: it
    may). `address`: what the server listens on (default: its setting)."""
    if address is None:
        address = str(st.get_option("server.address") or "")
    if address in LOOPBACK or login_configured() or os.environ.get(ANONYMOUS_ENV) == "1":
        return None
    where = address or "every network interface"
    return (f"Refusing to serve Fourgent Runs on {where} without sign-in: anyone who can reach the port could "
            "re-trigger runs and replace credentials. Configure [auth] in .streamlit/secrets.toml (README, "
            f'"Deploying for a team"), listen on 127.0.0.1, or set {ANONYMOUS_ENV}=1 to allow it knowingly.')


def _proxied() -> bool:
    """The request came through a reverse proxy: then 127.0.0.1 is not "this machine only"."""
    headers = st.context.headers
    return any(headers.get(h) for h in PROXY_HEADERS)


def role_map() -> RoleMap:
    return RoleMap.from_config(secrets_section("roles"))


def _signed_in() -> tuple[Actor | None, str]:
    """The signed-in user as an Actor (None: no role here), and the name they go by.

    The identity is the email when the provider vouches for it (`email_verified` not false); otherwise the
    provider's subject, which never matches an email or domain rule, only a group."""
    email = str(st.user.get("email") or "")
    verified = st.user.get("email_verified") is not False
    name = email if email and verified else f"sub:{st.user.get('sub') or '?'}"
    roles = role_map()
    claim: object = st.user.get(roles.groups_claim) or []
    groups = [str(g) for g in claim] if isinstance(claim, list) else [str(claim)]
    role = roles.role_for(email if verified else None, groups)
    return (Actor(name, role, "web") if role is not None else None), name


def _single_user_refusal() -> str | None:
    """Without sign-in: why this request must not be served (listening beyond this machine, or reached
    through a reverse proxy), or None."""
    refused = open_without_login()
    if refused is None and _proxied() and os.environ.get(ANONYMOUS_ENV) != "1":
        refused = open_without_login("a reverse proxy")
    return refused


def current() -> Actor | None:
    """The acting user now, worked out afresh (a widget callback runs before the page: never a stale role).
    None: nobody may act (not signed in, no role, or an open server without sign-in)."""
    if not login_configured():
        return None if _single_user_refusal() else SINGLE_USER
    if not st.user.is_logged_in:
        return None
    return _signed_in()[0]


def gate() -> Actor:
    """Every page's first step (app.py): the acting user, or a sign-in page (or a refusal) and a stop."""
    if not login_configured():
        if refused := _single_user_refusal():
            st.error(refused)
            st.stop()
        st.sidebar.caption("Single-user mode (no login): listening on this machine only.")
        return SINGLE_USER
    if not st.user.is_logged_in:
        st.title("Fourgent Runs")
        st.text("Sign in to see and re-trigger your integration runs.")
        st.button("Sign in", type="primary", on_click=st.login)
        st.stop()
    actor, name = _signed_in()
    if actor is None:
        if st.session_state.get(SIGNED_IN_KEY) != f"refused:{name}":
            audit.refused_sign_in(workspace().store, name)
            st.session_state[SIGNED_IN_KEY] = f"refused:{name}"
        st.title("Fourgent Runs")
        st.error(f"{literal(name)} has no role on this dashboard. Ask an admin to add you.")  # IdP text
        st.button("Sign out", on_click=st.logout)
        st.stop()
    if st.session_state.get(SIGNED_IN_KEY) != actor.name:
        _record_sign_in(actor, st.user.get("iat"))
        st.session_state[SIGNED_IN_KEY] = actor.name
    with st.sidebar:
        if actor.role >= Role.ADMIN:
            for problem in role_map().problems:
                st.warning(f"Access settings: {problem}", icon="⚠️")
        st.text(f"{st.user.get('name') or actor.name} · {actor.role.label}")  # the provider's words: text
        st.button("Sign out", on_click=st.logout, key="auth_sign_out")
    return actor


def _record_sign_in(actor: Actor, issued: object) -> None:
    """One entry per sign-in, not per browser tab or reload: a sign-in is an ID token, told by when it was
    issued (`iat`); each new session of the same sign-in finds its entry."""
    store = workspace().store
    if issued is not None and any(e.actor == actor.name and (e.detail or {}).get("issued") == issued
                                  for e in store.audit_entries(actor=actor.name, action="sign-in", limit=20)):
        return
    audit.sign_in(store, actor, issued=issued)


def actor() -> Actor:
    """The acting user of this run (or callback); stops the run when nobody may act."""
    found = current()
    if found is None:
        st.stop()
    return found


def may(action: Action) -> bool:
    found = current()
    return found is not None and found.may(action)


def needs(action: Action) -> str:
    """The help text of a button this user may not press."""
    found = current()
    return f"Needs the {MIN_ROLE[action].label} role; you are a {found.role.label if found else 'guest'}."
