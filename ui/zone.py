"""The one time zone every page tells time in: the browser's, or UTC while the sidebar's switch says so."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import streamlit as st

from fourgent import display

# A plain session key, not a widget's: Streamlit drops a widget's state on the runs of pages that do not
# draw it, and the choice must outlive a change of page. Each page's switch is a widget preset from it.
UTC_KEY = "tz_utc"
_SWITCH = "tz_switch"
UTC = ZoneInfo("UTC")


def browser() -> ZoneInfo:
    """The browser's zone when it told us a valid one, else UTC."""
    return display.zone(st.context.timezone)


def in_utc() -> bool:
    return bool(st.session_state.get(UTC_KEY))


def set_utc(on: bool) -> None:
    st.session_state[UTC_KEY] = on


def zone() -> ZoneInfo:
    """The zone times are shown in and days are cut in, on every page."""
    return UTC if in_utc() else browser()


def _switched() -> None:
    set_utc(bool(st.session_state[_SWITCH]))


def utc_switch() -> ZoneInfo:
    """The sidebar's "Times in UTC" switch (the same choice on every page); returns the zone it leaves."""
    st.session_state[_SWITCH] = in_utc()
    st.sidebar.toggle("Times in UTC", key=_SWITCH, on_change=_switched,
                      help=f"Off: times and days in your browser's zone ({browser().key}). One switch for every page.")
    return zone()

