"""Workflow Runs: newest runs first, filtered; every filter lives in the URL (fourgent.filters.RunsQuery).

Only the visible page of runs is sent to the browser. The table refreshes itself while the view can change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import polars as pl
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from fourgent import detail, display, export
from fourgent.access import Action
from fourgent.audit import perform
from fourgent.connections import CredentialError
from fourgent.demo import DemoExists
from fourgent.filters import FIRST_DAY, LAST_DAY, PAGE_SIZES, PRESETS, RunFilter, RunsQuery
from fourgent.spec import STATUSES
from fourgent.store.records import RunsView
from fourgent.workspace import Workspace, connection_states
from ui import actions, pages
from ui.auth import actor, may, needs
from ui.bulk import bulk_bar
from ui.dialogs import CAVEAT, ask_retrigger, comment_dialog, retrigger_dialog_if_asked, retrigger_outcome
from ui.runs_state import RUNS_URL, clear_filters, dates_changed, drop_narrowed, filter_changed, only_status
from ui.text import label, literal
from ui.url_state import current_url
from ui.workspace import workspace
from ui.zone import utc_switch, zone

LIVE_SECONDS = 5
RUN_LINK_TEXT = r"run\?id=(.*)"  # the link column shows the ID out of the link


def run_link(run_id: str) -> str:
    """The detail page's link for a run, as the table's ID cell (relative: it works behind any base URL)."""
    return f"run?id={quote(run_id, safe='')}"


def render_filters(ws: Workspace, query: RunsQuery) -> None:
    workflows = dict(ws.store.workflows())
    top = st.columns([3, 2, 3, 3], vertical_alignment="bottom")  # room for a status chip: "🔴 Failed ×", not "Fa…"
    top[0].text_input("Reference or ID", key="f_q", placeholder="Search references and run IDs",
                      on_change=filter_changed)
    top[1].selectbox("Date", list(PRESETS), format_func=PRESETS.__getitem__, key="f_range", on_change=dates_changed)
    top[2].multiselect("Status", STATUSES, format_func=display.status_label, key="f_status",
                       on_change=filter_changed, placeholder="Any status")
    known = [w for w in query.workflows if w not in workflows]
    top[3].multiselect("Workflow", list(workflows) + known, format_func=lambda w: workflows.get(w, w),
                       key="f_workflow", on_change=filter_changed, placeholder="Any workflow")
    # Beside the toggle at its natural width: in a fifth column it read "Clear fil…" at 1280 px.
    row = st.container(horizontal=True, vertical_alignment="center", gap="medium")
    row.toggle("Unresolved failures only", key="f_unresolved", on_change=filter_changed,
               help="Failed runs whose latest re-trigger did not finish (or that were never re-triggered)")
    row.button("Clear filters", on_click=clear_filters, width="content")
    if narrowed := query.narrowed():  # set by a link (the Overview's failures by kind, app or error)
        cols = st.columns([6, 1], vertical_alignment="center")
        said = [f"{what} = {' or '.join(values)}" for what, values in narrowed
                if what not in ("re-triggers", "resolved")]
        line = ("Failed runs" if said or query.resolved else "Runs") + (" where " + " and ".join(said) if said else "")
        if query.resolved:
            line += (", " if said else " ") + "resolved since (re-triggered), handled or cancelled"
        if query.originals:
            line += (", " if said or query.resolved else " ") + "as they first ran (re-triggers left out)"
        cols[0].text(line)
        cols[1].button("Remove", key="drop_kind_app", on_click=drop_narrowed)
    if query.range == "custom":
        st.date_input("From – to", key="f_dates", on_change=dates_changed, min_value=FIRST_DAY, max_value=LAST_DAY)
        if query.window:
            tz = zone()
            start, end = (t.astimezone(tz) for t in query.window)
            st.caption(f"Exactly {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} ({tz.key}), as linked; "
                       "pick dates to widen it to whole days.")


def runs_table(live: bool) -> None:
    if st.session_state.pop("_full_rerun", False):
        st.rerun()  # a control in here changed the filters drawn outside it
    ws = workspace()
    if live:
        ws.refresh()
    query = RUNS_URL.state()
    tz, now = zone(), datetime.now(UTC)
    f = query.filter(now, tz)
    view = ws.store.runs_view(f, page=query.page, size=query.size, order="oldest" if query.oldest else "newest")

    if view.store_runs == 0:
        empty_store(ws)
        return
    status_bar(view)
    if view.exact_id:
        with st.container(border=True):
            cols = st.columns([4, 1], vertical_alignment="center")
            cols[0].markdown("A run has exactly this ID.")
            cols[1].page_link(pages.RUN, label="Open that run", icon="🔍", query_params={"id": view.exact_id})
    if view.rejected_lines:
        rejected_notice(ws, view.rejected_lines)
    if view.total == 0:
        st.info("No runs match these filters.", icon="🔎")
        st.button("Clear filters", key="clear_empty", on_click=clear_filters)
        view_controls()  # drawn on every run, so Streamlit keeps their values
        publish()
        return

    pages_total = max(1, -(-view.total // query.size))
    if query.page > pages_total:
        st.session_state["f_page"] = pages_total
        st.rerun()
    rows = view.rows
    table = pl.DataFrame({
        "Reference": [display.visible(display.reference(r)) for r in rows["reference"].to_list()],
        # The ID is the way into a run: one click on it opens its page.
        "ID": [run_link(i) for i in rows["id"].to_list()],
        "Workflow": [display.visible(w) for w in rows["workflow"].to_list()],
        "Status": [display.status_label(s) for s in rows["status"].to_list()],
        "Re-trigger": [display.replay_label(of, view.retriggers.get(i), view.marks.get(i))
                       for i, of in zip(rows["id"].to_list(), rows["retrigger_of"].to_list(), strict=True)],
        "Started": [display.local_time(t, tz, seconds=False) for t in rows["started_at"].to_list()],
        "When": [display.ago(t, now) for t in rows["started_at"].to_list()],
        "Notes": [f"💬 {view.comment_counts[i]}" if i in view.comment_counts else "" for i in rows["id"]],
    })
    event = st.dataframe(
        # The page's rows at their full height (the page scrolls, not an inner box of ten rows), in widths
        # that fit a 1280 px window beside the sidebar; wider windows share out the rest.
        table, hide_index=True, width="stretch", height="content", on_select="rerun", selection_mode="single-row",
        # A new key whenever the rows change: Streamlit keeps a selection by row position,
        # and live rows shift, so an old selection would point at another run.
        key=f"runs_table_{hash(tuple(rows['id'].to_list()))}",
        column_config={
            "Reference": st.column_config.TextColumn(width=116),
            "ID": st.column_config.LinkColumn(display_text=RUN_LINK_TEXT, width=146,
                                              help="Click an ID to open that run"),
            "Workflow": st.column_config.TextColumn(width=190),
            "Status": st.column_config.TextColumn(width=90),
            "Re-trigger": st.column_config.TextColumn(
                width=92, help="A failed run whose latest re-trigger finished is resolved; ↩ marks a replay"),
            "Started": st.column_config.TextColumn(width=122, help=f"In {tz.key} (the sidebar's switch: UTC)"),
            "When": st.column_config.TextColumn(width=72),
            "Notes": st.column_config.TextColumn(width=38),
        },
    )
    picked = event.selection.rows if event and event.selection else []
    if picked:
        st.session_state["selected_id"] = rows["id"][picked[0]]
    pager(view.total, pages_total, query)
    selected = st.session_state.get("selected_id")
    if selected:
        row_actions(selected)
    export_button(ws, f, view.total, query.oldest)

    in_flight = view.by_status["running"] + view.by_status["pending"]
    wants_live = in_flight > 0 or (query.page == 1 and not query.oldest)
    if wants_live != live:
        st.session_state["live"] = wants_live
        st.rerun()
    if live:
        st.caption(f"Live: new log lines appear within {LIVE_SECONDS} s.")
    publish()  # widgets inside this fragment (page size, order) rerun only the fragment


def publish() -> None:
    st.session_state["runs_url"] = RUNS_URL.publish()  # the detail page's way back keeps the view


def status_bar(view: RunsView) -> None:
    # The count buttons at their natural width, wrapping when the page is narrow: whole labels at 1280 px.
    row = st.container(horizontal=True, vertical_alignment="center", gap="small")
    row.metric("Matching runs", f"{view.total:,}", width="content")
    for status in STATUSES:
        row.button(f"{display.status_label(status)} · {view.by_status[status]:,}", key=f"only_{status}",
                   on_click=only_status, args=(status,), width="content", help=f"Show only {status} runs")


def pager(total: int, pages_total: int, query: RunsQuery) -> None:
    cols = st.columns([1, 1, 3, 2, 2], vertical_alignment="center")
    if cols[0].button("← Newer" if not query.oldest else "← Older", disabled=query.page <= 1):
        st.session_state["f_page"] = query.page - 1
        st.rerun()
    if cols[1].button("Older →" if not query.oldest else "Newer →", disabled=query.page >= pages_total):
        st.session_state["f_page"] = query.page + 1
        st.rerun()
    first = (query.page - 1) * query.size + 1
    cols[2].text(f"Page {query.page:,} of {pages_total:,} · runs {first:,}–{min(first + query.size - 1, total):,} "
                 f"of {total:,}")
    view_controls(cols[3], cols[4])


def view_controls(size_col: DeltaGenerator | None = None, order_col: DeltaGenerator | None = None) -> None:
    """Page size and order: one set of widgets, whatever the table shows."""
    size_col = size_col or st.container()
    order_col = order_col or st.container()
    size_col.selectbox("Per page", PAGE_SIZES, key="f_size", on_change=filter_changed,
                       label_visibility="collapsed", format_func=lambda n: f"{n} per page")
    order_col.toggle("Oldest first", key="f_oldest", on_change=filter_changed)


def row_actions(run_id: str) -> None:
    with st.container(border=True):
        cols = st.columns([3, 1, 1, 1], vertical_alignment="center")
        cols[0].text(f"Selected: {run_id}")
        if cols[1].button("💬 Comment", width="stretch", disabled=not may(Action.COMMENT),
                          help=None if may(Action.COMMENT) else needs(Action.COMMENT)):
            comment_dialog(run_id)
        cols[2].page_link(pages.RUN, label="View details", icon="🔍", query_params={"id": run_id})
        with cols[3].popover("More options", width="stretch"):
            st.button("↻ Re-trigger", help=CAVEAT if may(Action.RETRIGGER) else needs(Action.RETRIGGER),
                      on_click=ask_retrigger, args=(run_id,), key="row_retrigger", disabled=not may(Action.RETRIGGER))
            if found := detail.get(workspace().store, run_id):
                actions.menu(found, key="row")
            st.text("Run ID, to copy:")
            st.code(run_id, language=None)
    retrigger_outcome(run_id)
    actions.outcome(run_id)
    retrigger_dialog_if_asked()
    actions.dialog_if_asked()


def export_button(ws: Workspace, f: RunFilter, total: int, oldest: bool) -> None:
    shown = min(total, export.EXPORT_CAP)
    note = f" (the newest {export.EXPORT_CAP:,})" if total > export.EXPORT_CAP else ""
    st.download_button(
        f"Download {shown:,} matching runs as CSV{note}",
        # The filter of this render: the download runs outside the page's run, where its zone is unknown.
        data=lambda: export.csv_bytes(ws.store, f, oldest=oldest),  # the table's order
        file_name="fourgent-runs.csv", mime="text/csv", icon="⬇️", on_click="ignore",
    )


def rejected_notice(ws: Workspace, count: int) -> None:
    with st.expander(f"⚠️ {count:,} log line{'s' if count != 1 else ''} could not be read"):
        st.dataframe(ws.store.rejected(500), hide_index=True, width="stretch")
        if count > 500:
            st.caption(f"The newest 500 of {count:,}; all are in the SQL view rejected_lines.")


def store_notices(ws: Workspace) -> None:
    """Why new lines are not coming in (disk full, unreadable files, no demo): said, while the stored runs show."""
    for problem in (ws.ingest_problem, ws.demo_problem):
        if problem:
            with st.container(border=True):
                st.text(f"⚠️ {problem}")
    if not ws.unreadable:
        return
    n = len(ws.unreadable)
    with st.container(border=True):
        st.text(f"⚠️ {n:,} log file{'s' if n != 1 else ''} or folder{'s' if n != 1 else ''} could not be read; "
                "everything else was read, and these are tried again on every refresh:")
        st.text("\n".join(ws.unreadable[:20]) + (f"\n… and {n - 20:,} more" if n > 20 else ""))


def empty_store(ws: Workspace) -> None:
    st.info("No runs yet. Run logs (.jsonl or .jsonl.gz, one run snapshot per line) are read from this folder, "
            "and new lines appear here within seconds:", icon="📭")
    st.code(str(ws.paths.logs_dir), language=None)

    def load_demo() -> None:  # a button's callback returns nothing; the page shows the runs it loaded
        try:
            perform(ws.store, actor(), Action.DEMO_LOADED, str(ws.paths.logs_dir), ws.load_demo,
                    outcome=lambda report: {"runs": report.added})
        except DemoExists as exc:
            st.session_state["runs_demo_refused"] = str(exc)

    if refused := st.session_state.pop("runs_demo_refused", None):
        st.error(refused)

    st.button("Load demo data", type="primary", on_click=load_demo, disabled=not may(Action.DEMO_LOADED),
              help=None if may(Action.DEMO_LOADED) else needs(Action.DEMO_LOADED))


def broken_connections(ws: Workspace) -> None:
    """A banner per app whose recent runs failed at its credential while its connection is still broken:
    replaying them first would only fail again."""
    try:
        states, failures = connection_states(ws)
    except CredentialError:
        return  # the Connections page says why, in words
    for s in states:
        failed = failures.get(s.app, (0, None))[0]
        if s.credential in ("Expired", "Missing") and failed:
            with st.container(border=True):
                st.text(f"⚠️ {failed:,} run{'s' if failed != 1 else ''} failed at {s.app}'s credential in the last "
                        f"7 days, and its connection is {s.credential.lower()}: reconnect it before re-triggering.")
                st.page_link(pages.CONNECTIONS, label=f"Reconnect {label(s.app)}", icon="🔌")


ws = workspace()
ws.refresh()  # the bulk bar's counts (running runs to cancel, failures to re-trigger) are of the latest lines
if RUNS_URL.load():  # before the switch: a link's utc=1 turns it on
    st.session_state["f_ignored"] = RunsQuery.ignored(current_url())
utc_switch()
st.title("Workflow Runs")
broken_connections(ws)
store_notices(ws)
query = RUNS_URL.state()
for said, why in st.session_state.get("f_ignored", []):  # until the next link: the URL is rewritten at once
    st.warning(f"Ignored {literal(said)}: {why}.", icon="🔗")
render_filters(ws, query)
bulk_bar(ws, query.filter(datetime.now(UTC), zone()), query)
live = bool(st.session_state.get("live", True))
# A fragment on a timer while the view can still change: filters, page and selection stay put.
st.fragment(run_every=LIVE_SECONDS if live else None)(runs_table)(live)
publish()
