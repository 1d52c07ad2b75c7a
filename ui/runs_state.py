"""The Runs page's state: a RunsQuery held in widgets under the `f_` keys, bound to the page's URL."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import streamlit as st

from fourgent.filters import RunsQuery
from fourgent.spec import STATUSES
from ui.url_state import UrlBinding, WidgetValues
from ui.zone import UTC_KEY, browser


def _to_widgets(q: RunsQuery) -> dict[str, Any]:
    days: tuple[date, ...] = ()
    if q.window:
        # The date picker shows the window's days as this page tells time.
        tz = q.zone(browser())
        days = (q.window[0].astimezone(tz).date(), (q.window[1] - timedelta(microseconds=1)).astimezone(tz).date())
    elif q.days:
        days = q.days
    return {"f_q": q.q, "f_status": list(q.statuses), "f_workflow": list(q.workflows), "f_range": q.range,
            "f_dates": days, "f_window": q.window, "f_page": q.page, "f_size": q.size, "f_oldest": q.oldest,
            "f_unresolved": q.unresolved, "f_kind": list(q.kinds), "f_app": list(q.apps),
            "f_error": q.error, "f_originals": q.originals, "f_resolved": q.resolved,
            # A link's utc=1 turns the one zone switch on; a link without it leaves the switch as it is (the
            # sidebar's Runs entry has no parameters), and the page's URL then says what the switch says.
            **({UTC_KEY: True} if q.utc else {})}


def _from_widgets(ss: WidgetValues) -> RunsQuery:
    rng = ss.get("f_range", "any")
    window = ss.get("f_window") if rng == "custom" else None
    picked = tuple(ss.get("f_dates") or ()) if rng == "custom" and not window else ()
    return RunsQuery(
        q=str(ss.get("f_q", "")), statuses=tuple(s for s in STATUSES if s in ss.get("f_status", [])),
        workflows=tuple(ss.get("f_workflow", [])), range=rng,
        days=(picked[0], picked[-1]) if picked else None, window=window,
        page=int(ss.get("f_page", 1)), size=int(ss.get("f_size", 50)), oldest=bool(ss.get("f_oldest")),
        utc=bool(ss.get(UTC_KEY)), unresolved=bool(ss.get("f_unresolved")), kinds=tuple(ss.get("f_kind", [])),
        apps=tuple(ss.get("f_app", [])), error=str(ss.get("f_error", "")), originals=bool(ss.get("f_originals")),
        resolved=bool(ss.get("f_resolved")))


RUNS_URL: UrlBinding[RunsQuery] = UrlBinding("_f_url", RunsQuery.parse, RunsQuery.params, _to_widgets, _from_widgets)


def filter_changed() -> None:
    st.session_state["f_page"] = 1
    st.session_state.pop("selected_id", None)


def clear_filters() -> None:
    """Every filter back to its default; the page size and the time zone stay."""
    keep = {"f_size"}
    st.session_state.update({k: v for k, v in _to_widgets(RunsQuery()).items() if k not in keep})
    st.session_state.pop("selected_id", None)
    st.session_state["_full_rerun"] = True  # the filter widgets sit outside the table's fragment


def drop_narrowed() -> None:
    st.session_state["f_kind"], st.session_state["f_app"], st.session_state["f_error"] = [], [], ""
    st.session_state["f_originals"] = st.session_state["f_resolved"] = False
    filter_changed()


def dates_changed() -> None:
    st.session_state["f_window"] = None  # whole days from the date picker replace an exact window
    filter_changed()


def only_status(status: str) -> None:
    st.session_state["f_status"] = [status]
    filter_changed()
    st.session_state["_full_rerun"] = True
