"""Fourgent Runs: the Streamlit entry point. It opens the workspace and routes to the pages in app_pages/."""

from __future__ import annotations

import streamlit as st

from fourgent.access import Role
from fourgent.store import StoreBusy
from ui import pages
from ui.auth import gate
from ui.workspace import workspace

# A 220 px sidebar (not 300): at 1280 px the Runs table's columns fit beside it without a sideways scroll.
st.set_page_config(page_title="Fourgent Runs", page_icon="⚡", layout="wide", initial_sidebar_state=220)

try:
    workspace()
except StoreBusy as exc:
    st.error(str(exc) + " Stop the other process (or point FOURGENT_DATA_DIR elsewhere) and reload.")
    st.stop()
acting = gate()  # the signed-in user (or a sign-in page), before any page

st.navigation([
    st.Page(pages.RUNS, title="Workflow Runs", icon="📋", url_path="runs", default=True),
    st.Page(pages.OVERVIEW, title="Overview", icon="📊", url_path="overview"),
    st.Page(pages.WORKFLOWS, title="Workflows", icon="🔀", url_path="workflows"),
    st.Page(pages.CONNECTIONS, title="Connections", icon="🔌", url_path="connections"),
    st.Page(pages.EXPLORE, title="Explore (SQL)", icon="🔎", url_path="explore"),
    st.Page(pages.ALERTS, title="Alerts", icon="🔔", url_path="alerts"),
    st.Page(pages.HOW_IT_WORKS, title="How it works", icon="📖", url_path="how-it-works"),
    *([st.Page(pages.AUDIT, title="Audit", icon="🧾", url_path="audit")] if acting.role >= Role.ADMIN else []),
    st.Page(pages.RUN, title="Run details", icon="🔍", url_path="run", visibility="hidden"),
]).run()
