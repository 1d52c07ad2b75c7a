"""The Overview's state: a range (or custom days) and workflows, in widgets under the `ov_` keys and in its URL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from fourgent.filters import Params, runs_query
from fourgent.overview import Window
from ui.url_state import UrlBinding, WidgetValues

RANGES = {"24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days", "90d": "Last 90 days",
          "custom": "Custom dates"}
SPANS = {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30), "90d": timedelta(days=90)}
DEFAULT_RANGE = "7d"


@dataclass(frozen=True)
class OverviewQuery:
    """`/overview?range=24h|7d|30d|90d` or `?from=YYYY-MM-DD&to=YYYY-MM-DD`, and `workflow=` repeated."""

    range: str = DEFAULT_RANGE  # a key of RANGES; "custom" with `days` (none while the picker is emptied)
    days: tuple[date, date] | None = None
    workflows: tuple[str, ...] = ()

    @classmethod
    def parse(cls, params: Mapping[str, Sequence[str]]) -> OverviewQuery:
        rng = (list(params.get("range") or []) or [DEFAULT_RANGE])[-1]
        workflows = tuple(w for w in params.get("workflow", []) if w)
        try:
            days = sorted(date.fromisoformat(v) for v in (*list(params.get("from", []))[-1:],
                                                          *list(params.get("to", []))[-1:]))
        except ValueError:
            days = []
        if days:
            return cls("custom", (days[0], days[-1]), workflows)
        return cls(rng if rng in SPANS else DEFAULT_RANGE, None, workflows)

    def params(self) -> Params:
        out: Params = {}
        if self.days:
            out["from"], out["to"] = [self.days[0].isoformat()], [self.days[1].isoformat()]
        elif self.range in SPANS and self.range != DEFAULT_RANGE:
            out["range"] = [self.range]
        if self.workflows:
            out["workflow"] = list(self.workflows)
        return out


def _to_widgets(q: OverviewQuery) -> dict[str, Any]:
    widgets: dict[str, Any] = {"ov_range": q.range, "ov_workflow": list(q.workflows)}
    if q.days:
        widgets["ov_dates"] = q.days
    return widgets


def _from_widgets(ss: WidgetValues) -> OverviewQuery:
    rng = ss.get("ov_range", DEFAULT_RANGE)
    picked = tuple(ss.get("ov_dates") or ()) if rng == "custom" else ()
    return OverviewQuery(rng, (picked[0], picked[-1]) if picked else None, tuple(ss.get("ov_workflow", [])))


OVERVIEW_URL: UrlBinding[OverviewQuery] = UrlBinding(
    "_ov_url", OverviewQuery.parse, OverviewQuery.params, _to_widgets, _from_widgets,
    owns=frozenset({"range", "workflow", "from", "to"}))


def runs_link(window: Window, start: datetime | None = None, end: datetime | None = None, *, utc: bool = False,
              statuses: tuple[str, ...] = (), workflows: tuple[str, ...] = (), unresolved: bool = False,
              kinds: tuple[str, ...] = (), apps: tuple[str, ...] = (), error: str = "",
              resolved: bool = False) -> dict[str, str | list[str]]:
    """The Runs page's URL for what was clicked: the runs the Overview counted there. Originals only (as the
    Overview counts), within the range (the first and last buckets may reach outside it), of the range's
    workflows unless narrowed, in the same zone (the switch's utc)."""
    start, end = max(start or window.start, window.start), min(end or window.end, window.end)
    return runs_query(start, end, statuses=statuses, workflows=workflows or window.workflows, unresolved=unresolved,
                      kinds=kinds, apps=apps, error=error, resolved=resolved, originals=True, utc=utc).link()
