"""Audit: every action that changed something, and every attempt refused, newest first (admins only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import streamlit as st

from fourgent import display, export
from fourgent.access import Action, Role
from ui.auth import actor
from ui.workspace import workspace
from ui.zone import utc_switch

AUDIT_ROWS = 1000  # shown and exported per filter; the `audit` view in Explore holds every entry
SINCE = {"24 hours": timedelta(days=1), "7 days": timedelta(days=7), "30 days": timedelta(days=30), "Any time": None}

st.title("Audit")
if actor().role < Role.ADMIN:  # the page is listed for admins only; a typed URL gets this
    st.error("The audit is for admins.")
    st.stop()
st.caption("Entries are only ever added: nothing here or anywhere in Fourgent edits or deletes one.")
ws = workspace()
tz = utc_switch()
cols = st.columns([3, 2, 2, 2])
who = cols[0].text_input("Who", key="audit_who", placeholder="an email or OS user")
action = cols[1].selectbox("Action", ["Any", *(a.value for a in Action)], key="audit_action")
outcome = cols[2].selectbox("Outcome", ["Any", "ok", "refused", "failed"], key="audit_outcome")
window = cols[3].selectbox("When", list(SINCE), index=1, key="audit_since")
span = SINCE[window]
entries = ws.store.audit_entries(actor=who.strip(), action="" if action == "Any" else action,
                                 outcome="" if outcome == "Any" else outcome,
                                 since=datetime.now(UTC) - span if span else None, limit=AUDIT_ROWS)
frame = pl.DataFrame({
    "When": [display.local_time(e.at, tz) for e in entries],
    "Who": [e.actor for e in entries],
    "Role": [e.role for e in entries],
    "Via": [e.via for e in entries],
    "Action": [e.action for e in entries],
    "Target": [e.target or "" for e in entries],
    "Outcome": [e.outcome for e in entries],
    "Why": [e.message or "" for e in entries],
    "Detail": [export.json_text(e.detail) for e in entries],
}, schema={c: pl.String for c in ("When", "Who", "Role", "Via", "Action", "Target", "Outcome", "Why", "Detail")})
more = f" (the newest {AUDIT_ROWS:,}; the audit view in Explore has them all)" if len(entries) == AUDIT_ROWS else ""
st.text(f"{len(entries):,} entr{'y' if len(entries) == 1 else 'ies'}{more}")
st.dataframe(frame, hide_index=True, width="stretch")
st.download_button("Download as CSV", export.frame_csv(frame), file_name="fourgent-audit.csv", mime="text/csv",
                   disabled=not entries)
