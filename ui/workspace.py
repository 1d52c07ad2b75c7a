"""The process's one workspace, cached for every session, and who the session says it is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from fourgent import alerts
from fourgent.workspace import Workspace, open_workspace, recover_interrupted


def secrets_section(name: str) -> Mapping[str, Any] | None:
    """A section of .streamlit/secrets.toml, or None."""
    try:
        section = st.secrets.get(name)
    except FileNotFoundError:  # no secrets.toml at all
        return None
    return section if isinstance(section, Mapping) else None


def login_configured() -> bool:
    """An `[auth]` section in .streamlit/secrets.toml turns on sign-in (README, "Deploying for a team")."""
    return secrets_section("auth") is not None


@st.cache_resource(show_spinner="Opening the store…")
def workspace() -> Workspace:
    """The process's one store (DuckDB allows one instance of a file per process); demo runs on a first start."""
    ws = open_workspace()
    # A team's dashboard starts empty: the first visitor, signed in or not, writes nothing.
    if login_configured() or not ws.seed_demo_if_empty():
        ws.refresh(min_interval=0)  # a store that cannot write now (disk full) still opens: the pages say why
    recover_interrupted(ws)  # replays a killed process left running
    alerts.start_ticker(ws)  # alerts are checked while nobody has a page open
    return ws

