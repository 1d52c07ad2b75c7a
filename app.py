"""Fourgent Runs: the Streamlit entry point (navigation) and the Workflow Runs page.

Every filter lives in the URL (?q=&status=&workflow=&range=&from=&to=&page=&size=&order=&tz=),
so a copied link reproduces the view. Only the visible page of runs is sent to the browser.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import quote

import polars as pl
import streamlit as st

from fourgent import comments, display, export
from fourgent import overview as O
from fourgent import queries as Q
from fourgent.pauses import without_paused
from fourgent.retrigger import BULK_CAP, BULK_CONCURRENCY, BulkJob
from fourgent.spec import STATUSES
from fourgent.store import StoreBusy
from fourgent.workspace import retrigger
from ui import (
    CAVEAT,
    PAGES,
    ask_retrigger,
    author,
    retrigger_dialog_if_asked,
    retrigger_outcome,
    workspace,
)

st.set_page_config(page_title="Fourgent Runs", page_icon="⚡", layout="wide")

PRESETS = {"any": "Any time", "1h": "Last hour", "24h": "Last 24 hours", "7d": "Last 7 days",
           "30d": "Last 30 days", "custom": "Custom dates"}
PRESET_SPAN = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7),
               "30d": timedelta(days=30)}
LIVE_SECONDS = 5
DEFAULTS = {"f_q": "", "f_status": [], "f_workflow": [], "f_range": "any", "f_dates": (), "f_window": None,
            "f_page": 1, "f_size": 50, "f_oldest": False, "f_utc": False, "f_unresolved": False,
            "f_kind": [], "f_app": [], "f_error": ""}


# ---------------------------------------------------------------- URL <-> widget state

MAX_PAGE = 1_000_000  # beyond any real page; keeps LIMIT/OFFSET within DuckDB's integers

Params = dict[str, list[str]]  # a query string: each key with all its values


def _one(params: Params, key: str, default: str = "") -> str:
    values = params.get(key) or [default]
    return values[-1]


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _instant(value: str) -> datetime | None:
    """An ISO timestamp with its offset (from=/to= of an exact window, e.g. a bar of the Overview's chart)."""
    if "T" not in value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo is not None and 1970 <= t.year <= 2999 else None


def state_from_url(params: Params, browser_zone: str | None = None) -> dict[str, object]:
    """Widget values for a URL; anything malformed falls back to its default rather than failing."""
    state = dict(DEFAULTS)
    state["f_utc"] = _one(params, "tz") == "utc"
    tz = display.zone(None if state["f_utc"] else browser_zone)
    state["f_q"] = _one(params, "q")[:500]
    statuses = [v for value in params.get("status", []) for v in value.split(",")]
    state["f_status"] = [s for s in STATUSES if s in statuses]
    state["f_workflow"] = [w for w in params.get("workflow", []) if w]  # repeated: IDs may hold commas
    rng = _one(params, "range", "any")
    start, end = _date(_one(params, "from")), _date(_one(params, "to"))
    window = _instant(_one(params, "from")), _instant(_one(params, "to"))
    if window[0] and window[1] and window[0] < window[1]:
        rng = "custom"
        state["f_window"] = window
        # The date picker shows the window's days as this page tells time.
        state["f_dates"] = (window[0].astimezone(tz).date(), (window[1] - timedelta(microseconds=1)).astimezone(tz).date())
    elif start or end:
        rng = "custom"
        dates = sorted(d for d in (start, end or start) if d)
        state["f_dates"] = tuple(dates)
    state["f_range"] = rng if rng in PRESETS else "any"
    try:
        state["f_page"] = min(max(1, int(_one(params, "page", "1"))), MAX_PAGE)
    except ValueError:
        state["f_page"] = 1
    size = _one(params, "size", "50")
    state["f_size"] = int(size) if size in {str(s) for s in Q.PAGE_SIZES} else 50
    state["f_oldest"] = _one(params, "order") == "oldest"
    state["f_unresolved"] = _one(params, "unresolved") == "1"
    state["f_kind"] = [v[:100] for v in params.get("kind", []) if v][:10]  # repeated, like workflow
    state["f_app"] = [v[:200] for v in params.get("app", []) if v][:10]
    state["f_error"] = _one(params, "error")[:2000]
    return state


def url_from_state(s: dict[str, object]) -> Params:
    params: Params = {}
    if s["f_q"]:
        params["q"] = [str(s["f_q"])]
    if s["f_status"]:
        params["status"] = [",".join(s["f_status"])]
    if s["f_workflow"]:
        params["workflow"] = list(s["f_workflow"])
    if s["f_range"] == "custom" and s["f_window"]:
        params["from"], params["to"] = ([_iso(t)] for t in s["f_window"])
    elif s["f_range"] == "custom" and s["f_dates"]:
        dates = list(s["f_dates"])
        params["from"] = [dates[0].isoformat()]
        params["to"] = [dates[-1].isoformat()]
    elif s["f_range"] != "any":
        params["range"] = [str(s["f_range"])]
    if s["f_page"] != 1:
        params["page"] = [str(s["f_page"])]
    if s["f_size"] != 50:
        params["size"] = [str(s["f_size"])]
    if s["f_oldest"]:
        params["order"] = ["oldest"]
    if s["f_utc"]:
        params["tz"] = ["utc"]
    if s["f_unresolved"]:
        params["unresolved"] = ["1"]
    if s["f_kind"]:
        params["kind"] = list(s["f_kind"])
    if s["f_app"]:
        params["app"] = list(s["f_app"])
    if s["f_error"]:
        params["error"] = [str(s["f_error"])]
    return params


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def current_url() -> Params:
    return {k: st.query_params.get_all(k) for k in st.query_params}


def run_filter(s: dict[str, object], tz, now: datetime) -> Q.RunFilter:
    start = end = None
    if s["f_range"] in PRESET_SPAN:
        start = now - PRESET_SPAN[s["f_range"]]
    elif s["f_range"] == "custom" and s["f_window"]:
        start, end = s["f_window"]
    elif s["f_range"] == "custom" and s["f_dates"]:
        dates = list(s["f_dates"])
        start = datetime.combine(dates[0], time.min, tzinfo=tz)
        end = datetime.combine(dates[-1] + timedelta(days=1), time.min, tzinfo=tz)
    return Q.RunFilter(q=str(s["f_q"]), statuses=tuple(s["f_status"]), workflows=tuple(s["f_workflow"]),
                       start=start, end=end, unresolved=bool(s["f_unresolved"]), kinds=tuple(s["f_kind"]),
                       apps=tuple(s["f_app"]), error=str(s["f_error"]))


def sync_from_url() -> None:
    """Load the URL into the widgets when the URL changed from outside (a pasted link, a clicked chart)
    or the widgets' state is gone: Streamlit drops a widget's state when a run of another page does not
    draw it, so after the browser's Back button the URL is the only record of this page's filters."""
    params = current_url()
    if st.session_state.get("_url") != params or any(k not in st.session_state for k in DEFAULTS):
        st.session_state.update(state_from_url(params, st.context.timezone))
        st.session_state["_url"] = params


def current_state() -> dict[str, object]:
    return {k: st.session_state.get(k, v) for k, v in DEFAULTS.items()}


def push_to_url() -> None:
    params = url_from_state(current_state())
    if params != current_url():
        st.query_params.from_dict(params)
    st.session_state["_url"] = params
    st.session_state["runs_url"] = params  # the detail page's way back keeps the view


def clear_filters() -> None:
    st.session_state.update({k: v for k, v in DEFAULTS.items() if k not in ("f_size", "f_utc")})
    st.session_state.pop("selected_id", None)
    st.session_state["_full_rerun"] = True  # the filter widgets sit outside the table's fragment


def filter_changed() -> None:
    st.session_state["f_page"] = 1
    st.session_state.pop("selected_id", None)


def drop_kind_app() -> None:
    st.session_state["f_kind"], st.session_state["f_app"], st.session_state["f_error"] = [], [], ""
    filter_changed()


def dates_changed() -> None:
    st.session_state["f_window"] = None  # whole days from the date picker replace an exact window
    filter_changed()


def only_status(status: str) -> None:
    st.session_state["f_status"] = [status]
    filter_changed()
    st.session_state["_full_rerun"] = True


# ---------------------------------------------------------------- dialogs

@st.dialog("Comment on this run")
def comment_dialog(run_id: str) -> None:
    st.text(f"Run {run_id}")
    name = st.text_input("Your name", value=author(), max_chars=comments.MAX_AUTHOR)
    body = st.text_area("Comment", max_chars=comments.MAX_BODY, height=160)
    if st.button("Add comment", type="primary"):
        try:
            comments.add(workspace().store, run_id, name, body)
        except comments.CommentRejected as exc:
            st.error(str(exc))
            return
        st.session_state["author"] = name.strip()
        st.rerun()


# ---------------------------------------------------------------- the page

def runs_page() -> None:
    ws = workspace()
    sync_from_url()

    st.title("Workflow Runs")
    render_filters(ws)
    bulk_bar(ws.store.cursor(), run_filter(current_state(), page_zone(), datetime.now(UTC)))
    live = st.session_state.get("live", True)
    # A fragment on a timer while the view can still change: filters, page and selection stay put.
    st.fragment(run_every=LIVE_SECONDS if live else None)(runs_table)(live)
    push_to_url()


def render_filters(ws) -> None:
    cur = ws.store.cursor()
    workflows = dict(Q.workflows(cur))
    top = st.columns([3, 2, 2, 3, 1.4], vertical_alignment="bottom")
    top[0].text_input("Reference or ID", key="f_q", placeholder="Search references and run IDs",
                      on_change=filter_changed)
    top[1].selectbox("Date", list(PRESETS), format_func=PRESETS.get, key="f_range", on_change=dates_changed)
    top[2].multiselect("Status", STATUSES, format_func=display.status_label, key="f_status",
                       on_change=filter_changed, placeholder="Any status")
    known = [w for w in st.session_state.get("f_workflow", []) if w not in workflows]
    top[3].multiselect("Workflow", list(workflows) + known, format_func=lambda w: workflows.get(w, w),
                       key="f_workflow", on_change=filter_changed, placeholder="Any workflow")
    top[4].button("Clear filters", on_click=clear_filters, width="stretch")
    st.toggle("Unresolved failures only", key="f_unresolved", on_change=filter_changed,
              help="Failed runs whose latest re-trigger did not finish (or that were never re-triggered)")
    narrowed = [("kind", k) for k in st.session_state.get("f_kind", [])] + \
               [("app", a) for a in st.session_state.get("f_app", [])] + \
               ([("error", st.session_state["f_error"])] if st.session_state.get("f_error") else [])
    if narrowed:  # set by a link (the Overview's failures by kind, app or error); no widget of their own
        cols = st.columns([6, 1], vertical_alignment="center")
        cols[0].text("Failed runs where " + " and ".join(
            f"{what} = {' or '.join(v for w, v in narrowed if w == what)}" for what in dict(narrowed)))
        cols[1].button("Remove", key="drop_kind_app", on_click=drop_kind_app)
    if st.session_state.get("f_range") == "custom":
        st.date_input("From – to", key="f_dates", on_change=dates_changed, min_value=date(1970, 1, 1),
                      max_value=date(2999, 12, 31))
        if window := st.session_state.get("f_window"):
            tz = page_zone()
            st.caption(f"Exactly {window[0].astimezone(tz):%Y-%m-%d %H:%M} – {window[1].astimezone(tz):%Y-%m-%d %H:%M}"
                       f" ({tz.key}), as linked; pick dates to widen it to whole days.")


def page_zone():
    return display.zone(None if st.session_state.get("f_utc") else st.context.timezone)


def runs_table(live: bool) -> None:
    if st.session_state.pop("_full_rerun", False):
        st.rerun()  # a control in here changed the filters drawn outside it
    ws = workspace()
    if live:
        ws.refresh()
    cur = ws.store.cursor()
    state = current_state()
    tz = page_zone()
    now = datetime.now(UTC)
    f = run_filter(state, tz, now)
    view = Q.runs_view(cur, f, page=int(state["f_page"]), size=int(state["f_size"]),
                       order="oldest" if state["f_oldest"] else "newest")

    if view.store_runs == 0:
        empty_store(ws)
        return
    status_bar(view)
    if view.exact_id:
        with st.container(border=True):
            cols = st.columns([4, 1], vertical_alignment="center")
            cols[0].markdown("A run has exactly this ID.")
            cols[1].page_link(RUN_PAGE, label="Open that run", icon="🔍", query_params={"id": view.exact_id})
    if view.rejected_lines:
        rejected_notice(cur, view.rejected_lines)
    if view.total == 0:
        st.info("No runs match these filters.", icon="🔎")
        st.button("Clear filters", key="clear_empty", on_click=clear_filters)
        view_controls()  # drawn on every run, so Streamlit keeps their values
        push_to_url()
        return

    pages = max(1, -(-view.total // int(state["f_size"])))
    if int(state["f_page"]) > pages:
        st.session_state["f_page"] = pages
        st.rerun()
    table = pl.DataFrame({
        "Reference": [display.reference(r) for r in view.rows["reference"].to_list()],
        "ID": view.rows["id"],
        "Workflow": view.rows["workflow"],
        "Status": [display.status_label(s) for s in view.rows["status"].to_list()],
        "Re-trigger": [display.replay_label(i, of, view.retriggers.get(i))
                       for i, of in zip(view.rows["id"].to_list(), view.rows["retrigger_of"].to_list(), strict=True)],
        "Started": [display.local_time(t, tz) for t in view.rows["started_at"].to_list()],
        "When": [display.ago(t, now) for t in view.rows["started_at"].to_list()],
        "Notes": [f"💬 {view.comment_counts[i]}" if i in view.comment_counts else "" for i in view.rows["id"]],
        "Details": [f"run?id={quote(i, safe='')}" for i in view.rows["id"].to_list()],
    })
    event = st.dataframe(
        table, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
        # A new key whenever the rows change: Streamlit keeps a selection by row position,
        # and live rows shift, so an old selection would point at another run.
        key=f"runs_table_{hash(tuple(view.rows['id'].to_list()))}",
        column_config={
            "Reference": st.column_config.TextColumn(width=210),
            "ID": st.column_config.TextColumn(width=170),
            "Workflow": st.column_config.TextColumn(width=290),
            "Status": st.column_config.TextColumn(width=95),
            "Re-trigger": st.column_config.TextColumn(
                width=110, help="A failed run whose latest re-trigger finished is resolved; ↩ marks a replay"),
            "Started": st.column_config.TextColumn(f"Started ({tz.key})", width=160),
            "When": st.column_config.TextColumn(width=80),
            "Notes": st.column_config.TextColumn(width=55),
            "Details": st.column_config.LinkColumn(display_text="Open ↗", width=65),
        },
    )
    rows = event.selection.rows if event and event.selection else []
    if rows:
        st.session_state["selected_id"] = view.rows["id"][rows[0]]
    pager(view.total, pages, state)
    selected = st.session_state.get("selected_id")
    if selected:
        row_actions(selected)
    export_button(cur, f, view.total)

    in_flight = view.by_status["running"] + view.by_status["pending"]
    wants_live = in_flight > 0 or (int(state["f_page"]) == 1 and not state["f_oldest"])
    if wants_live != live:
        st.session_state["live"] = wants_live
        st.rerun()
    if live:
        st.caption(f"Live: new log lines appear within {LIVE_SECONDS} s.")
    push_to_url()  # widgets inside this fragment (page size, order) rerun only the fragment


# ---------------------------------------------------------------- bulk re-trigger



def bulk_bar(cur, f: Q.RunFilter) -> None:
    """"Re-trigger the N failed runs matching these filters" — or the bulk under way, or its summary."""
    if st.session_state.get("bulk_job"):
        st.fragment(run_every=0.5)(bulk_progress)()  # polls the background job; nothing else reruns
        return
    f, held = without_paused(workspace().store, f)
    if held:  # workflow IDs come from logs: text
        st.text(f"Paused, so left out of re-triggers: {', '.join(held)} (resume on the Workflows page).")
    n = O.unresolved_count(cur, f) if f else 0
    if n:
        st.button(f"↻ Re-trigger the {n:,} unresolved failed run{'s' if n != 1 else ''} matching these filters",
                  on_click=ask_bulk, args=(n,), key="bulk_retrigger",
                  help="Failed runs whose latest re-trigger did not finish (or that were never re-triggered); "
                       "each is replayed once with its original payload.")
    if st.session_state.get("confirm_bulk"):
        bulk_dialog(f)


def ask_bulk(n: int) -> None:
    st.session_state["confirm_bulk"] = {"count": n, "opened": datetime.now(UTC)}


def close_bulk() -> None:
    st.session_state.pop("confirm_bulk", None)


@st.dialog("Re-trigger these failed runs?", on_dismiss=close_bulk)
def bulk_dialog(f: Q.RunFilter) -> None:
    ask = st.session_state["confirm_bulk"]
    n = ask["count"]
    take = min(n, BULK_CAP)
    st.text(f"{n:,} unresolved failed run{'s' if n != 1 else ''} match these filters."
            + (f" This re-triggers the newest {BULK_CAP:,}; run it again for the rest." if n > BULK_CAP else ""))
    st.text(CAVEAT)
    st.text(f"{BULK_CONCURRENCY} runs at a time; you can cancel while it runs (runs already started finish).")
    name = st.text_input("Your name (recorded with each re-trigger)", value=author(), max_chars=100)
    if st.button(f"Re-trigger {take:,} run{'s' if take != 1 else ''}", type="primary"):
        if not name.strip():
            st.error("Say who you are: the name is recorded with the re-triggers.")
            return
        if not st.session_state.get("bulk_job"):  # a double click starts one bulk, not two
            # The runs are chosen now, not when the dialog opened: anything resolved meanwhile is left out.
            selection = Q.bulk_selection(f)
            ids = Q.select_ids(workspace().store.cursor(), selection, limit=BULK_CAP) if selection else []
            ws = workspace()
            st.session_state["bulk_job"] = BulkJob(
                lambda *a, **k: retrigger(ws, *a, **k), ids, name.strip(),
                concurrency=BULK_CONCURRENCY, since=ask["opened"])
            st.session_state["author"] = name.strip()
        close_bulk()
        st.rerun()


def bulk_progress() -> None:
    job: BulkJob | None = st.session_state.get("bulk_job")
    if job is None:
        st.rerun()
    with st.container(border=True):
        if not job.finished:
            label = "Cancelling: runs under way finish…" if job.cancelled else "Re-triggering…"
            st.progress(job.done / max(job.total, 1), text=f"{label} {job.done:,} of {job.total:,}")
            st.button("Cancel", on_click=job.cancel, disabled=job.cancelled, key="bulk_cancel")
            return
        if job.error:
            st.error("The bulk re-trigger stopped with an error:")
            st.code(job.error, language=None)
        else:
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


def status_bar(view: Q.RunsView) -> None:
    cols = st.columns(len(STATUSES) + 1)
    cols[0].metric("Matching runs", f"{view.total:,}")
    for col, status in zip(cols[1:], STATUSES, strict=True):
        col.button(f"{display.status_label(status)} · {view.by_status[status]:,}", key=f"only_{status}",
                   on_click=only_status, args=(status,), width="stretch",
                   help=f"Show only {status} runs")


def pager(total: int, pages: int, state: dict[str, object]) -> None:
    page = int(state["f_page"])
    cols = st.columns([1, 1, 3, 2, 2], vertical_alignment="center")
    if cols[0].button("← Newer" if not state["f_oldest"] else "← Older", disabled=page <= 1):
        st.session_state["f_page"] = page - 1
        st.rerun()
    if cols[1].button("Older →" if not state["f_oldest"] else "Newer →", disabled=page >= pages):
        st.session_state["f_page"] = page + 1
        st.rerun()
    size = int(state["f_size"])
    first = (page - 1) * size + 1
    cols[2].text(f"Page {page:,} of {pages:,} · runs {first:,}–{min(first + size - 1, total):,} of {total:,}")
    view_controls(cols[3], cols[4])


def view_controls(size_col=None, order_col=None) -> None:
    """Page size, order and time zone: one set of widgets, whatever the table shows."""
    size_col = size_col or st
    order_col = order_col or st
    size_col.selectbox("Per page", Q.PAGE_SIZES, key="f_size", on_change=filter_changed,
                       label_visibility="collapsed", format_func=lambda n: f"{n} per page")
    order_col.toggle("Oldest first", key="f_oldest", on_change=filter_changed)
    st.toggle("Times in UTC", key="f_utc")


def row_actions(run_id: str) -> None:
    with st.container(border=True):
        cols = st.columns([3, 1, 1, 1], vertical_alignment="center")
        cols[0].text(f"Selected: {run_id}")
        if cols[1].button("💬 Comment", width="stretch"):
            comment_dialog(run_id)
        cols[2].page_link(RUN_PAGE, label="View details", icon="🔍", query_params={"id": run_id})
        with cols[3].popover("More options", width="stretch"):
            st.button("↻ Re-trigger", help=CAVEAT, on_click=ask_retrigger, args=(run_id,), key="row_retrigger")
            st.text("Run ID, to copy:")
            st.code(run_id, language=None)
    retrigger_outcome(run_id)
    retrigger_dialog_if_asked()


def export_button(cur, f: Q.RunFilter, total: int) -> None:
    shown = min(total, export.EXPORT_CAP)
    note = f" (the newest {export.EXPORT_CAP:,})" if total > export.EXPORT_CAP else ""
    st.download_button(
        f"Download {shown:,} matching runs as CSV{note}",
        data=lambda: export.csv_bytes(workspace().store.cursor(), f),
        file_name="fourgent-runs.csv", mime="text/csv", icon="⬇️", on_click="ignore",
    )


def rejected_notice(cur, count: int) -> None:
    with st.expander(f"⚠️ {count:,} log line{'s' if count != 1 else ''} could not be read"):
        rows = Q.frame(cur, "SELECT file, line, reason, raw, ingested_at FROM rejected_lines "
                            "ORDER BY ingested_at DESC, file, line LIMIT 500")
        st.dataframe(rows, hide_index=True, width="stretch")
        if count > 500:
            st.caption(f"The newest 500 of {count:,}; all are in the SQL view rejected_lines.")


def empty_store(ws) -> None:
    st.info("No runs yet. Run logs (.jsonl or .jsonl.gz, one run snapshot per line) are read from this folder, "
            "and new lines appear here within seconds:", icon="📭")
    st.code(str(ws.paths.logs_dir), language=None)
    st.button("Load demo data", type="primary", on_click=ws.load_demo)


RUN_PAGE = st.Page("views/run_detail.py", title="Run details", icon="🔍", url_path="run", visibility="hidden")


def main() -> None:
    try:
        workspace()
    except StoreBusy as exc:
        st.error(str(exc) + " Stop the other process (or point FOURGENT_DATA_DIR elsewhere) and reload.")
        st.stop()
    PAGES["runs"] = st.Page(runs_page, title="Workflow Runs", icon="📋", url_path="runs", default=True)
    PAGES["overview"] = st.Page("views/overview.py", title="Overview", icon="📊", url_path="overview")
    PAGES["workflows"] = st.Page("views/workflows.py", title="Workflows", icon="🔀", url_path="workflows")
    PAGES["connections"] = st.Page("views/connections.py", title="Connections", icon="🔌", url_path="connections")
    PAGES["explore"] = st.Page("views/explore.py", title="Explore (SQL)", icon="🔎", url_path="explore")
    PAGES["how"] = st.Page("views/how_it_works.py", title="How it works", icon="📖", url_path="how-it-works")
    PAGES["run"] = RUN_PAGE
    page = st.navigation(list(PAGES.values()))
    page.run()


main()
