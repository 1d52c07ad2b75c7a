"""Connections: each app the workflows call — where it is, whether its credential works, and how to fix it."""

from __future__ import annotations

import httpx
import streamlit as st

from fourgent import display
from fourgent import queries as Q
from fourgent.connections import CredentialError
from fourgent.sandbox import transport
from fourgent.workspace import SANDBOX_URL, connections, definitions, demo_sandbox, demo_token
from ui import PAGES, literal, workspace

ws = workspace()
ws.refresh()
conns = connections(ws)
defs = definitions(ws)
tz = display.zone(st.context.timezone)

def save(app: str) -> None:
    """Store the new credential, then empty the field: it never stays in the page's state."""
    token = st.session_state.get(f"token_{app}", "")
    st.session_state[f"token_{app}"] = ""
    try:
        conns.set(app, st.session_state.get(f"url_{app}", "").strip(), token.strip())
        st.session_state["connections_saved"] = app
    except CredentialError as exc:
        st.session_state["connections_error"] = str(exc)


st.title("Connections")
st.caption("Credentials are stored encrypted and only ever shown masked.")
if saved := st.session_state.pop("connections_saved", None):
    st.success("Saved. Replay the runs that failed meanwhile: the Runs page re-triggers them in bulk.")
    uses = [wf.id for wf in defs.values() if saved in wf.apps]
    st.page_link(PAGES["runs"], label=f"Unresolved failures of the workflows that use {literal(saved)}", icon="🔁",
                 query_params={"unresolved": "1", "workflow": uses})
if problem := st.session_state.pop("connections_error", None):
    st.error(problem)

failures = Q.auth_failures_by_app(ws.store.cursor())
stored = conns.states()
# Expired: runs failed with auth after the credential was last set.
expired = {s.app for s in stored if s.app in failures and s.updated_at and failures[s.app][1] > s.updated_at}
states = conns.states(expired=expired)
st.dataframe(
    {
        "App": [s.app for s in states],
        "Base URL": [s.base_url for s in states],
        "Credential": [{"Connected": "🟢 Connected", "Expired": "🔴 Expired", "Missing": "⚪ Missing"}[s.credential]
                       for s in states],
        "Token": [s.masked for s in states],
        "Last successful call": [display.local_time(s.last_success_at, tz) for s in states],
        "Auth failures (7 d)": [failures.get(s.app, (0, None))[0] for s in states],
    },
    hide_index=True, width="stretch",
)

for s in states:
    count = failures.get(s.app, (0, None))[0]
    icon = {"Connected": "🟢", "Expired": "🔴", "Missing": "⚪"}[s.credential]
    with st.expander(f"{icon} {literal(s.app)}"):
        st.text(f"{s.app} · {s.base_url} · credential {s.credential.lower()} {s.masked}")
        if s.base_url.startswith(SANDBOX_URL):
            st.caption("A demo app, answered inside Fourgent. It accepts the token shown here "
                       "(demo tokens guard nothing):")
            st.code(demo_token(s.app), language=None)
        if count:  # exactly the runs counted: failed with auth at this app's step, in the last 7 days
            st.page_link(PAGES["runs"], label=f"{count} run(s) failed with auth in the last 7 days",
                         icon="🔎", query_params={"status": "failed", "kind": "auth", "app": s.app, "range": "7d"})
        with st.form(f"reconnect_{s.app}"):
            st.text_input("Base URL", value=s.base_url, key=f"url_{s.app}")
            st.text_input("New credential", type="password", key=f"token_{s.app}")
            st.form_submit_button("Reconnect / update credential", on_click=save, args=(s.app,))
        if st.button("Test connection", key=f"test_{s.app}"):
            conn = conns.get(s.app)
            try:
                with httpx.Client(mounts={SANDBOX_URL: transport(demo_sandbox())}, timeout=10) as client:
                    answer = client.get(conn.base_url.rstrip("/") + "/",
                                        headers={"Authorization": f"Bearer {conn.token}"} if conn.token else {})
                if answer.is_success:
                    conns.record(ok=[s.app])
                    said = f"Connected: {answer.status_code} {answer.reason_phrase}"
                    st.session_state["connections_tested"] = (s.app, True, said)
                else:
                    if answer.status_code in (401, 403):
                        conns.record(refused=[s.app])
                    said = f"Refused: {answer.status_code} {answer.reason_phrase}"
                    st.session_state["connections_tested"] = (s.app, False, said)
                st.rerun()  # the table above shows the new state
            except httpx.HTTPError as exc:
                st.error(f"Could not reach it: {type(exc).__name__}")
        tested = st.session_state.get("connections_tested")
        if tested and tested[0] == s.app:
            (st.success if tested[1] else st.error)(tested[2])
