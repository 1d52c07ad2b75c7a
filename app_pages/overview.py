"""Overview: is the workspace healthy, and where to look first. Each bar, point and row opens the Runs page filtered."""

from __future__ import annotations

import html
from datetime import UTC, datetime, time, timedelta
from typing import Any

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from fourgent import display
from fourgent.filters import FIRST_DAY, LAST_DAY
from fourgent.overview import DAY_MS, EXACT_MAX, HOUR_MS, Segment, Window, bar_segments, last
from ui import pages
from ui.overview_state import OVERVIEW_URL, RANGES, SPANS, runs_link
from ui.workspace import workspace
from ui.zone import in_utc, utc_switch

# Mid-tone colours, legible on both the light and the dark theme's background.
COLORS = {"finished": "#16a34a", "failed": "#dc2626", "running": "#3b82f6", "pending": "#eab308",
          "skipped": "#9ca3af"}
RESOLVED_COLOR = "#fca5a5"  # failed, and fixed since by a re-trigger: a pale red, apart from pending's amber
RETRIGGER_COLOR = "#8b5cf6"  # violet: neither a status nor an outcome


def color(seg: Segment) -> str:
    return RESOLVED_COLOR if seg.resolved else COLORS[seg.status]


ws = workspace()
ws.refresh()
OVERVIEW_URL.load()
tz = utc_switch()

st.title("Overview")
workflows = dict(ws.store.workflows())
cols = st.columns([2, 3, 3], vertical_alignment="bottom")
cols[0].selectbox("Range", list(RANGES), format_func=RANGES.__getitem__, key="ov_range")
known = [w for w in st.session_state.get("ov_workflow", []) if w not in workflows]
cols[1].multiselect("Workflow", list(workflows) + known, format_func=lambda w: workflows.get(w, w),
                    key="ov_workflow", placeholder="All workflows")
now = datetime.now(UTC)
if st.session_state["ov_range"] == "custom":
    today = now.astimezone(tz).date()
    st.session_state.setdefault("ov_dates", (today - timedelta(days=6), today))
    cols[2].date_input("From – to", key="ov_dates", min_value=FIRST_DAY, max_value=LAST_DAY)
state = OVERVIEW_URL.state()
if state.range == "custom":
    first, last_day = state.days or (now.astimezone(tz).date(),) * 2  # an emptied picker: today
    window = Window(datetime.combine(first, time.min, tz), datetime.combine(last_day + timedelta(days=1), time.min, tz),
                    state.workflows, tz.key)
else:
    window = last(SPANS[state.range], now, state.workflows, tz.key)
OVERVIEW_URL.publish(state)

st.caption(f"Runs started {window.start.astimezone(tz):%Y-%m-%d %H:%M} – {window.end.astimezone(tz):%Y-%m-%d %H:%M} "
           f"({tz.key}), compared with the {display.span(window.end - window.start)} before. Bars are "
           f"{window.bucket}s in {tz.key}. Each run is counted once, as it first ran: re-triggers are shown apart.")


def open_runs(start: datetime | None = None, end: datetime | None = None, **narrowed: Any) -> None:
    st.switch_page(pages.RUNS, query_params=runs_link(window, start, end, utc=in_utc(), **narrowed))


# ---------------------------------------------------------------- headline figures
view = ws.store.overview(window)
now_h, prev_h = view.now, view.previous
m = st.columns(5)
m[0].metric("Runs", display.count(now_h.runs), delta=display.change(now_h.runs, prev_h.runs), delta_color="off",
            help="Runs started in the range, each once: a re-trigger is not a new run. The change is against "
                 "the previous equal period.")
m[1].metric("First-attempt failure rate", display.percent(now_h.failure_rate),
            delta=display.points(now_h.failure_rate, prev_h.failure_rate), delta_color="inverse",
            help="Runs that failed when they first ran ÷ runs that ended (finished, failed or skipped), "
                 "whether re-triggered since or not.")
m[2].metric("Still failing", display.count(now_h.unresolved),
            delta=display.change(now_h.unresolved, prev_h.unresolved), delta_color="inverse",
            help="Of the runs that failed, those with no finished re-trigger (as of now).")
m[3].metric("Median duration", display.duration(now_h.median_ms),
            delta=display.change(now_h.median_ms, prev_h.median_ms), delta_color="inverse",
            help="Of the runs that ended, as they first ran.")
m[4].metric("Re-triggers", display.count(now_h.retriggers),
            delta=display.change(now_h.retriggers, prev_h.retriggers), delta_color="off",
            help="Re-triggers started in the range, of runs from any time.")
