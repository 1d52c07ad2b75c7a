"""Dialogs every page that shows a run uses: re-trigger (with its confirmation and outcome) and comment."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from fourgent import cancel, comments, display
from fourgent.access import Action, Forbidden
from fourgent.retrigger import CAVEAT, BulkJob
from fourgent.workspace import retrigger
from ui import pages
from ui.auth import actor, may, needs
from ui.workspace import workspace

__all__ = ["CAVEAT", "ask_retrigger", "comment_dialog", "retrigger_dialog_if_asked", "retrigger_outcome",
           "start_single"]

SINGLE_KEY = "retrigger_jobs"
CANCEL_SAID_KEY = "retrigger_cancel_said"


# ---------------------------------------------------------------- re-trigger, wherever a run is shown

@dataclass(frozen=True)
class RetriggerAsk:
    """An open re-trigger confirmation: which run, since when, and a nonce a double click cannot reuse."""

    run: str
    nonce: str
    opened: datetime
    original: str | None = None  # the run is itself a re-trigger of this one


@dataclass(frozen=True)
class RetriggerDone:
    """What this session's last single re-trigger gave: the new run and its status, or why not."""

    of: str
    new: str | None
    refused: str | None
    status: str | None


def ask_retrigger(run_id: str, original: str | None = None) -> None:
    """Open the confirmation (a button's on_click); it stays open across its own reruns until answered."""
    st.session_state["confirm_retrigger"] = RetriggerAsk(run_id, uuid.uuid4().hex, datetime.now(UTC), original)


def _close_retrigger() -> None:
    st.session_state.pop("confirm_retrigger", None)


@st.dialog("Re-trigger this run?", on_dismiss=_close_retrigger)
def _retrigger_dialog(ask: RetriggerAsk) -> None:
    st.text(f"Run {ask.run}")
    st.text(CAVEAT)
    if ask.original:
        st.text(f"This run is itself a re-trigger of {ask.original}: the replay uses that run's payload and is "
                "recorded as another re-trigger of it, so it shows as resolved when this one finishes.")
    st.text(f"Recorded as re-triggered by {actor().who}.")
    if st.button("Re-trigger", type="primary", disabled=not may(Action.RETRIGGER), help=None if may(
            Action.RETRIGGER) else needs(Action.RETRIGGER)):
        # A double click reruns this with the same confirmation: it has been used, so nothing more happens.
        if st.session_state.get("retrigger_used") != ask.nonce:
            st.session_state["retrigger_used"] = ask.nonce
            start_single(ask.run, ask.opened)
        _close_retrigger()
        st.rerun()


def single_jobs() -> dict[str, BulkJob]:
    """This session's single re-triggers under way or not yet shown, by the run they replay (one per run: a
    second one started elsewhere does not hide the first)."""
    jobs: dict[str, BulkJob] = st.session_state.setdefault(SINGLE_KEY, {})
    return jobs


def start_single(run_id: str, since: datetime, *, payload: dict[str, Any] | None = None,
                 from_step: bool = False) -> None:
    """Start one re-trigger of `run_id` as this session's actor; its outcome shows where the run is shown."""
    ws, who = workspace(), actor()
    st.session_state.pop("retriggered", None)
    single_jobs()[run_id] = BulkJob(
        lambda ids, **k: retrigger(ws, who, ids, payload=payload, from_step=from_step, **k), [run_id],
        concurrency=1, since=since)


def _single_progress(run_id: str) -> None:
    job = single_jobs().get(run_id)
    if job is None or job.finished:
        st.rerun(scope="app")  # the page shows the outcome and the new run
        return
    new = job.started.get(run_id)
    with st.container(border=True):
        st.text(f"Re-triggering {run_id}" + (f" as {new}: running…" if new else "…"))
        if new:
            st.button("⏹ Cancel it", key=f"single_cancel_{run_id}", on_click=_cancel_single, args=(new,),
                      disabled=not may(Action.CANCEL), help=None if may(Action.CANCEL) else needs(Action.CANCEL))
        if said := st.session_state.get(CANCEL_SAID_KEY):
            st.text(said)


def _cancel_single(new_run: str) -> None:
    """Its answer in words: a refusal, or a run that had just ended, is said rather than ignored."""
    try:
        r = cancel.cancel(workspace().store, actor(), [new_run])
    except Forbidden as exc:
        st.session_state[CANCEL_SAID_KEY] = str(exc)
        return
    st.session_state[CANCEL_SAID_KEY] = ("Cancel sent: it ends within a second." if r.cancelled
                                         else f"Not cancelled: {r.refused.get(new_run)}")


def retrigger_dialog_if_asked() -> None:
    ask: RetriggerAsk | None = st.session_state.get("confirm_retrigger")
    if ask:
        _retrigger_dialog(ask)


def retrigger_outcome(run_id: str) -> None:
    """What the last re-trigger of `run_id` in this session gave: the new run and its status, or why not;
    while it runs, its progress and a Cancel."""
    job = single_jobs().get(run_id)
    if job is not None:
        if not job.finished:
            st.fragment(run_every=0.5)(_single_progress)(run_id)
            return
        del single_jobs()[run_id]
        st.session_state.pop(CANCEL_SAID_KEY, None)
        if job.error:  # in words: the key cannot read credentials, or a role
            st.session_state["retriggered"] = RetriggerDone(run_id, None, job.error, None)
        elif (r := job.result) is not None:
            st.session_state["retriggered"] = RetriggerDone(
                run_id, r.new_runs.get(run_id), r.refused.get(run_id), next(iter(r.outcomes), None))
    done: RetriggerDone | None = st.session_state.get("retriggered")
    if not done or done.of != run_id:
        return
    if done.refused:
        st.warning("Not re-triggered:", icon="⚠️")
        st.text(done.refused)
        return
    with st.container(border=True):
        st.text(f"Re-triggered {done.of} as {done.new}: {display.status_label(done.status or '')}")
        st.page_link(pages.RUN, label="Open the new run", icon="↪️", query_params={"id": done.new or ""})


@st.dialog("Comment on this run")
def comment_dialog(run_id: str) -> None:
    st.text(f"Run {run_id}")
    body = st.text_area("Comment", max_chars=comments.MAX_BODY, height=160)
    st.text(f"Signed as {actor().who}.")
    if st.button("Add comment", type="primary"):
        try:
            comments.add(workspace().store, actor(), run_id, body)
        except (comments.CommentRejected, Forbidden) as exc:
            st.error(str(exc))
            return
        st.rerun()
