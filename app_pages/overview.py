"""Overview: is the workspace healthy, and where to look first. Each bar, point and row opens the Runs page filtered."""

from __future__ import annotations

import html
from datetime import UTC, datetime, time, timedelta

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from fourgent import display
from fourgent.filters import FIRST_DAY, LAST_DAY, runs_query
from fourgent.overview import EXACT_MAX, Window, last
from fourgent.spec import STATUSES
from ui import pages
from ui.overview_state import OVERVIEW_URL, RANGES, SPANS
from ui.workspace import workspace

COLORS = {"finished": "#16a34a", "failed": "#dc2626", "running": "#2563eb", "pending": "#ca8a04",
          "skipped": "#9ca3af"}

ws = workspace()
ws.refresh()
tz = display.zone(st.context.timezone)
OVERVIEW_URL.load()

st.title("Overview")
workflows = dict(ws.store.workflows())
cols = st.columns([2, 3, 3], vertical_alignment="bottom")
cols[0].selectbox("Range", list(RANGES), format_func=RANGES.__getitem__, key="ov_range")
known = [w for w in st.session_state.get("ov_workflow", []) if w not in workflows]
cols[1].multiselect("Workflow", list(workflows) + known, format_func=lambda w: workflows.get(w, w),
                    key="ov_workflow", placeholder="All workflows")
now = datetime.now(UTC)
if st.session_state["ov_range"] == "custom":
    st.session_state.setdefault("ov_dates", ((now - timedelta(days=6)).date(), now.date()))
    cols[2].date_input("From – to", key="ov_dates", min_value=FIRST_DAY, max_value=LAST_DAY)
state = OVERVIEW_URL.state()
if state.range == "custom":
    first, last_day = state.days or (now.date(), now.date())  # an emptied picker: today
    window = Window(datetime.combine(first, time.min, tz),
                    datetime.combine(last_day + timedelta(days=1), time.min, tz), state.workflows)
else:
    window = last(SPANS[state.range], now, state.workflows)
OVERVIEW_URL.publish(state)

st.caption(f"Runs started {window.start.astimezone(tz):%Y-%m-%d %H:%M} – {window.end.astimezone(tz):%Y-%m-%d %H:%M} "
           f"({tz.key}), compared with the {display.span(window.end - window.start)} before. "
           f"Bars are {window.bucket}s in UTC.")


def open_runs(start: datetime, end: datetime, *, statuses: tuple[str, ...] = (), workflows: tuple[str, ...] = (),
              unresolved: bool = False, kinds: tuple[str, ...] = (), apps: tuple[str, ...] = (),
              error: str = "") -> None:
    # The first and last buckets may reach outside the range: the runs shown are those the bar counted.
    start, end = max(start, window.start), min(end, window.end)
    st.switch_page(pages.RUNS, query_params=runs_query(
        start, end, statuses=statuses, workflows=workflows or window.workflows, unresolved=unresolved,
        kinds=kinds, apps=apps, error=error).link())


# ---------------------------------------------------------------- headline figures
view = ws.store.overview(window)
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
if view.estimated:
    st.caption(f"This range holds over {EXACT_MAX:,} runs: the median, p50 and p95 durations are estimated from "
               "per-day histograms (within 0.5%); every count is exact.")
if now_h.unresolved:
    m[3].page_link(pages.RUNS, label="Open them", icon="🔁",
                   query_params=runs_query(window.start, window.end, workflows=window.workflows,
                                           unresolved=True).link())

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
kind_col, app_col = st.columns(2)
for col, data, key, title in ((kind_col, by_kind, "kind", "Failures by kind"),
                              (app_col, by_app, "app", "Failures by app")):
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
                kinds, apps = ((value,), ()) if key == "kind" else ((), (value,))
                open_runs(window.start, window.end, statuses=("failed",), kinds=kinds, apps=apps)