if now_h.retriggers:
    m[4].caption(f"{display.count(now_h.retriggers_failed)} failed again")
if view.estimated:
    st.caption(f"This range holds over {display.count(EXACT_MAX)} runs: the median, p50 and p95 durations are "
               "estimated from per-hour histograms (within 0.5%); every count is exact.")
if now_h.unresolved:
    m[2].page_link(pages.RUNS, label="Open them", icon="🔁",
                   query_params=runs_link(window, unresolved=True, utc=in_utc()))

if now_h.runs == 0 and now_h.retriggers == 0:
    st.info("No runs started in this range.", icon="📭")
    st.stop()

# ---------------------------------------------------------------- over time
def wall(times: pl.Series | list[datetime]) -> list[datetime]:
    """Instants as the zone's wall-clock times: Plotly draws a datetime's own clock and drops its zone."""
    return [t.astimezone(tz).replace(tzinfo=None) for t in (times.to_list() if isinstance(times, pl.Series) else times)]


PERIOD_MS = {"hour": HOUR_MS, "day": DAY_MS, "week": 7 * DAY_MS}[window.bucket]
# Every chart over time spans the whole range, so their buckets line up one above the other.
X_AXIS: dict[str, Any] = {"range": wall([window.start, window.end]), "type": "date"}
if window.bucket != "hour":  # a day's or week's label under its bar, not a tick at noon
    X_AXIS |= {"ticklabelmode": "period", "tickformat": "%a %b %-d" if window.bucket == "day" else "%b %-d"}


def period(rows: pl.DataFrame) -> dict[str, Any]:
    """A bar spanning its bucket (from its start), not centred on the start."""
    return {"xperiod": PERIOD_MS, "xperiod0": wall(rows["bucket"][:1])[0], "xperiodalignment": "middle"} \
        if not rows.is_empty() else {}


buckets = view.buckets
st.subheader("Runs over time")
st.caption(f"Each run once, in the {window.bucket} it first ran. Click a bar to open those runs.")
segments = bar_segments(buckets)
fig = go.Figure()
for seg in segments:
    fig.add_bar(x=wall(seg.rows["bucket"]), y=seg.rows["runs"].to_list(), name=seg.name, marker_color=color(seg),
                hovertemplate="%{x}<br>%{y:,} runs<extra>" + seg.name + "</extra>", **period(seg.rows))
fig.update_layout(barmode="stack", height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10}, xaxis=X_AXIS,
                  legend={"orientation": "h", "y": -0.15}, clickmode="event+select", bargap=0.1, separators=".,")
event = st.plotly_chart(fig, key=f"ov_bars_{window.bucket}", on_select="rerun", selection_mode="points",
                        config={"displayModeBar": False})
for point in (event.selection.points if event and event.selection else [])[:1]:
    seg = segments[point["curve_number"]]
    row = seg.rows.row(point["point_index"], named=True)
    open_runs(row["bucket"], row["bucket_end"], statuses=(seg.status,), unresolved=seg.unresolved,
              resolved=seg.resolved)

again = view.retriggers
if not again.is_empty():
    # Their own chart and scale: a bulk fix replays hundreds in an hour, which would flatten the runs' bars.
    st.subheader("Re-triggers")
    st.caption(f"Re-triggers started in each {window.bucket}, of runs from any time, and how many failed again.")
    replays = go.Figure()
    replays.add_bar(x=wall(again["bucket"]), y=(again["runs"] - again["failed"]).to_list(), name="Did not fail",
                    marker_color=RETRIGGER_COLOR, hovertemplate="%{x}<br>%{y:,}<extra>did not fail</extra>",
                    **period(again))
    replays.add_bar(x=wall(again["bucket"]), y=again["failed"].to_list(), name="Failed again",
                    marker_color=COLORS["failed"], hovertemplate="%{x}<br>%{y:,}<extra>failed again</extra>",
                    **period(again))
    replays.update_layout(barmode="stack", height=180, margin={"l": 10, "r": 10, "t": 10, "b": 10}, xaxis=X_AXIS,
                          legend={"orientation": "h", "y": -0.3}, bargap=0.1, separators=".,")
    st.plotly_chart(replays, key=f"ov_replays_{window.bucket}", config={"displayModeBar": False})

