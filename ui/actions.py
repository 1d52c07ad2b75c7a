"""The run actions beyond a plain re-trigger, wherever a run is shown (its page and the Runs page's More options):
re-trigger with changes, re-run from the failed step, cancel, and mark handled (or undo it)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import streamlit as st

from fourgent import cancel, detail, display, handled, replay
from fourgent.access import Action, Forbidden
from fourgent.detail import RunDetail
from fourgent.workspace import definitions
from ui.auth import actor, may, needs
from ui.dialogs import start_single
from ui.text import label, refused
from ui.workspace import workspace

Kind = Literal["edit", "from_step", "cancel", "handled"]
ASK_KEY = "run_action_ask"
DONE_KEY = "run_action_done"


@dataclass(frozen=True)
class ActionAsk:
    """An open action dialog: which action on which run, since when, and a nonce a double click cannot reuse."""

    kind: Kind
    run: str
    nonce: str
    opened: datetime


@dataclass(frozen=True)
class ActionDone:
    """What this session's last cancel or handled mark did to a run, in words."""

    run: str
    said: str
    ok: bool


def ask(kind: Kind, run_id: str) -> None:
    """Open an action's dialog (a button's on_click)."""
    st.session_state[ASK_KEY] = ActionAsk(kind, run_id, uuid.uuid4().hex, datetime.now(UTC))


def _close() -> None:
    st.session_state.pop(ASK_KEY, None)


def _used(a: ActionAsk) -> bool:
    """True the first time a dialog's confirmation is used; a double click gets False."""
    if st.session_state.get("run_action_used") == a.nonce:
        return False
    st.session_state["run_action_used"] = a.nonce
    return True


def _button(label: str, action: Action, *, disabled_why: str | None = None) -> bool:
    allowed = may(action)
    return st.button(label, type="primary", disabled=not allowed or disabled_why is not None,
                     help=disabled_why if allowed else needs(action))


@st.dialog("Re-trigger with changes", width="large", on_dismiss=_close)
def _edit_dialog(a: ActionAsk, found: RunDetail) -> None:
    wf = definitions(workspace()).get(found.run["workflow_id"])
    st.text(f"Run {a.run} · {found.run['workflow']}")
    st.text("Edit the trigger payload; the new run replays it and is recorded as an edited replay of this run, "
            "with what you changed.")
    if wf and wf.required:
        st.text(f"Required by the workflow: {', '.join(wf.required)}")
    text = st.text_area("Trigger payload (JSON)", value=replay.pretty(found.payload), height=300,
                        key=f"edit_payload_{a.nonce}")
    why: str | None = None
    edited = None
    try:
        edited = replay.parse_payload(text, wf)
    except replay.PayloadRejected as exc:
        why = str(exc)
        st.error(why)
    if edited is not None:
        diff = replay.diff_text(found.payload, edited)
        if diff:
            st.caption("Changes against the original payload")
            st.code(diff, language="diff")
        else:
            why = "Nothing is changed yet: edit the payload, or use Re-trigger for a plain replay."
            st.text(why)
    st.text(f"Recorded as re-triggered by {actor().who}.")
    if _button("Re-trigger with these changes", Action.RETRIGGER, disabled_why=why) and edited is not None:
        if _used(a):
            start_single(a.run, a.opened, payload=edited)
        _close()
        st.rerun()


@st.dialog("Re-run from the failed step?", on_dismiss=_close)
def _from_step_dialog(a: ActionAsk, found: RunDetail) -> None:
    plan = found.rerun(definitions(workspace()))
    st.text(f"Run {a.run}")
    if isinstance(plan, str):
        st.warning("It cannot be re-run from a step:", icon="⚠️")
        st.text(plan)
        return
    reused = f"Steps 1–{plan.step} are reused" if plan.step > 1 else "Step 1 is reused" if plan.step else ""
    st.text(f"Re-run from step {plan.step + 1} ({plan.name}): a new run that executes step {plan.step + 1} "
            "onwards with the original payload."
            + (f" {reused} from {a.run} (their recorded outputs): their apps are not called again." if reused
               else " No step before it to reuse."))
    st.text(f"Recorded as re-triggered by {actor().who}.")
    if _button(rerun_label(plan), Action.RETRIGGER):
        if _used(a):
            start_single(a.run, a.opened, from_step=True)
        _close()
        st.rerun()


@st.dialog("Cancel this run?", on_dismiss=_close)
def _cancel_dialog(a: ActionAsk, found: RunDetail) -> None:
    st.text(f"Run {a.run} · {display.status_label(found.run['status'])}")
    why = cancel.cancellable(workspace().store, a.run, found.run["status"])
    if why:
        st.text(f"It cannot be cancelled from here: {why}.")
    else:
        st.text(f"It stops before its next step or attempt (at once if it is waiting to retry) and ends Failed, "
                f"kind cancelled: “Cancelled by {actor().who}”. Steps already done are not undone.")
    if _button("Cancel the run", Action.CANCEL, disabled_why=why):
        if _used(a):
            try:
                r = cancel.cancel(workspace().store, actor(), [a.run])
            except Forbidden as exc:
                refused(str(exc))
                return
            ok = a.run in r.cancelled
            said = "Cancel sent: the run ends within a second." if ok else f"Not cancelled: {r.refused.get(a.run)}"
            st.session_state[DONE_KEY] = ActionDone(a.run, said, ok)
        _close()
        st.rerun()


