"""The Runs page's bulk re-trigger: the count of what it would take, its confirmation, progress and summary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import streamlit as st

from fourgent import display
from fourgent.access import Action
from fourgent.filters import RunFilter, RunsQuery
from fourgent.pauses import without_paused
from fourgent.retrigger import BULK_CAP, BULK_CONCURRENCY, CAVEAT, BulkJob
from fourgent.workspace import BulkPlan, Workspace, bulk_plan, retrigger
from ui import pages
from ui.auth import actor, may, needs
from ui.text import label
from ui.workspace import workspace
from ui.zone import browser


@dataclass(frozen=True)
class BulkAsk:
    """An open bulk confirmation: how many the button counted, and when the user saw them."""

    count: int
    opened: datetime


def bulk_bar(ws: Workspace, f: RunFilter, query: RunsQuery) -> None:
    """"Re-trigger the N failed runs matching these filters" — or the bulk under way, or its summary."""
    if st.session_state.get("bulk_job"):
        st.fragment(run_every=0.5)(bulk_progress)()  # polls the background job; nothing else reruns
        return
    active, held = without_paused(ws.store, f)
    if held:  # workflow IDs come from logs: text
        st.text(f"Paused, so left out of re-triggers: {', '.join(held)} (resume on the Workflows page).")
    n = ws.store.unresolved_count(active) if active else 0
    if n:
        st.button(f"↻ Re-trigger the {n:,} unresolved failed run{'s' if n != 1 else ''} matching these filters",
                  on_click=ask_bulk, args=(n,), key="bulk_retrigger", disabled=not may(Action.RETRIGGER_BULK),
                  help="Failed runs whose latest re-trigger did not finish (or that were never re-triggered); "
                       "each is replayed once with its original payload."
                       + ("" if may(Action.RETRIGGER_BULK) else " " + needs(Action.RETRIGGER_BULK)))
    ask: BulkAsk | None = st.session_state.get("confirm_bulk")
    if ask and active:
        bulk_dialog(active, ask, query.describe(dict(ws.store.workflows()), browser()), query.to_string())


def ask_bulk(n: int) -> None:
    st.session_state["confirm_bulk"] = BulkAsk(n, datetime.now(UTC))


def close_bulk() -> None:
    st.session_state.pop("confirm_bulk", None)


@st.dialog("Re-trigger these failed runs?", on_dismiss=close_bulk)
def bulk_dialog(f: RunFilter, ask: BulkAsk, described: str, link: str) -> None:
    """`link`: the Runs page's query string, recorded in the audit with the count."""
    n = ask.count
    st.text(f"Of: {described}")  # names from the logs: text
    st.text(f"{n:,} unresolved failed run{'s' if n != 1 else ''} match these filters.")
    ws = workspace()
    chosen = f.bulk_selection()
    plan = bulk_plan(ws, chosen) if chosen else BulkPlan({}, 0)
    for app, held in sorted(plan.waiting.items()):
        st.text(f"{held:,} wait for {app} to be reconnected: its connection is still broken, so they would "
                "fail again.")
        st.page_link(pages.CONNECTIONS, label=f"Open Connections ({label(app)})", icon="🔌")
    if plan.unfixable:
        st.text(f"{plan.unfixable:,} need an edited payload: their payload lacks the field their validation "
                "named, and a re-trigger sends the same payload.")
    include = bool(plan.left_out) and st.checkbox(f"Include these {plan.left_out:,} anyway", key="bulk_include")
    n = n if include else max(0, n - plan.left_out)
    take = min(n, BULK_CAP)
    if n > BULK_CAP:
        st.text(f"This re-triggers the newest {BULK_CAP:,}; run it again for the rest.")
    st.text(CAVEAT)
    st.text(f"{BULK_CONCURRENCY} runs at a time; you can cancel while it runs (runs already started finish).")
    st.text(f"Recorded as re-triggered by {actor().who}.")
    allowed = may(Action.RETRIGGER_BULK)
    if st.button(f"Re-trigger {take:,} run{'s' if take != 1 else ''}", type="primary", disabled=not allowed,
                 help=None if allowed else needs(Action.RETRIGGER_BULK)):
        if not st.session_state.get("bulk_job"):  # a double click starts one bulk, not two
            ws = workspace()
            # The runs are chosen now, not when the dialog opened: anything resolved meanwhile is left out.
            selection = f.bulk_selection()
            skipped = () if include else tuple(plan.waiting)
            ids = ws.store.select_ids(selection, limit=BULK_CAP, waiting_apps=skipped,
                                      unfixable=not include) if selection else []
            who = actor()
            st.session_state["bulk_job"] = BulkJob(
                lambda run_ids, **k: retrigger(ws, who, run_ids, bulk_filter=link, **k), ids,
                concurrency=BULK_CONCURRENCY, since=ask.opened)
        close_bulk()
        st.rerun()


def bulk_progress() -> None:
    job: BulkJob | None = st.session_state.get("bulk_job")
    if job is None:
        st.rerun()
        return
    with st.container(border=True):
        if not job.finished:
            label = "Cancelling: runs under way finish…" if job.cancelled else "Re-triggering…"
            st.progress(job.done / max(job.total, 1), text=f"{label} {job.done:,} of {job.total:,}")
            st.button("Cancel", on_click=job.cancel, disabled=job.cancelled, key="bulk_cancel")
            return
        if job.error:
            st.error("The bulk re-trigger stopped with an error:")
            st.code(job.error, language=None)
        elif job.result is not None:
            r = job.result
            outcomes = ", ".join(f"{count:,} {display.status_label(status)}"
                                 for status, count in sorted(r.outcomes.items())) or "no runs"
            st.text(f"Re-triggered {sum(r.outcomes.values()):,} of {r.requested:,} in {r.seconds:.1f} s: {outcomes}.")
            if r.cancelled:
                st.text(f"Cancelled: {r.cancelled:,} not started.")
            if r.refused:
                st.text(f"Not re-triggered: {len(r.refused):,}")
                st.dataframe({"Run": list(r.refused), "Why": list(r.refused.values())}, hide_index=True,
                             height=min(38 + 35 * len(r.refused), 250))
            if r.apps_refused:
                st.text("Still refused (reconnect in Connections): " + ", ".join(sorted(r.apps_refused)))
        if st.session_state.get("bulk_seen") is not job:  # the table under this shows the new runs
            st.session_state["bulk_seen"] = job
            st.rerun(scope="app")
        st.button("Dismiss", on_click=lambda: st.session_state.pop("bulk_job", None), key="bulk_dismiss")
