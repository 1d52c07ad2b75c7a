"""The URL↔widget binder: one page's typed state in its widgets' session keys, and in its URL.

Streamlit drops a widget's state when a run of another page does not draw it, so after the browser's Back
button the URL is the only record of a page's view: `load` writes the widgets from the URL whenever the URL
changed from outside (a pasted link, a clicked chart on another page) or the widgets' state is gone, and
`publish` writes the page's state back into the URL once per run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, overload

import streamlit as st

from fourgent.filters import Params

State = TypeVar("State")


class WidgetValues(Protocol):
    """What a page's `from_widgets` reads its widgets' values from: st.session_state, or any Mapping[str, Any]."""

    @overload
    def get(self, key: str, /) -> Any: ...
    @overload
    def get(self, key: str, default: Any, /) -> Any: ...


def current_url() -> Params:
    return {k: st.query_params.get_all(k) for k in st.query_params}


@dataclass(frozen=True)
class UrlBinding(Generic[State]):
    """How one page's state reads from and writes to its URL and its widgets (keys under one prefix)."""

    name: str  # the session key holding the URL this page last loaded or published
    parse: Callable[[Mapping[str, list[str]]], State]
    params: Callable[[State], Params]
    to_widgets: Callable[[State], Mapping[str, Any]]
    from_widgets: Callable[[WidgetValues], State]
    # URL keys this page owns. With any other key in the URL, the URL is not this page's: st.switch_page(
    # query_params=) first sets the next page's parameters on this page's URL, then changes page, so the
    # browser's Back button lands on that entry. It stands for this page as last shown.
    owns: frozenset[str] | None = None

    def load(self) -> bool:
        """Put the URL's state in the widgets when it changed from outside or their state is gone; True if so."""
        url = current_url()
        last = st.session_state.get(self.name)
        if self.owns is not None and set(url) - self.owns and last is not None:
            url = last
        widgets = self.to_widgets(self.parse(url))
        if last == url and all(k in st.session_state for k in widgets):
            return False
        st.session_state.update(widgets)
        st.session_state[self.name] = url
        return True

    def state(self) -> State:
        """The page's state as its widgets hold it now."""
        return self.from_widgets(st.session_state)

    def publish(self, state: State | None = None) -> Params:
        """Write the state (the widgets' by default) into the URL, unless it already says so."""
        params = self.params(self.state() if state is None else state)
        if params != current_url():
            st.query_params.from_dict(params)
        st.session_state[self.name] = params
        return params
