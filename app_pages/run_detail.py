"""Run details (?id=<run id>): what happened, the step that failed and why, the steps, payload and notes."""

from __future__ import annotations

import html
import json

import plotly.graph_objects as go
import streamlit as st

from fourgent import comments, detail, display, handled
from fourgent.access import Action, Forbidden
from fourgent.spec import ERROR_KINDS
from ui import actions, pages
from ui.auth import actor, may, needs
from ui.dialogs import CAVEAT, ask_retrigger, retrigger_dialog_if_asked, retrigger_outcome
from ui.text import literal
from ui.workspace import workspace
from ui.zone import utc_switch

ws = workspace()
run_id = st.query_params.get("id", "")
tz = utc_switch()

if not run_id:
    st.title("Run details")
    st.info("Open a run from the Workflow Runs table, or add ?id=<run id> to this page's address.", icon="🔍")
    st.page_link(pages.RUNS, label="Back to Workflow Runs", icon="📋")
    st.stop()

ws.refresh()
found = detail.get(ws.store, run_id)
if found is None:
    st.title("Run details")
    st.warning("There is no run with this ID (it may not have been read from the logs yet):", icon="🔍")
    st.code(run_id, language=None)
    st.page_link(pages.RUNS, label="Back to Workflow Runs", icon="📋")
    st.stop()

run = found.run
st.page_link(pages.RUNS, label="Workflow Runs", icon=":material/arrow_back:",
             query_params=st.session_state.get("runs_url") or None)
st.title("Run details")
latest = found.retriggered_as[-1] if found.retriggered_as else None
resolved = run["status"] == "failed" and latest is not None and latest["status"] == "finished"
mark = handled.of(ws.store, run_id) if run["status"] == "failed" else None
if resolved and latest:  # what matters first: this failure needs nothing more
    by = f" (re-triggered by {literal(latest['by'])})" if latest["by"] else ""
    st.success(f"Resolved by {literal(latest['id'])}{by} at {display.local_time(latest['started_at'], tz)}: "
               "its replay finished. Nothing more to do for this run.", icon="✅")
elif mark:
    st.success(f"Handled by {literal(mark.by)} at {display.local_time(mark.at, tz)}, without a replay. "
               "Nothing more to do for this run. Why:", icon="✋")
    st.text(mark.reason)
elif run["error_kind"] == "cancelled":
    st.info("Cancelled on purpose: not an unresolved failure. Re-trigger it if it should run after all.", icon="⏹")

# ---------------------------------------------------------------- header
with st.container(border=True):
    cols = st.columns([3, 3, 2])
    with cols[0]:
        st.caption("Reference")
        st.text(display.visible(display.reference(run["reference"])))
        st.caption("Run ID")
        st.code(display.visible(run["id"]), language=None)
    with cols[1]:
        st.caption("Workflow")
        st.text(display.visible(run["workflow"]))
        st.caption("Status")
        st.text(display.status_label(run["status"]))
    with cols[2]:
        st.caption(f"Started ({tz.key})")
        st.text(f"{display.local_time(run['started_at'], tz)} · {display.ago(run['started_at'])}")
        st.caption(f"Finished ({tz.key})")
        st.text(display.local_time(run["finished_at"], tz))
        st.caption("Duration · attempt")
        st.text(f"{display.duration(run['duration_ms'])} · attempt {run['attempt']}")

# ---------------------------------------------------------------- why it failed
if run["status"] == "failed":
    step = found.failed_step
    with st.container(border=True):
        # No failed step: the engine refused the run before any step (a validation of its payload), or the
        # log does not say which step failed.
        where = (f"step {step['step_index'] + 1} of {len(found.steps)}" if step
                 else "before any step ran" if not found.steps else "an unnamed step")
        kind = run["error_kind"] if run["error_kind"] in ERROR_KINDS else "other"  # log text stays out of Markdown
        st.subheader(f"❌ Failed {'' if where.startswith('before') else 'at '}{where} · {kind} error")
        if run["error_kind"] and kind == "other":
            st.text(f"Error kind: {run['error_kind']}")
        if step:
            st.text(f"{step['name']}" + (f" ({step['app']})" if step["app"] else "")
                    + f" · {step['attempts']} attempt{'s' if step['attempts'] != 1 else ''}")
        st.code(display.visible(run["error_message"] or ""), language=None, wrap_lines=True)
        if not resolved and not mark and run["error_kind"] != "cancelled":
            st.caption("What to do next")
            st.text(detail.next_step(found))
        if run["error_kind"] == "auth":
            st.page_link(pages.CONNECTIONS, label="Open Connections", icon="🔌")
