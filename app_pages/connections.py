"""Connections: each app the workflows call — where it is, whether its credential works, and how to fix it."""

from __future__ import annotations

import streamlit as st

from fourgent import display
from fourgent.access import Action, Forbidden
from fourgent.connections import CredentialError
from fourgent.filters import RunsQuery
from fourgent.workspace import (
    SANDBOX_URL,
    check_connection,
    connection_states,
    connections,
    definitions,
    demo_token,
    save_connection,
)
from ui import pages
from ui.auth import actor, may, needs
from ui.text import label
from ui.workspace import workspace
from ui.zone import utc_switch

CREDENTIAL_LABELS = {"Connected": "🟢 Connected", "Untested": "🟡 Untested", "Expired": "🔴 Expired",
                     "Missing": "⚪ Missing"}

ws = workspace()
ws.refresh()
try:
    conns = connections(ws)
except CredentialError as exc:  # e.g. the key file is gone while credentials are stored: say so, change nothing
    st.title("Connections")
    st.error(str(exc), icon="🔑")
    st.stop()
for warning in conns.warnings:
    st.warning(warning, icon="🔑")
defs = definitions(ws)
tz = utc_switch()


def save(app: str) -> None:
    """Store the new credential, then empty the field: it never stays in the page's state."""
    token = st.session_state.get(f"token_{app}", "")
    st.session_state[f"token_{app}"] = ""
    try:
        tested = save_connection(ws, actor(), app, st.session_state.get(f"url_{app}", "").strip(), token.strip())
        st.session_state["connections_saved"] = (app, *tested)
    except (CredentialError, Forbidden) as exc:
        st.session_state["connections_error"] = str(exc)


st.title("Connections")
st.caption("Credentials are stored encrypted and only ever shown masked.")
if found := st.session_state.pop("connections_saved", None):
    saved, connected, answer = found
    if connected:
        st.success("Saved and tested: connected. Replay the runs that failed meanwhile: the Runs page "
                   "re-triggers them in bulk.")
    elif answer.startswith("Refused"):
        st.error(f"Saved, but {label(saved)} refused it when tested:")
    else:
        st.warning(f"Saved, not tested ({label(saved)} did not answer a test call): it shows as Untested until a "
                   "call succeeds.")
    if not connected:
        st.text(answer)  # the app's own reason phrase: text
    uses = [wf.id for wf in defs.values() if saved in wf.apps]
    st.page_link(pages.RUNS, label=f"Unresolved failures of the workflows that use {label(saved)}", icon="🔁",
                 query_params=RunsQuery(workflows=tuple(uses), unresolved=True).link())
if problem := st.session_state.pop("connections_error", None):
    st.error(problem)

states, failures = connection_states(ws)
st.dataframe(
    {
        "App": [s.app for s in states],
        "Base URL": [s.base_url for s in states],
        "Credential": [CREDENTIAL_LABELS[s.credential]
                       for s in states],
        "Token": [s.masked for s in states],
        "Last successful call": [display.local_time(s.last_success_at, tz) for s in states],
        "Auth failures (7 d)": [failures.get(s.app, (0, None))[0] for s in states],
    },
    hide_index=True, width="stretch",
    column_config={"Auth failures (7 d)": st.column_config.NumberColumn(format=display.COUNT_FORMAT)},
)

for s in states:
    count = failures.get(s.app, (0, None))[0]
    icon = CREDENTIAL_LABELS[s.credential].split()[0]
    with st.expander(f"{icon} {label(s.app)}"):
        st.text(f"{s.app} · {s.base_url} · credential {s.credential.lower()} {s.masked}")
        if s.base_url.startswith(SANDBOX_URL):
            st.caption("A demo app, answered inside Fourgent. It accepts the token shown here "
                       "(demo tokens guard nothing):")
            st.code(demo_token(s.app), language=None)
        if count:  # exactly the runs counted: failed with auth at this app's step, in the last 7 days
            st.page_link(pages.RUNS, label=f"{count:,} run(s) failed with auth in the last 7 days", icon="🔎",
                         query_params=RunsQuery(statuses=("failed",), kinds=("auth",), apps=(s.app,),
                                                range="7d").link())
        if not may(Action.CONNECTION_REPLACE):
            st.caption(needs(Action.CONNECTION_REPLACE))
            continue
        with st.form(f"reconnect_{s.app}"):
            st.text_input("Base URL", value=s.base_url, key=f"url_{s.app}")
            st.text_input("New credential", type="password", key=f"token_{s.app}")
            st.form_submit_button("Reconnect / update credential", on_click=save, args=(s.app,))
        if st.button("Test connection", key=f"test_{s.app}"):
            st.session_state["connections_tested"] = (s.app, *check_connection(ws, actor(), s.app))
            st.rerun()  # the table above shows the new state
        tested = st.session_state.get("connections_tested")
        if tested and tested[0] == s.app:
            st.text(("✅ " if tested[1] else "❌ ") + tested[2])  # the server's reason phrase: text
