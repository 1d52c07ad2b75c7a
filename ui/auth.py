"""Who is using this session: the signed-in user and their role, or the one user of a dashboard without login."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import streamlit as st

from fourgent import audit
from fourgent.access import MIN_ROLE, SINGLE_USER, Action, Actor, RoleMap
from ui.workspace import workspace

ACTOR_KEY = "auth_actor"  # this session's Actor, set by gate() on every run
SIGNED_IN_KEY = "auth_signed_in"  # the sign-in of this session has its audit entry


def _secrets_section(name: str) -> Mapping[str, Any] | None:
    try:
        section = st.secrets.get(name)
    except FileNotFoundError:  # no secrets.toml at all
        return None
    return section if isinstance(section, Mapping) else None


def login_configured() -> bool:
    """An `[auth]` section in .streamlit/secrets.toml turns on sign-in (README, "Deploying for a team")."""
    return _secrets_section("auth") is not None


LOOPBACK = {"127.0.0.1", "localhost", "::1"}
ANONYMOUS_ENV = "FOURGENT_ALLOW_ANONYMOUS"


def open_without_login() -> str | None:
    """Why this server must not start: it would listen beyond this machine with no sign-in (None: it may)."""
    address = str(st.get_option("server.address") or "")
    if address in LOOPBACK or login_configured() or os.environ.get(ANONYMOUS_ENV) == "1":
        return None
    where = address or "every network interface"
    return (f"Refusing to serve Fourgent Runs on {where} without sign-in: anyone who can reach the port could "
            "re-trigger runs and replace credentials. Configure [auth] in .streamlit/secrets.toml (README, "
            f'"Deploying for a team"), listen on 127.0.0.1, or set {ANONYMOUS_ENV}=1 to allow it knowingly.')


def role_map() -> RoleMap:
    return RoleMap.from_config(_secrets_section("roles"))


def gate() -> Actor:
    """Every page's first step (app.py): the acting user, or a sign-in page and a stop."""
    if not login_configured():
        st.session_state[ACTOR_KEY] = SINGLE_USER
        st.sidebar.caption("Single-user mode (no login): listening on this machine only.")
        return SINGLE_USER
    if not st.user.is_logged_in:
        st.title("Fourgent Runs")
        st.text("Sign in to see and re-trigger your integration runs.")
        st.button("Sign in", type="primary", on_click=st.login)
        st.stop()
    roles = role_map()
    for problem in roles.problems:
        st.sidebar.warning(f"Access settings: {problem}", icon="⚠️")
    email = str(st.user.get("email") or "")
    claim: object = st.user.get(roles.groups_claim) or []
    groups = [str(g) for g in claim] if isinstance(claim, list) else [str(claim)]
    role = roles.role_for(email, groups)
    if role is None:
        st.title("Fourgent Runs")
        st.error(f"{email or 'This account'} has no role on this dashboard. Ask an admin to add you.")
        st.button("Sign out", on_click=st.logout)
        st.stop()
    actor = Actor(email, role, "web")
    st.session_state[ACTOR_KEY] = actor
    if st.session_state.get(SIGNED_IN_KEY) != email:
        _record_sign_in(actor, st.user.get("iat"))
        st.session_state[SIGNED_IN_KEY] = email
    with st.sidebar:
        st.caption(f"{st.user.get('name') or email} · {role.label}")
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
    """The acting user of this run of the page (gate() ran first, in app.py)."""
    found = st.session_state.get(ACTOR_KEY)
    if isinstance(found, Actor):
        return found
    if login_configured():  # never a default identity where sign-in is required
        st.stop()
    return SINGLE_USER


def may(action: Action) -> bool:
    return actor().may(action)


def needs(action: Action) -> str:
    """The help text of a button this user may not press."""
    return f"Needs the {MIN_ROLE[action].label} role; you are a {actor().role.label}."