elif run["status"] == "skipped" and run["skip_reason"]:
    with st.container(border=True):
        st.subheader("⏭️ Skipped")
        st.text(f"Condition not met: {run['skip_reason']}")

# ---------------------------------------------------------------- lineage
if found.retriggered_from or found.retriggered_as:
    with st.container(border=True):
        st.caption("Lineage")
        if found.retriggered_from:
            parent = found.retriggered_from
            mode = parent.get("mode") or "replay"
            how = ("Re-triggered from" if mode == "replay" else "Edited replay of" if mode == "edited"
                   else f"Re-run from step {parent.get('from_step')} of")
            st.page_link(pages.RUN, label=f"{how} {literal(parent['id'])}", icon="↩️",
                         query_params={"id": parent["id"]})
            original = display.status_label(parent["status"]) if parent["status"] else "not in the store"
            st.text(f"Original run: {original}")
            if parent["by"] or parent["at"]:
                st.text(f"Re-triggered by {parent['by'] or 'someone unnamed'} at "
                        f"{display.local_time(parent['at'], tz)}")
            if changes := actions.diff_lines(found):
                st.caption("The payload was edited: what changed")
                st.code("\n".join(changes), language=None, wrap_lines=True)
        for child in found.retriggered_as:
            st.page_link(pages.RUN, label=f"Re-triggered as {literal(child['id'])}", icon="↪️",
                         query_params={"id": child["id"]})
            who = f" by {child['by']}" if child["by"] else ""
            how = display.RETRIGGER_MODE_LABELS.get(child.get("mode") or "replay", "re-trigger")
            if child.get("mode") == "from step":
                how += f" {child.get('from_step')}"
            st.text(f"{display.status_label(child['status'])} · {how} · started "
                    f"{display.local_time(child['started_at'], tz)}" + who)

if run["retrigger_claim"]:
    with st.container(border=True):
        st.caption("Lineage")
        st.text(f"This run's log line says it re-triggered {run['retrigger_claim']}, but this dashboard did not "
                "start it, so it is not counted as a re-trigger and resolves nothing.")

# ---------------------------------------------------------------- re-trigger and the other actions
retrigger_outcome(run["id"])
actions.outcome(run["id"])
# The primary action only where a replay can help: not once resolved or handled, nor when its payload lacks a
# field (then re-triggering with changes is the way).
helps = (run["status"] == "failed" and not resolved and not mark and run["error_kind"] != "cancelled"
         and detail.unfixable_field(found) is None)
with st.container(horizontal=True, gap="small"):
    st.button("↻ Re-trigger this run", type="primary" if helps else "secondary",
              help=CAVEAT if may(Action.RETRIGGER) else needs(Action.RETRIGGER), disabled=not may(Action.RETRIGGER),
              on_click=ask_retrigger, args=(run["id"], run["retrigger_of"]))
    actions.menu(found, key="detail")
retrigger_dialog_if_asked()
actions.dialog_if_asked()

