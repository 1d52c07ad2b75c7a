"""What every page shares: the process's one workspace, and ways to show outside text as text."""

from __future__ import annotations

import streamlit as st

from fourgent.workspace import Workspace, open_workspace


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


# The navigation's pages by name, registered by app.py on every run before a page runs
# (the Runs page is a function in the entry point, so other pages cannot link to it by file).
PAGES: dict[str, st.Page] = {}


def author() -> str:
    """The comment author's name, remembered for the session."""
    return st.session_state.get("author", "")
