"""Explore: ad-hoc SQL over the documented views, through the store's guard, with the query in the URL."""

from __future__ import annotations

import html
import io
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.express as px
import polars as pl
import streamlit as st

from fourgent import export, results
from fourgent.access import Role
from fourgent.config import sql_time_limit
from fourgent.filters import Params
from fourgent.store import QueryError, QueryFailed, QueryRefused, QueryStopped, SqlResult
from ui.auth import actor
from ui.text import literal
from ui.url_state import UrlBinding
from ui.workspace import workspace
from ui.zone import utc_switch

PAGE_ROWS = 100
HISTORY = 20
SCHEMA_DOC = Path(__file__).resolve().parent.parent / "docs" / "schema.md"


@dataclass(frozen=True)
class ExploreQuery:
    """`/explore?sql=…`: the query last run, so a copied link reproduces it."""

    sql: str = ""

    @classmethod
    def parse(cls, params: Mapping[str, Sequence[str]]) -> ExploreQuery:
        return cls((list(params.get("sql") or []) or [""])[-1])

    def params(self) -> Params:
        return {"sql": [self.sql]} if self.sql else {}


@dataclass(frozen=True)
class Outcome:
    """What running one query gave: its result, or the refusal, stop or error in words."""

    sql: str
    seconds: float
    result: SqlResult | None = None
    refused: str | None = None
    stopped: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Ran:
    """One entry of this session's history."""

    sql: str
    rows: int | None


def _to_widgets(q: ExploreQuery) -> dict[str, Any]:
    return {"x_linked": q.sql, "x_sql": q.sql} if q.sql else {}


EXPLORE_URL: UrlBinding[ExploreQuery] = UrlBinding(
    "_x_url", ExploreQuery.parse, ExploreQuery.params, _to_widgets,
    lambda ss: ExploreQuery(str(ss.get("x_linked", ""))))

ws = workspace()
tz = utc_switch()


def run_query(sql: str) -> None:
    """Run through the store's guard on a cursor of its own (the time limit interrupts only this query)."""
    st.session_state["x_page"] = 1
    started = time.perf_counter()
    try:
        result = ws.store.run_sql(sql, max_rows=results.MAX_ROWS, time_limit=sql_time_limit(),
                                  with_audit=actor().role >= Role.ADMIN)  # who did what: admins only
        outcome = Outcome(sql, time.perf_counter() - started, result=result)
    except QueryRefused as exc:
        outcome = Outcome(sql, time.perf_counter() - started, refused=str(exc))
    except (QueryStopped, QueryFailed) as exc:
        outcome = Outcome(sql, time.perf_counter() - started, stopped=str(exc))
    except QueryError as exc:  # the engine's own words for a bad query; never a traceback
        outcome = Outcome(sql, time.perf_counter() - started, error=str(exc))
    st.session_state["x_outcome"] = outcome
    history: list[Ran] = [h for h in st.session_state.get("x_history", []) if h.sql != sql]
    history.insert(0, Ran(sql, outcome.result.total if outcome.result else None))
    st.session_state["x_history"] = history[:HISTORY]
    st.session_state["x_linked"] = sql  # the URL now names this query: not a link to load
    EXPLORE_URL.publish()


def use(sql: str) -> None:
    st.session_state["x_sql"] = sql


# A link with ?sql= puts the query in the editor and waits for a click: a link never runs anything by
# itself (another site could frame it). The editor's state is gone too when the browser's Back button returns
# here (Streamlit drops the state of widgets another page's run did not draw): the URL restores it.
EXPLORE_URL.load()
st.session_state.setdefault("x_sql", next(iter(ws.store.examples.values())))
last_run: Outcome | None = st.session_state.get("x_outcome")
waiting = bool(EXPLORE_URL.state().sql) and (last_run is None or last_run.sql != st.session_state["x_sql"])

st.title("Explore")
st.caption(f"Read-only SQL (DuckDB) over the views runs, steps, rejected_lines and comments. One statement; "
           f"stopped after {sql_time_limit():g} s; the first {results.MAX_ROWS:,} rows are kept.")

with st.form("x_form", border=False):
    st.text_area("SQL", key="x_sql", height=200, label_visibility="collapsed",
                 placeholder="SELECT status, count(*) FROM runs GROUP BY ALL")
    submitted = st.form_submit_button("▶ Run", type="primary", help="Ctrl+Enter (⌘+Enter) runs it too")
if submitted:
    run_query(st.session_state["x_sql"])
elif waiting:
    st.info("This query came with a link: read it, then press Run to run it.", icon="🔗")

cols = st.columns(3)
with cols[0].popover("Example queries", width="stretch"):
    for title, sql in ws.store.examples.items():
        st.button(title, key=f"x_ex_{title}", on_click=use, args=(sql,), width="stretch")
