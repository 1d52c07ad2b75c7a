"""The process's one workspace, cached for every session, and who the session says it is."""

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

