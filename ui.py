"""What every page shares: the process's one workspace, and ways to show outside text as text."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import streamlit as st

from fourgent import display
from fourgent.workspace import Workspace, open_workspace, retrigger


@st.cache_resource(show_spinner="Opening the store…")
def workspace() -> Workspace:
    """The process's one store (DuckDB allows one instance of a file per process); demo runs on a first start."""
    ws = open_workspace()
    if not ws.seed_demo_if_empty():
        ws.ingest_logs()
    return ws


def literal(text: str) -> str:
    """`text` as a Markdown code span: shown character for character, never as links, images or HTML."""
    text = text.replace("\n", " ")
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


_INERT = frozenset(" .,'&/→–-")  # characters with no Markdown meaning inside a line


def label(text: str) -> str:
    """A name (an app, a workflow) for a Markdown label: as it is when it holds only letters, digits and
    inert punctuation, so it reads as plain text; otherwise a code span (`literal`)."""
    plain = (text[:1].isalnum() and all(ch.isalnum() or ch in _INERT for ch in text)
             and not re.match(r"\d+[.)]", text))
    return text if plain else literal(text)


# The navigation's pages by name, registered by app.py on every run before a page runs
# (the Runs page is a function in the entry point, so other pages cannot link to it by file).
PAGES: dict[str, st.Page] = {}


def runs_link(start: datetime | None = None, end: datetime | None = None, *, statuses: tuple[str, ...] = (),
              workflows: tuple[str, ...] = (), unresolved: bool = False, kinds: tuple[str, ...] = (),
              apps: tuple[str, ...] = (), error: str = "") -> dict[str, str | list[str]]:
    """The Runs page's URL query for these filters (its documented contract), e.g. for a clicked bar."""
    params: dict[str, str | list[str]] = {}
    if start is not None and end is not None:
        params["from"], params["to"] = (t.astimezone(UTC).isoformat().replace("+00:00", "Z") for t in (start, end))
    if statuses:
        params["status"] = ",".join(statuses)
    if workflows:
        params["workflow"] = list(workflows)
    if unresolved:
        params["unresolved"] = "1"
    if kinds:
        params["kind"] = list(kinds)
    if apps:
        params["app"] = list(apps)
    if error:
        params["error"] = error
    return params


def author() -> str:
    """The comment author's name, remembered for the session."""
    return st.session_state.get("author", "")


# ---------------------------------------------------------------- re-trigger, wherever a run is shown

CAVEAT = ("A re-trigger runs the workflow again as a new run with the original trigger payload: the payload from "
          "when the run first fired, not the source record as it is now.")


def ask_retrigger(run_id: str, original: str | None = None) -> None:
    """Open the confirmation (a button's on_click); it stays open across its own reruns until answered."""
    st.session_state["confirm_retrigger"] = {"run": run_id, "nonce": uuid.uuid4().hex,
                                             "opened": datetime.now(UTC), "original": original}


def _close_retrigger() -> None:
    st.session_state.pop("confirm_retrigger", None)


@st.dialog("Re-trigger this run?", on_dismiss=_close_retrigger)
def _retrigger_dialog(ask: dict) -> None:
    st.text(f"Run {ask['run']}")
    st.text(CAVEAT)
    if ask.get("original"):
        st.text(f"This run is itself a re-trigger of {ask['original']}: the replay uses that run's payload and is "
                "recorded as another re-trigger of it, so it shows as resolved when this one finishes.")
    name = st.text_input("Your name (recorded with the re-trigger)", value=author(), max_chars=100)
    if st.button("Re-trigger", type="primary"):
        if not name.strip():
            st.error("Say who you are: the name is recorded with the re-trigger.")
            return
        # A double click reruns this with the same confirmation: it has been used, so nothing more happens.
        if st.session_state.get("retrigger_used") != ask["nonce"]:
            st.session_state["retrigger_used"] = ask["nonce"]
            result = retrigger(workspace(), [ask["run"]], name.strip(), concurrency=1, since=ask["opened"])
            st.session_state["author"] = name.strip()
            st.session_state["retriggered"] = {
                "of": ask["run"], "new": result.new_runs.get(ask["run"]),
                "refused": result.refused.get(ask["run"]), "status": next(iter(result.outcomes), None)}
        _close_retrigger()
        st.rerun()


def retrigger_dialog_if_asked() -> None:
    ask = st.session_state.get("confirm_retrigger")
    if ask:
        _retrigger_dialog(ask)


def retrigger_outcome(run_id: str) -> None:
    """What the last re-trigger of `run_id` in this session gave: the new run and its status, or why not."""
    done = st.session_state.get("retriggered")
    if not done or done["of"] != run_id:
        return
    if done["refused"]:
        st.warning("Not re-triggered:", icon="⚠️")
        st.text(done["refused"])
        return
    with st.container(border=True):
        st.text(f"Re-triggered {done['of']} as {done['new']}: {display.status_label(done['status'])}")
        st.page_link("views/run_detail.py", label="Open the new run", icon="↪️", query_params={"id": done["new"]})