rates = view.rates.filter(pl.col("ended") > 0)
st.subheader("First-attempt failure rate")
st.caption("Runs that failed when they first ran ÷ runs that ended, per bucket. Click a point to open them.")
line = go.Figure(go.Scatter(
    x=wall(rates["bucket"]), y=rates["failure_rate"].to_list(), mode="lines+markers",
    line={"color": COLORS["failed"]}, customdata=rates["failed"].to_list(),
    hovertemplate="%{x}<br>%{y:.1%} (%{customdata:,} failed)<extra></extra>", **period(rates)))
line.update_layout(height=220, margin={"l": 10, "r": 10, "t": 10, "b": 10}, yaxis={"tickformat": ".0%"},
                   xaxis=X_AXIS, clickmode="event+select", separators=".,")
event = st.plotly_chart(line, key=f"ov_rate_{window.bucket}", on_select="rerun", selection_mode="points",
                        config={"displayModeBar": False})
for point in (event.selection.points if event and event.selection else [])[:1]:
    row = rates.row(point["point_index"], named=True)
    open_runs(row["bucket"], row["bucket_end"], statuses=("failed",))

# ---------------------------------------------------------------- per workflow
st.subheader("Workflows")
st.caption("Each run once, as it first ran; still failing after its re-triggers, or not. Select a row to open "
           "its runs in this range.")
per = view.per_workflow
COUNT = st.column_config.NumberColumn(format=display.COUNT_FORMAT)
picked = st.dataframe(
    {"Workflow": per["workflow"], "Runs": per["runs"], "Failed": per["failed"], "Still failing": per["unresolved"],
     "Re-triggers": per["retriggers"],
     "First-attempt failure rate": [display.percent(r) for r in per["failure_rate"].to_list()],
     "p50": [display.duration(v) for v in per["p50_ms"].to_list()],
     "p95": [display.duration(v) for v in per["p95_ms"].to_list()],
     "Last failure": [display.local_time(t, tz) for t in per["last_failure"].to_list()]},
    hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row", key="ov_per_workflow",
    column_config={"Runs": COUNT, "Failed": COUNT, "Still failing": COUNT, "Re-triggers": COUNT})
if picked and picked.selection.rows:
    open_runs(workflows=(per["workflow_id"][picked.selection.rows[0]],))

# ---------------------------------------------------------------- errors
st.subheader("Top errors")
st.caption("Failures grouped by message, with IDs, numbers and quoted values taken out (# and …); a failure "
           "and its failed re-triggers count once. "
           "Select a row to open the failed runs of the workflows it hit.")
errors = view.top_errors
picked = st.dataframe(
    {"Error": errors["pattern"], "Failures": errors["failures"],
     "First seen": [display.local_time(t, tz) for t in errors["first_seen"].to_list()],
     "Last seen": [display.local_time(t, tz) for t in errors["last_seen"].to_list()],
     "Workflows": [", ".join(w) for w in errors["workflows"].to_list()],
     "Example": errors["example"]},
    hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row", key="ov_errors",
    column_config={"Error": st.column_config.TextColumn(width="large"), "Failures": COUNT})
if picked and picked.selection.rows:
    open_runs(statuses=("failed",), error=errors["pattern"][picked.selection.rows[0]])

by_kind, by_app = view.by_kind, view.by_app
kind_col, app_col = st.columns(2)
for col, data, key, title in ((kind_col, by_kind, "kind", "Failures by kind"),
                              (app_col, by_app, "app", "Failures by app")):
    with col:
        st.subheader(title)
        # Plotly draws a few HTML tags in labels: kinds and apps come from the logs, so escape them.
        chart = go.Figure(go.Bar(x=data["failures"].to_list(), y=[html.escape(v) for v in data[key].to_list()],
                                 orientation="h",
                                 marker_color=COLORS["failed"], hovertemplate="%{y}: %{x:,}<extra></extra>"))
        chart.update_layout(height=60 + 28 * max(len(data), 1), margin={"l": 10, "r": 10, "t": 10, "b": 10},
                            yaxis={"autorange": "reversed"}, clickmode="event+select", separators=".,")
        st.caption("Click a bar to open those failed runs.")
        event = st.plotly_chart(chart, key=f"ov_by_{key}", on_select="rerun", selection_mode="points",
                                config={"displayModeBar": False})
        for point in (event.selection.points if event and event.selection else [])[:1]:
            value = data[key][point["point_index"]]
            if value not in ("(none)", "(unknown)"):  # no value to filter on
                kinds, apps = ((value,), ()) if key == "kind" else ((), (value,))
                open_runs(statuses=("failed",), kinds=kinds, apps=apps)
