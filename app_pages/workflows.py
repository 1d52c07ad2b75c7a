"""Workflows: each integration, its steps, paused or active, and how it has been doing lately."""

from __future__ import annotations

import json

import streamlit as st

from fourgent import display
from fourgent.access import Action, Forbidden
from fourgent.filters import RunsQuery
from fourgent.overview import SPARK_DAYS
from fourgent.pauses import paused, set_paused
from fourgent.workspace import definitions
from ui import pages
from ui.auth import actor, may, needs
from ui.text import label
from ui.workspace import workspace
from ui.zone import utc_switch

ws = workspace()
ws.refresh()
tz = utc_switch()
defs = definitions(ws)
health = ws.store.workflow_health(zone=tz.key)
stopped = paused(ws.store)

st.title("Workflows")
st.caption(f"Runs in the last 24 hours and 7 days, each once as it first ran (re-triggers left out); the sparkline "
           f"is runs per day in {tz.key} over the last {SPARK_DAYS} days. A paused workflow is not re-triggered, "
           "one by one or in bulk.")

# Workflows with runs, then any defined workflow that has not run yet.
rows = health.to_dicts()
seen = {r["workflow_id"] for r in rows}
for wf in defs.values():
    if wf.id not in seen:
        rows.append({"workflow_id": wf.id, "source": wf.source, "destination": wf.destination, "last_run": None,
                     "runs_24h": 0, "runs_7d": 0, "failed_7d": 0, "failure_rate_7d": None,
                     "daily": [0] * SPARK_DAYS})

st.dataframe(
    {
        "Workflow": [f"{r['source']} → {r['destination']}" for r in rows],
        "State": ["⏸️ Paused" if r["workflow_id"] in stopped else "▶️ Active" for r in rows],
        "Runs 24 h": [r["runs_24h"] for r in rows],
        "Runs 7 d": [r["runs_7d"] for r in rows],
        "Failure rate 7 d": [display.percent(r["failure_rate_7d"]) for r in rows],
        "Last run": [display.ago(r["last_run"]) for r in rows],
        f"Runs per day ({SPARK_DAYS} d)": [r["daily"] for r in rows],
    },
    hide_index=True, width="stretch",
    column_config={f"Runs per day ({SPARK_DAYS} d)": st.column_config.BarChartColumn(y_min=0, width="medium"),
                   "Workflow": st.column_config.TextColumn(width="large"),
                   "Runs 24 h": st.column_config.NumberColumn(format=display.COUNT_FORMAT),
                   "Runs 7 d": st.column_config.NumberColumn(format=display.COUNT_FORMAT)},
)


def toggle(workflow_id: str) -> None:
    active = st.session_state[f"active_{workflow_id}"]
    try:
        set_paused(ws.store, actor(), workflow_id, not active)
    except Forbidden as exc:
        st.session_state["workflows_refused"] = str(exc)


if refused := st.session_state.pop("workflows_refused", None):
    st.error(refused)
for r in rows:
    wf_id = r["workflow_id"]
    definition = defs.get(wf_id)
    state = "⏸️" if wf_id in stopped else "▶️"
    with st.expander(f"{state} {label(r['source'])} → {label(r['destination'])}"):
        cols = st.columns([3, 2, 2], vertical_alignment="center")
        cols[0].text(f"ID: {wf_id}")
        cols[1].page_link(pages.RUNS, label="Its runs", icon="📋", query_params=RunsQuery(workflows=(wf_id,)).link())
        cols[2].page_link(pages.RUNS, label="Its unresolved failures", icon="🔁",
                          query_params=RunsQuery(workflows=(wf_id,), unresolved=True).link())
        st.toggle("Active (re-triggers allowed)", value=wf_id not in stopped, key=f"active_{wf_id}",
                  on_change=toggle, args=(wf_id,), disabled=not may(Action.PAUSE),
                  help=None if may(Action.PAUSE) else needs(Action.PAUSE))
        if wf_id in stopped:
            at, by = stopped[wf_id]
            st.text(f"Paused {display.local_time(at, tz)}" + (f" by {by}" if by else ""))  # a name: text
        st.text(f"Last run {display.local_time(r['last_run'], tz)} · {r['runs_7d']:,} runs in 7 days, "
                f"{r['failed_7d']:,} failed")
        if definition is None:
            st.text("No definition: runs of this workflow come from the logs only and cannot be re-triggered. "
                    f"Add {wf_id}.json under the data folder's workflows/ to replay them.")  # an ID from a log
            continue
        source_file = definition.path
        assert source_file is not None  # definitions() reads every definition from its file
        st.text(f"Trigger: {definition.source}. Steps, from {source_file.name}:")
        st.dataframe(
            {"#": list(range(1, len(definition.steps) + 1)), "Step": [s.name for s in definition.steps],
             "App": [s.app for s in definition.steps], "Call": [f"{s.method} {s.path}" for s in definition.steps]},
            hide_index=True, width="stretch")
        p = definition.retry
        st.text(f"Required fields: {', '.join(definition.required) or 'none'} · "
                f"skip when: {json.dumps(definition.skip_if, ensure_ascii=False) if definition.skip_if else 'never'}")
        st.text(f"Retries: up to {p.attempts} attempts per step, backoff from {p.backoff_initial_s:g} s to "
                f"{p.backoff_max_s:g} s, {p.timeout_s:g} s per call, {p.deadline_s:g} s per run")
        with st.popover("Definition (JSON)"):
            st.text(str(source_file))
            st.code(source_file.read_text(encoding="utf-8"), language="json")
