"""The Runs page's bulk actions: re-trigger (or re-run from the failed step), mark handled, cancel; each with the
count of what it would take, its confirmation, progress and summary."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

import streamlit as st

from fourgent import cancel, display, handled
from fourgent.access import Action, Forbidden
from fourgent.cancel import IN_FLIGHT, LIVE
from fourgent.filters import RunFilter, RunsQuery
from fourgent.pauses import without_paused
from fourgent.retrigger import BULK_CAP, BULK_CONCURRENCY, CAVEAT, BulkJob
from fourgent.workspace import BulkPlan, Workspace, bulk_plan, retrigger
from ui import pages
from ui.auth import actor, may, needs
from ui.text import label, refused
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
    in_flight = replace(f, statuses=tuple(s for s in f.statuses or IN_FLIGHT if s in IN_FLIGHT))
    running = ws.store.count(in_flight) if in_flight.statuses else 0
    if n or running:
        row = st.container(horizontal=True, vertical_alignment="center", gap="small")
        if n:
            row.button(f"↻ Re-trigger the {n:,} unresolved failed run{'s' if n != 1 else ''} matching these filters",
                       on_click=ask_bulk, args=(n,), key="bulk_retrigger", disabled=not may(Action.RETRIGGER_BULK),
                       help="Failed runs whose latest re-trigger did not finish (or that were never re-triggered), "
                            "neither handled nor cancelled; each is replayed once with its original payload, or "
                            "re-run from its failed step."
                            + ("" if may(Action.RETRIGGER_BULK) else " " + needs(Action.RETRIGGER_BULK)))
        with row.popover("More bulk actions"):
            st.button(f"✋ Mark the {n:,} unresolved failures handled…", key="bulk_handled", disabled=not n
                      or not may(Action.HANDLED), on_click=ask_other, args=("handled", n),
                      help=None if may(Action.HANDLED) else needs(Action.HANDLED))
            st.button(f"⏹ Cancel the {running:,} running or pending runs…", key="bulk_cancel_runs",
                      disabled=not running or not may(Action.CANCEL_BULK), on_click=ask_other,
                      args=("cancel", running), help=None if may(Action.CANCEL_BULK) else needs(Action.CANCEL_BULK))
    described = query.describe(dict(ws.store.workflows()), browser())
    ask: BulkAsk | None = st.session_state.get("confirm_bulk")
    if ask and active:
        bulk_dialog(active, ask, described, query.to_string())
    other: OtherAsk | None = st.session_state.get(OTHER_KEY)
    if other and other.kind == "handled" and active:
        handled_dialog(active, other, described, query.to_string())
    elif other and other.kind == "cancel":
        cancel_dialog(in_flight, other, described, query.to_string())
    if said := st.session_state.get(OTHER_DONE_KEY):
        with st.container(border=True):
            st.text(said)
            st.button("Dismiss", key="bulk_other_dismiss", on_click=lambda: st.session_state.pop(OTHER_DONE_KEY))


OTHER_KEY = "confirm_bulk_other"
OTHER_DONE_KEY = "bulk_other_done"


@dataclass(frozen=True)
class OtherAsk:
    """An open confirmation of a bulk cancel or handled mark: how many the button counted."""

    kind: Literal["cancel", "handled"]
    count: int
    nonce: str


def ask_other(kind: Literal["cancel", "handled"], n: int) -> None:
    st.session_state[OTHER_KEY] = OtherAsk(kind, n, uuid.uuid4().hex)


def close_other() -> None:
    st.session_state.pop(OTHER_KEY, None)


def _first_use(a: OtherAsk) -> bool:
    if st.session_state.get("bulk_other_used") == a.nonce:
        return False
    st.session_state["bulk_other_used"] = a.nonce
    return True


@st.dialog("Mark these failures handled?", on_dismiss=close_other)
def handled_dialog(f: RunFilter, a: OtherAsk, described: str, link: str) -> None:
    st.text(f"Of: {described}")
    st.text(f"{a.count:,} unresolved failed run{'s' if a.count != 1 else ''} match these filters. Marked handled, "
            "they keep their Failed status, leave the unresolved failures and bulk re-triggers, and each can be "
            "undone on its page.")
    if a.count > handled.BULK_CAP:
        st.text(f"This marks the newest {handled.BULK_CAP:,}; run it again for the rest.")
    reason = st.text_area("Why they need no replay (required)", max_chars=handled.MAX_REASON, key=f"why_{a.nonce}")
    st.text(f"Recorded as marked by {actor().who}.")
    allowed = may(Action.HANDLED)
    if st.button(f"Mark {min(a.count, handled.BULK_CAP):,} handled", type="primary",
                 disabled=not allowed or not reason.strip(), help=None if allowed else needs(Action.HANDLED)):
        if _first_use(a):
            ws = workspace()
            chosen = f.bulk_selection()
            ids = ws.store.select_ids(chosen, limit=handled.BULK_CAP) if chosen else []
            try:
                r = handled.mark(ws.store, actor(), ids, reason, bulk_filter=link)
            except (handled.HandledRejected, Forbidden) as exc:
                refused(str(exc))
                return
            st.session_state[OTHER_DONE_KEY] = (
                f"Marked {len(r.marked):,} of {a.count:,} handled."
                + (f" {r.not_marked:,} changed meanwhile and were left as they are." if r.not_marked else ""))
        close_other()
        st.rerun()


@st.dialog("Cancel these runs?", on_dismiss=close_other)
def cancel_dialog(f: RunFilter, a: OtherAsk, described: str, link: str) -> None:
    ws = workspace()
    ids = ws.store.select_ids(f, limit=cancel.CANCEL_CAP)
    here = LIVE.live(ids)
    st.text(f"Of: {described}")
    st.text(f"{len(ids):,} running or pending run{'s' if len(ids) != 1 else ''} match these filters; {len(here):,} "
            "are run by this dashboard and can be cancelled.")
    if len(ids) > len(here):
        st.text(f"{len(ids) - len(here):,} cannot be: written by an outside engine (only it can stop them) or "
                "interrupted.")
    st.text(f"Each stops before its next step or attempt (at once when waiting to retry) and ends Failed, kind "
            f"cancelled: “Cancelled by {actor().who}”.")
    allowed = may(Action.CANCEL_BULK)
    if st.button(f"Cancel {len(here):,} run{'s' if len(here) != 1 else ''}", type="primary",
                 disabled=not allowed or not here, help=None if allowed else needs(Action.CANCEL_BULK)):
        if _first_use(a):
            try:
                r = cancel.cancel(ws.store, actor(), ids, bulk_filter=link)
            except Forbidden as exc:
                refused(str(exc))
                return
            bar = st.progress(0.0, text="Cancelling…")
            ended, started = 0, time.monotonic()
            while time.monotonic() - started < cancel.SETTLE_SECONDS:
                ended = len(r.cancelled) - len(LIVE.live(r.cancelled))
                bar.progress(ended / max(len(r.cancelled), 1), text=f"Cancelling… {ended:,} of {len(r.cancelled):,} "
                             "ended")
                if ended == len(r.cancelled):
                    break
                time.sleep(0.05)
            took = time.monotonic() - started
            ws.ingest_logs()
            st.session_state[OTHER_DONE_KEY] = (
                f"Cancelled {len(r.cancelled):,} of {len(ids):,}: {ended:,} ended in {took:.1f} s."
                + (f" {len(r.refused):,} could not be cancelled from here." if r.refused else ""))
        close_other()
        st.rerun()


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
    how = st.radio("How", ("replay", "from step"), key="bulk_how", horizontal=True,
                   format_func={"replay": "Replay each from its start",
                                "from step": "Re-run each from its failed step"}.__getitem__)
    if how == "from step":
        st.text("Each run's steps before the one it failed at are reused from its recorded outputs (their apps are "
                "not called again); a run whose earlier outputs were not recorded is refused and listed.")
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
                lambda run_ids, **k: retrigger(ws, who, run_ids, bulk_filter=link, from_step=how == "from step",
                                               **k), ids,
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
