"""Overview: is the workspace healthy, and where to look first. Every bar, point and row opens the Runs page filtered."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime, time, timedelta

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from fourgent import display
from fourgent import overview as O
from fourgent import queries as Q
from fourgent.spec import STATUSES
from ui import PAGES, runs_link, workspace

RANGES = {"24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days", "90d": "Last 90 days",
          "custom": "Custom dates"}
URL_KEYS = {"range", "workflow", "from", "to"}
SPANS = {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30), "90d": timedelta(days=90)}
COLORS = {"finished": "#16a34a", "failed": "#dc2626", "running": "#2563eb", "pending": "#ca8a04",
          "skipped": "#9ca3af"}

ws = workspace()
ws.refresh()
cur = ws.store.cursor()
tz = display.zone(st.context.timezone)

# ---------------------------------------------------------------- the range, kept in the URL
in_url = {k: st.query_params.get_all(k) for k in st.query_params}
params = in_url
if set(params) - URL_KEYS and "_ov_url" in st.session_state:
    # st.switch_page(query_params=...) first sets the Runs page's filters on this page's URL, then changes
    # page: the browser's Back button lands on that entry. It stands for the Overview as last shown.
    params = st.session_state.get("_ov_url", {})
# Streamlit drops a widget's state when a run of another page does not draw it: reload from the URL then.
if st.session_state.get("_ov_url") != params or not {"ov_range", "ov_workflow"} <= st.session_state.keys():
    rng = (params.get("range") or ["7d"])[-1]
    st.session_state["ov_range"] = rng if rng in RANGES else "7d"
    st.session_state["ov_workflow"] = [w for w in params.get("workflow", []) if w]
    try:
        dates = sorted(date.fromisoformat(v) for v in (*params.get("from", [])[-1:], *params.get("to", [])[-1:]))
    except ValueError:
        dates = []
    if dates:
        st.session_state["ov_range"] = "custom"
        st.session_state["ov_dates"] = (dates[0], dates[-1])

st.title("Overview")
workflows = dict(Q.workflows(cur))
cols = st.columns([2, 3, 3], vertical_alignment="bottom")
cols[0].selectbox("Range", list(RANGES), format_func=RANGES.get, key="ov_range")
known = [w for w in st.session_state.get("ov_workflow", []) if w not in workflows]
cols[1].multiselect("Workflow", list(workflows) + known, format_func=lambda w: workflows.get(w, w),
                    key="ov_workflow", placeholder="All workflows")
now = datetime.now(UTC)
if st.session_state["ov_range"] == "custom":
    default = st.session_state.get("ov_dates") or ((now - timedelta(days=6)).date(), now.date())
    st.session_state.setdefault("ov_dates", default)
    picked = cols[2].date_input("From – to", key="ov_dates", min_value=date(1970, 1, 1), max_value=date(2999, 12, 31))
    picked = tuple(picked) if isinstance(picked, (tuple, list)) else (picked,)
    first, last_day = (picked[0], picked[-1]) if picked else (now.date(), now.date())
    window = O.Window(datetime.combine(first, time.min, tz), datetime.combine(last_day + timedelta(days=1), time.min, tz),
                      tuple(st.session_state["ov_workflow"]))
else:
    window = O.last(SPANS[st.session_state["ov_range"]], now, tuple(st.session_state["ov_workflow"]))

url: dict[str, list[str]] = {}
if st.session_state["ov_range"] == "custom":
    url["from"], url["to"] = [str(st.session_state["ov_dates"][0])], [str(st.session_state["ov_dates"][-1])]
elif st.session_state["ov_range"] != "7d":
    url["range"] = [st.session_state["ov_range"]]
if st.session_state["ov_workflow"]:
    url["workflow"] = list(st.session_state["ov_workflow"])
if url != in_url:
    st.query_params.from_dict(url)
st.session_state["_ov_url"] = url

st.caption(f"Runs started {window.start.astimezone(tz):%Y-%m-%d %H:%M} – {window.end.astimezone(tz):%Y-%m-%d %H:%M} "
           f"({tz.key}), compared with the {display.span(window.end - window.start)} before. "
           f"Bars are {window.bucket}s in UTC.")


def open_runs(start: datetime, end: datetime, *, statuses: tuple[str, ...] = (), workflows: tuple[str, ...] = (),
              unresolved: bool = False, kinds: tuple[str, ...] = (), apps: tuple[str, ...] = (),
              error: str = "") -> None:
    # The first and last buckets may reach outside the range: the runs shown are those the bar counted.
    start, end = max(start, window.start), min(end, window.end)
    st.switch_page(PAGES["runs"], query_params=runs_link(start, end, statuses=statuses,
                                                         workflows=workflows or window.workflows,
                                                         unresolved=unresolved, kinds=kinds, apps=apps,
                                                         error=error))


# ---------------------------------------------------------------- headline figures
view = O.overview_view(cur, window)
now_h, prev_h = view.now, view.previous
m = st.columns(4)
m[0].metric("Runs", f"{now_h.runs:,}", delta=display.change(now_h.runs, prev_h.runs), delta_color="off",
            help="Runs started in the range; the change is against the previous equal period.")
m[1].metric("Failure rate", display.percent(now_h.failure_rate),
            delta=display.points(now_h.failure_rate, prev_h.failure_rate), delta_color="inverse",
            help="Failed ÷ runs that ended (finished, failed or skipped).")
m[2].metric("Median duration", display.duration(now_h.median_ms),
            delta=display.change(now_h.median_ms, prev_h.median_ms), delta_color="inverse",
            help="Of the runs that ended.")
m[3].metric("Unresolved failures", f"{now_h.unresolved:,}",
            delta=display.change(now_h.unresolved, prev_h.unresolved), delta_color="inverse",
            help="Failed runs with no finished re-trigger since (as of now), started in the range.")
if now_h.unresolved:
    m[3].page_link(PAGES["runs"], label="Open them", icon="🔁",
                   query_params=runs_link(window.start, window.end, workflows=window.workflows, unresolved=True))

if now_h.runs == 0:
    st.info("No runs started in this range.", icon="📭")
    st.stop()

# ---------------------------------------------------------------- over time
buckets = view.buckets
st.subheader("Runs over time")
st.caption("Click a bar to open those runs.")
fig = go.Figure()
shown = [s for s in STATUSES if s in set(buckets["status"].to_list())]
for status in shown:
    part = buckets.filter(pl.col("status") == status)
    fig.add_bar(x=part["bucket"].to_list(), y=part["runs"].to_list(), name=status.capitalize(),
                marker_color=COLORS[status], hovertemplate="%{x}<br>%{y:,} runs<extra>" + status + "</extra>")
fig.update_layout(barmode="stack", height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                  legend={"orientation": "h", "y": -0.15}, clickmode="event+select", bargap=0.1)
event = st.plotly_chart(fig, key=f"ov_bars_{window.bucket}", on_select="rerun", selection_mode="points",
                        config={"displayModeBar": False})
for point in (event.selection.points if event and event.selection else [])[:1]:
    status = shown[point["curve_number"]]
    row = buckets.filter(pl.col("status") == status).row(point["point_index"], named=True)
    open_runs(row["bucket"], row["bucket_end"], statuses=(status,))

rates = view.rates.filter(pl.col("ended") > 0)
st.subheader("Failure rate")
st.caption("Failed ÷ ended runs per bucket. Click a point to open the failed runs.")
line = go.Figure(go.Scatter(
    x=rates["bucket"].to_list(), y=rates["failure_rate"].to_list(), mode="lines+markers",
    line={"color": "#dc2626"}, customdata=rates["failed"].to_list(),
    hovertemplate="%{x}<br>%{y:.1%} (%{customdata:,} failed)<extra></extra>"))
line.update_layout(height=220, margin={"l": 10, "r": 10, "t": 10, "b": 10}, yaxis={"tickformat": ".0%"},
                   clickmode="event+select")
event = st.plotly_chart(line, key=f"ov_rate_{window.bucket}", on_select="rerun", selection_mode="points",
                        config={"displayModeBar": False})
for point in (event.selection.points if event and event.selection else [])[:1]:
    row = rates.row(point["point_index"], named=True)
    open_runs(row["bucket"], row["bucket_end"], statuses=("failed",))

# ---------------------------------------------------------------- per workflow
st.subheader("Workflows")
st.caption("Select a row to open its runs in this range.")
per = view.per_workflow
picked = st.dataframe(
    {"Workflow": per["workflow"], "Runs": per["runs"], "Failed": per["failed"],
     "Failure rate": [display.percent(r) for r in per["failure_rate"].to_list()],
     "p50": [display.duration(v) for v in per["p50_ms"].to_list()],
     "p95": [display.duration(v) for v in per["p95_ms"].to_list()],
     "Last failure": [display.local_time(t, tz) for t in per["last_failure"].to_list()]},
    hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row", key="ov_per_workflow")
if picked and picked.selection.rows:
    open_runs(window.start, window.end, workflows=(per["workflow_id"][picked.selection.rows[0]],))

# ---------------------------------------------------------------- errors
st.subheader("Top errors")
st.caption("Failures grouped by message, with IDs, numbers and quoted values taken out (# and …). "
           "Select a row to open the failed runs of the workflows it hit.")
errors = view.top_errors
picked = st.dataframe(
    {"Error": errors["pattern"], "Failures": errors["failures"],
     "First seen": [display.local_time(t, tz) for t in errors["first_seen"].to_list()],
     "Last seen": [display.local_time(t, tz) for t in errors["last_seen"].to_list()],
     "Workflows": [", ".join(w) for w in errors["workflows"].to_list()],
     "Example": errors["example"]},
    hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row", key="ov_errors",
    column_config={"Error": st.column_config.TextColumn(width="large")})
if picked and picked.selection.rows:
    open_runs(window.start, window.end, statuses=("failed",), error=errors["pattern"][picked.selection.rows[0]])

by_kind, by_app = view.by_kind, view.by_app
cols = st.columns(2)
for col, data, key, title in ((cols[0], by_kind, "kind", "Failures by kind"), (cols[1], by_app, "app", "Failures by app")):
    with col:
        st.subheader(title)
        # Plotly draws a few HTML tags in labels: kinds and apps come from the logs, so escape them.
        chart = go.Figure(go.Bar(x=data["failures"].to_list(), y=[html.escape(v) for v in data[key].to_list()],
                                 orientation="h",
                                 marker_color="#dc2626", hovertemplate="%{y}: %{x:,}<extra></extra>"))
        chart.update_layout(height=60 + 28 * max(len(data), 1), margin={"l": 10, "r": 10, "t": 10, "b": 10},
                            yaxis={"autorange": "reversed"}, clickmode="event+select")
        st.caption("Click a bar to open those failed runs.")
        event = st.plotly_chart(chart, key=f"ov_by_{key}", on_select="rerun", selection_mode="points",
                                config={"displayModeBar": False})
        for point in (event.selection.points if event and event.selection else [])[:1]:
            value = data[key][point["point_index"]]
            if value not in ("(none)", "(unknown)"):  # no value to filter on
                open_runs(window.start, window.end, statuses=("failed",),
                          **({"kinds": (value,)} if key == "kind" else {"apps": (value,)}))
