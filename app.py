"""Fourgent Runs: the Streamlit entry point (navigation) and the Workflow Runs page."""

from __future__ import annotations

import streamlit as st

from fourgent import queries as Q
from fourgent.store import StoreBusy
from fourgent.workspace import Workspace, open_workspace

st.set_page_config(page_title="Fourgent Runs", page_icon="⚡", layout="wide")


@st.cache_resource(show_spinner="Opening the store…")
def workspace() -> Workspace:
    """The process's one store; seeded with demo runs on a first start."""
    ws = open_workspace()
    ws.seed_demo_if_empty()
    return ws


def runs_page() -> None:
    ws = workspace()
    ws.refresh()
    cur = ws.store.cursor()
    st.title("Workflow Runs")
    counts = Q.status_counts(cur, Q.RunFilter())
    total = sum(counts.values())
    cols = st.columns(len(counts) + 1)
    cols[0].metric("Runs", f"{total:,}")
    for col, (status, n) in zip(cols[1:], counts.items()):
        col.metric(status.capitalize(), f"{n:,}")
    frame = Q.page(cur, Q.RunFilter(), size=50)
    st.dataframe(
        frame.select("reference", "id", "workflow", "status", "started_at"),
        hide_index=True,
        use_container_width=True,
        column_config={
            "reference": st.column_config.TextColumn("Reference"),
            "id": st.column_config.TextColumn("ID"),
            "workflow": st.column_config.TextColumn("Workflow"),
            "status": st.column_config.TextColumn("Status"),
            "started_at": st.column_config.DatetimeColumn("Started", format="YYYY-MM-DD HH:mm:ss"),
        },
    )
    rejected = cur.execute("SELECT count(*) FROM rejected_lines").fetchall()[0][0]
    if rejected:
        st.warning(f"{rejected:,} log lines could not be read (see the view rejected_lines).", icon="⚠️")


def main() -> None:
    try:
        workspace()
    except StoreBusy as exc:
        st.error(str(exc) + " Stop the other process (or point FOURGENT_DATA_DIR elsewhere) and reload.")
        st.stop()
    page = st.navigation([st.Page(runs_page, title="Workflow Runs", icon="📋", url_path="runs", default=True)])
    page.run()


main()