@st.dialog("Mark this failure handled?", on_dismiss=_close)
def _handled_dialog(a: ActionAsk, found: RunDetail) -> None:
    st.text(f"Run {a.run}")
    st.text("For a failure that needs no replay (a duplicate, a test record, fixed by hand in the app): it keeps "
            "its Failed status, leaves the unresolved failures and bulk re-triggers, and can be undone.")
    reason = st.text_area("Why it needs no replay (required)", max_chars=handled.MAX_REASON, key=f"why_{a.nonce}")
    st.text(f"Recorded as marked by {actor().who}.")
    if _button("Mark handled", Action.HANDLED, disabled_why=None if reason.strip() else "Say why first"):
        if _used(a):
            try:
                r = handled.mark(workspace().store, actor(), [a.run], reason)
            except (handled.HandledRejected, Forbidden) as exc:
                refused(str(exc))
                return
            ok = bool(r.marked)
            st.session_state[DONE_KEY] = ActionDone(
                a.run, "Marked handled." if ok else "Not marked: it is not failed, or is handled already.", ok)
        _close()
        st.rerun()


DIALOGS = {"edit": _edit_dialog, "from_step": _from_step_dialog, "cancel": _cancel_dialog,
           "handled": _handled_dialog}


def rerun_label(plan: replay.FromStep) -> str:
    """The button's label: the step's name from the definition, kept plain text in Markdown."""
    return f"Re-run from step {plan.step + 1} ({label(plan.name)})"


def dialog_if_asked() -> None:
    a: ActionAsk | None = st.session_state.get(ASK_KEY)
    if not a:
        return
    found = detail.get(workspace().store, a.run)
    if found is None:
        _close()
        return
    DIALOGS[a.kind](a, found)


def unmark(run_id: str) -> None:
    """Undo a handled mark (a button's on_click)."""
    try:
        done = handled.unmark(workspace().store, actor(), [run_id])
    except Forbidden as exc:
        st.session_state[DONE_KEY] = ActionDone(run_id, str(exc), False)
        return
    st.session_state[DONE_KEY] = ActionDone(run_id, "No longer handled: it is an unresolved failure again."
                                            if done else "It was not marked handled.", bool(done))


def outcome(run_id: str) -> None:
    """What this session's last cancel or mark did to `run_id`."""
    done: ActionDone | None = st.session_state.get(DONE_KEY)
    if done and done.run == run_id:
        (st.success if done.ok else st.warning)(done.said)


def menu(found: RunDetail, *, key: str) -> None:
    """The actions a run offers (inside a popover or a row of buttons), each disabled with why when it cannot."""
    run = found.run
    failed = run["status"] == "failed"
    original = failed and not run["retrigger_of"]  # handled marks are for originals: a replay's fix is its own
    mark = handled.of(workspace().store, run["id"]) if original else None
    st.button("✎ Re-trigger with changes…", key=f"{key}_edit", on_click=ask, args=("edit", run["id"]),
              disabled=not may(Action.RETRIGGER), help=None if may(Action.RETRIGGER) else needs(Action.RETRIGGER))
    plan = found.rerun(definitions(workspace())) if failed else None
    if plan is not None:
        st.button(rerun_label(plan) if isinstance(plan, replay.FromStep) else "⤼ Re-run from the failed step",
                  key=f"{key}_from_step", on_click=ask, args=("from_step", run["id"]),
                  disabled=isinstance(plan, str) or not may(Action.RETRIGGER),
                  help=plan if isinstance(plan, str) else None if may(Action.RETRIGGER) else needs(Action.RETRIGGER))
    if run["status"] in cancel.IN_FLIGHT:
        why = cancel.cancellable(workspace().store, run["id"], run["status"])
        st.button("⏹ Cancel run", key=f"{key}_cancel", on_click=ask, args=("cancel", run["id"]),
                  disabled=why is not None or not may(Action.CANCEL),
                  help=f"Cannot be cancelled from here: {why}" if why else None)
        if why:
            st.caption(f"Cannot be cancelled from here: {why}.")
    if original and mark is None:
        st.button("✋ Mark handled…", key=f"{key}_handled", on_click=ask, args=("handled", run["id"]),
                  disabled=not may(Action.HANDLED), help=None if may(Action.HANDLED) else needs(Action.HANDLED))
    elif mark is not None:
        st.button("Undo handled", key=f"{key}_unhandled", on_click=unmark, args=(run["id"],),
                  disabled=not may(Action.UNHANDLED), help=None if may(Action.UNHANDLED) else needs(Action.UNHANDLED))


def diff_lines(found: RunDetail) -> list[str]:
    """An edited replay's recorded changes, one line each (plain text)."""
    parent = found.retriggered_from or {}
    return [f"{c['path']}: {json.dumps(c.get('before'), ensure_ascii=False) if 'before' in c else '(absent)'} → "
            f"{json.dumps(c.get('after'), ensure_ascii=False) if 'after' in c else '(removed)'}"
            if "before" in c or "after" in c else str(c["path"]) for c in parent.get("payload_diff") or []]