with cols[1].popover("Views and columns", width="stretch"):
    docs = results.schema_docs(SCHEMA_DOC)
    for view, tab in zip(docs, st.tabs(list(docs)), strict=True):
        with tab:
            st.dataframe({"Column": [c[0] for c in docs[view]], "Type": [c[1] for c in docs[view]],
                          "Meaning": [c[2].replace("`", "") for c in docs[view]]},
                         hide_index=True, width="stretch")
with cols[2].popover("This session's queries", width="stretch"):
    history = st.session_state.get("x_history", [])
    if not history:
        st.text("None yet.")
    for i, h in enumerate(history):
        label = h.sql.strip().splitlines()[0][:80]
        ran = f"{h.rows:,} rows" if h.rows is not None else "did not run"
        st.button(f"{literal(label)} · {ran}", key=f"x_hist_{i}", on_click=use, args=(h.sql,), width="stretch")

# ---------------------------------------------------------------- the outcome
outcome: Outcome | None = st.session_state.get("x_outcome")
if not outcome:
    st.stop()
if outcome.refused is not None:
    st.warning("Not run: this page only reads the documented views.", icon="🛡️")
    st.code(outcome.refused, language=None, wrap_lines=True)
    st.stop()
if outcome.stopped is not None:
    st.error(outcome.stopped, icon="⏱️")
    st.stop()
if outcome.error is not None or outcome.result is None:
    st.error(f"{ws.store.engine} could not run the query:", icon="⚠️")
    st.code(outcome.error or "", language=None, wrap_lines=True)
    st.stop()

result = outcome.result
frame = result.frame
shown = f"the first {frame.height:,} of " if result.capped else ""
st.caption(f"{shown}{result.total:,} row{'s' if result.total != 1 else ''} · {result.seconds * 1000:,.0f} ms")
if result.capped:
    st.info(f"{result.total - frame.height:,} more rows were counted but not kept: add a LIMIT or narrow the WHERE.",
            icon="✂️")
page_count = max(1, -(-frame.height // PAGE_ROWS))
st.session_state["x_page"] = page = min(max(int(st.session_state.get("x_page", 1)), 1), page_count)
if page_count > 1:
    page = st.columns([1, 3])[0].number_input(f"Page (of {page_count:,}, {PAGE_ROWS} rows each)", min_value=1,
                                               max_value=page_count, key="x_page")
st.dataframe(results.in_zone(frame.slice((page - 1) * PAGE_ROWS, PAGE_ROWS), tz.key), hide_index=True,
             width="stretch")
st.caption(f"Timestamps in {tz.key}, as on every page; the downloads keep them in UTC.")

downloads = st.columns(2)
downloads[0].download_button(
    f"Download {frame.height:,} rows as CSV", icon="⬇️", file_name="fourgent-query.csv", mime="text/csv",
    data=export.frame_csv(frame), on_click="ignore")
parquet = io.BytesIO()
try:
    frame.write_parquet(parquet)
except pl.exceptions.PolarsError as exc:  # a type Parquet cannot hold: say so, keep the page
    downloads[1].text(f"No Parquet for this result ({type(exc).__name__}).")
else:
    downloads[1].download_button(f"Download {frame.height:,} rows as Parquet", icon="⬇️",
                                 file_name="fourgent-query.parquet", data=parquet.getvalue(),
                                 mime="application/vnd.apache.parquet", on_click="ignore")

# A time column and a number: offer a chart of it.
times = [c for c, t in frame.schema.items() if t.is_temporal()]
numbers = [c for c, t in frame.schema.items() if t.is_numeric() and not c.endswith("_epoch")]
texts = [c for c, t in frame.schema.items() if t == pl.String]
if times and numbers and frame.height:
    with st.expander("Chart", expanded=True):
        c = st.columns(3)
        x = c[0].selectbox("Time", times, key="x_chart_x")
        y = c[1].selectbox("Value", numbers, key="x_chart_y")
        color = c[2].selectbox("Split by", [None, *texts], key="x_chart_color",
                               format_func=lambda v: "—" if v is None else v)
        data = frame.sort(x)
        if color:  # plotly draws some HTML in legends: text from the store is escaped
            data = data.with_columns(pl.col(color).map_elements(html.escape, return_dtype=pl.String))
        # Column names come from the query (a shared link can carry any alias): axis, legend and hover
        # titles get them escaped, as plotly reads a little HTML there too.
        labels = {c: html.escape(c) for c in (x, y, color) if c}
        fig = px.line(data.to_pandas(), x=x, y=y, color=color, markers=True, labels=labels)
        fig.update_layout(height=360, margin={"l": 10, "r": 10, "t": 10, "b": 10})
        st.plotly_chart(fig, config={"displayModeBar": False})