# ---------------------------------------------------------------- steps
st.subheader(f"Steps ({len(found.steps)})")
if found.steps:
    timed = [s for s in found.steps if s["started_at"] is not None]
    if timed:
        origin = min(s["started_at"] for s in timed)
        colors = {"finished": "#16a34a", "failed": "#dc2626", "running": "#2563eb", "pending": "#ca8a04",
                  "skipped": "#9ca3af"}
        # Plotly draws a small set of HTML tags in text: escape what came from the log.
        labels = [html.escape(f"{s['step_index'] + 1}. {s['name']}") for s in timed]
        fig = go.Figure(go.Bar(
            y=labels, x=[max((s["duration_ms"] or 0), 1) for s in timed],
            base=[(s["started_at"] - origin).total_seconds() * 1000 for s in timed],
            orientation="h", marker_color=[colors.get(s["status"], "#6b7280") for s in timed],
            text=[display.duration(s["duration_ms"]) for s in timed], textposition="auto",
            hovertemplate="%{y}<br>%{text}<extra></extra>",
        ))
        fig.update_layout(height=60 + 38 * len(timed), margin={"l": 10, "r": 10, "t": 10, "b": 30},
                          xaxis_title="ms from the run's start", yaxis={"autorange": "reversed"},
                          showlegend=False)
        st.plotly_chart(fig, width="stretch", config={"displayModeBar": False})
    reused_from, reused = found.reused
    for s in found.steps:
        label = (f"Step {s['step_index'] + 1} · {display.status_label(s['status'])} · "
                 f"{display.duration(s['duration_ms'])} · {s['attempts']} attempt{'s' if s['attempts'] != 1 else ''}")
        if s["step_index"] < reused:  # not called: its recorded output was taken over
            label = (f"Step {s['step_index'] + 1} · {display.status_label(s['status'])} · reused from "
                     f"{literal(reused_from or 'the original')} (not called again)")
        with st.expander(label, expanded=s["status"] == "failed"):
            st.text(s["name"] + (f" — {s['app']}" if s["app"] else ""))
            if s["error"]:
                st.code(s["error"], language=None, wrap_lines=True)
            if tries := found.attempts_of(s["step_index"]):
                st.dataframe({"Attempt": [str(a.get("attempt", "")) for a in tries],
                              "Started": [str(a.get("started_at", "")) for a in tries],
                              "Took": [display.duration(a["duration_ms"])
                                       if isinstance(a.get("duration_ms"), int | float) else "—" for a in tries],
                              "Answer": [str(a.get("status_code", "—")) for a in tries],
                              "Outcome": [str(a.get("outcome", "")) for a in tries]},
                             hide_index=True, width="stretch")
            io_cols = st.columns(2)
            for col, key in zip(io_cols, ("input", "output"), strict=True):
                with col:
                    st.caption(key.capitalize())
                    value = display.loads(s[key])
                    if isinstance(value, dict | list):
                        st.json(value, expanded=1)
                    else:  # st.json draws only objects and arrays
                        st.code(json.dumps(value, ensure_ascii=False), language="json")
else:
    st.text("No step has run yet.")

# ---------------------------------------------------------------- payload, result, raw record
payload_col, result_col = st.columns(2)
with payload_col:
    st.subheader("Trigger payload")
    st.caption("A re-trigger replays exactly this payload.")
    st.code(json.dumps(display.loads(run["trigger_payload"] or "{}"), indent=2, ensure_ascii=False), language="json")
with result_col:
    st.subheader("Result")
    st.code(json.dumps(display.loads(run["result"]), indent=2, ensure_ascii=False),
            language="json")
with st.expander("Raw record (with any fields the spec does not name)"):
    if found.source_file:
        st.text(f"Latest snapshot read from {found.source_file}, line {found.source_line}")
    st.json(display.bounded(found.record()), expanded=2)

# ---------------------------------------------------------------- comments
st.subheader("Comments")
if may(Action.COMMENT):
    with st.form("comment", clear_on_submit=True):
        body = st.text_area("Add a note for whoever looks at this run next", max_chars=comments.MAX_BODY)
        st.text(f"Signed as {actor().who}.")
        if st.form_submit_button("Add comment", type="primary"):
            try:
                comments.add(ws.store, actor(), run["id"], body)
            except (comments.CommentRejected, Forbidden) as exc:
                st.error(str(exc))
notes = comments.for_run(ws.store, run["id"])
if not notes:
    st.text("No comments yet.")
for note in notes:
    with st.container(border=True):
        st.caption(f"{display.local_time(note.created_at, tz)} · {display.ago(note.created_at)}")
        st.text(f"{display.visible(note.author)}:")
        st.text(display.visible(note.body))
