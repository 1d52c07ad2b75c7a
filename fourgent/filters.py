"""The Runs page's URL contract (`RunsQuery`) and the filter it stands for (`RunFilter`): the one home of both.

Every place that links to the Runs page or narrows runs builds one of these: the Runs page itself, the
Overview's click-throughs, the Workflows and Connections pages, and the CLI's `retrigger --query`. A query
string parses into a `RunsQuery` (anything malformed falls back to its default), prints back into the same
query string, says in words what it shows, and turns into a `RunFilter` for a moment and a time zone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import ClassVar, Literal
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo

from .spec import CANCELLED_KIND, STATUSES

PAGE_SIZES: tuple[int, ...] = (25, 50, 100)
DEFAULT_SIZE = 50
MAX_PAGE = 1_000_000  # beyond any real page; keeps LIMIT/OFFSET within the engines' integers
Preset = Literal["any", "1h", "24h", "7d", "30d", "custom"]
PRESETS: dict[str, str] = {"any": "Any time", "1h": "Last hour", "24h": "Last 24 hours", "7d": "Last 7 days",
                           "30d": "Last 30 days", "custom": "Custom dates"}
PRESET_SPAN: dict[str, timedelta] = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7),
                                     "30d": timedelta(days=30)}
# Dates a person can pick or link to; outside them a URL's from/to is ignored.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2999, 12, 31)
MAX_Q, MAX_KIND, MAX_APP, MAX_ERROR, MAX_REPEATS = 500, 100, 200, 2000, 10

Params = dict[str, list[str]]  # a query string: each key with all its values, in order


@dataclass(frozen=True)
class RunFilter:
    """Which runs: what every store engine's runs reader narrows by. Each field is one condition, all ANDed."""

    q: str = ""  # case-insensitive substring of reference or ID
    statuses: tuple[str, ...] = ()
    workflows: tuple[str, ...] = ()  # workflow ids
    start: datetime | None = None  # started_at >= start
    end: datetime | None = None  # started_at < end
    unresolved: bool = False  # only failed originals whose latest re-trigger did not finish
    kinds: tuple[str, ...] = ()  # failed runs with these error kinds (auth, validation, …)
    apps: tuple[str, ...] = ()  # failed runs whose failed step called one of these apps (runs.failed_app)
    error: str = ""  # failed runs whose error message has this pattern (as the Overview's Top errors group)
    originals: bool = False  # leave out re-triggers Fourgent ran: each run counted once, as it first fired
    resolved: bool = False  # only failed originals needing nothing more: resolved by a re-trigger, handled or cancelled

    # What the rollups can count: a filter that sets any other field is counted over the runs.
    # Every engine's rollup path applies each of these (the contract tests set each field on its own).
    ROLLUP_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"statuses", "workflows", "start", "end", "unresolved", "kinds", "apps"})

    def set_fields(self) -> frozenset[str]:
        """The fields this filter narrows by (those not at their default)."""
        return frozenset(f.name for f in fields(self) if getattr(self, f.name) != f.default)

    @property
    def rollup_answerable(self) -> bool:
        # The rollups' unresolved count leaves cancelled runs out; a filter asking for them counts the runs.
        return self.set_fields() <= self.ROLLUP_FIELDS and not (self.unresolved and CANCELLED_KIND in self.kinds)

    def bulk_selection(self) -> RunFilter | None:
        """What "re-trigger the failed runs matching these filters" takes: the unresolved failures among them
        (None when the filter's statuses leave no failed run)."""
        if self.statuses and "failed" not in self.statuses:
            return None
        return replace(self, statuses=("failed",), unresolved=True)

    def without_workflows(self, paused: Sequence[str], every_workflow: Sequence[str]) -> tuple[RunFilter | None,
                                                                                                  list[str]]:
        """This filter narrowed to workflows not in `paused` (None when none is left), and the paused ones it held."""
        if not paused:
            return self, []
        scope = self.workflows or tuple(every_workflow)
        held = [wf for wf in scope if wf in paused]
        active = tuple(wf for wf in scope if wf not in paused)
        return (replace(self, workflows=active) if active else None), held


def _one(params: Mapping[str, Sequence[str]], key: str, default: str = "") -> str:
    values = params.get(key) or [default]
    return values[-1]


def _day(value: str) -> date | None:
    try:
        day = date.fromisoformat(value) if value and "T" not in value else None
    except ValueError:
        return None
    return day if day is not None and FIRST_DAY <= day <= LAST_DAY else None


def _instant(value: str) -> datetime | None:
    """An ISO timestamp with its offset (from=/to= of an exact window, e.g. a bar of the Overview's chart)."""
    if "T" not in value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    if t.tzinfo is None or not FIRST_DAY.year <= t.year <= LAST_DAY.year:
        return None
    return t.astimezone(UTC)


def iso(t: datetime) -> str:
    """An instant as the URL writes it: UTC with Z."""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class RunsQuery:
    """The Runs page's URL: `?q=&status=failed,skipped&workflow=<id>&workflow=<id>&range=24h&from=&to=&page=&size=
    &order=oldest&tz=utc&unresolved=1&kind=auth&app=QuickBooks&error=<pattern>&originals=1&resolved=1` (documented
    in the README)."""

    q: str = ""
    statuses: tuple[str, ...] = ()  # in STATUSES order
    workflows: tuple[str, ...] = ()  # repeated in the URL: IDs may hold commas
    range: Preset = "any"  # "custom" exactly when `days` or `window` is set
    days: tuple[date, date] | None = None  # whole days [first, last] in the page's time zone
    window: tuple[datetime, datetime] | None = None  # an exact [start, end) in UTC, as an Overview bar links
    page: int = 1
    size: int = DEFAULT_SIZE
    oldest: bool = False
    utc: bool = False  # show (and read custom days) in UTC rather than the browser's zone
    unresolved: bool = False
    kinds: tuple[str, ...] = ()
    apps: tuple[str, ...] = ()
    error: str = ""
    originals: bool = False  # re-triggers left out (the Overview's click-throughs: a failure and its replays once)
    resolved: bool = False  # failed runs resolved by a re-trigger, handled or cancelled since (a bar's part)

    @classmethod
    def parse(cls, params: Mapping[str, Sequence[str]]) -> RunsQuery:
        """The query a URL holds; anything malformed falls back to its default rather than failing."""
        statuses = {v for value in params.get("status", []) for v in value.split(",")}
        rng = _one(params, "range", "any")
        days: tuple[date, date] | None = None
        window = _instant(_one(params, "from")), _instant(_one(params, "to"))
        start, end = _day(_one(params, "from")), _day(_one(params, "to"))
        exact: tuple[datetime, datetime] | None = None
        if window[0] and window[1] and window[0] < window[1]:
            exact = (window[0], window[1])
        elif start or end:
            picked = sorted(d for d in (start, end) if d)  # one day alone (from= or to=) is that day
            days = (picked[0], picked[-1])
        try:
            page = min(max(1, int(_one(params, "page", "1"))), MAX_PAGE)
        except ValueError:
            page = 1
        size = _one(params, "size", str(DEFAULT_SIZE))
        return cls(
            q=_one(params, "q")[:MAX_Q],
            statuses=tuple(s for s in STATUSES if s in statuses),
            workflows=tuple(w for w in params.get("workflow", []) if w),
            range="custom" if exact or days else (rng if rng in PRESET_SPAN else "any"),  # type: ignore[arg-type]
            days=days,
            window=exact,
            page=page,
            size=int(size) if size in {str(s) for s in PAGE_SIZES} else DEFAULT_SIZE,
            oldest=_one(params, "order") == "oldest",
            utc=_one(params, "tz") == "utc",
            unresolved=_one(params, "unresolved") == "1",
            kinds=tuple(v[:MAX_KIND] for v in params.get("kind", []) if v)[:MAX_REPEATS],
            apps=tuple(v[:MAX_APP] for v in params.get("app", []) if v)[:MAX_REPEATS],
            error=_one(params, "error")[:MAX_ERROR],
            originals=_one(params, "originals") == "1",
            resolved=_one(params, "resolved") == "1",
        )

    @staticmethod
    def ignored(params: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
        """What `parse` set aside of a URL, as (key=value, why) for the page to say: a link never fails, but it
        should not narrow less than it seems to without saying so."""
        out: list[tuple[str, str]] = []
        dates = f"a date from {FIRST_DAY} to {LAST_DAY}, or an ISO time with its offset in those years"
        for key in ("from", "to"):
            value = _one(params, key)
            if value and _day(value) is None and _instant(value) is None:
                out.append((f"{key}={value}", f"not {dates}"))
        start, end = _instant(_one(params, "from")), _instant(_one(params, "to"))
        if start and end and start >= end:
            out.append((f"from={_one(params, 'from')}", "not before to=; the dates are ignored"))
        if (rng := _one(params, "range")) and rng not in PRESET_SPAN and rng != "any":
            out.append((f"range={rng}", "not one of " + ", ".join(PRESET_SPAN)))
        unknown = [v for value in params.get("status", []) for v in value.split(",") if v and v not in STATUSES]
        if unknown:
            out.append((f"status={','.join(unknown)}", "not a status (" + ", ".join(STATUSES) + ")"))
        page = _one(params, "page")
        if page and not (page.isdigit() and int(page) >= 1):  # past MAX_PAGE it is the last page: no need to say
            out.append((f"page={page}", "not a page number (1 or more)"))
        if (size := _one(params, "size")) and size not in {str(s) for s in PAGE_SIZES}:
            out.append((f"size={size}", "not one of " + ", ".join(map(str, PAGE_SIZES))))
        return out

    @classmethod
    def from_string(cls, query: str) -> RunsQuery:
        """A query string as a URL or `retrigger --query 'status=failed&kind=auth'` writes it."""
        return cls.parse(parse_qs(query.lstrip("?"), keep_blank_values=False))

    def params(self) -> Params:
        """The URL query for this view: only what differs from the defaults, so links stay short."""
        out: Params = {}
        if self.q:
            out["q"] = [self.q]
        if self.statuses:
            out["status"] = [",".join(self.statuses)]
        if self.workflows:
            out["workflow"] = list(self.workflows)
        if self.window:
            out["from"], out["to"] = [iso(self.window[0])], [iso(self.window[1])]
        elif self.days:
            out["from"], out["to"] = [self.days[0].isoformat()], [self.days[1].isoformat()]
        elif self.range != "any" and self.range != "custom":
            out["range"] = [self.range]
        if self.page != 1:
            out["page"] = [str(self.page)]
        if self.size != DEFAULT_SIZE:
            out["size"] = [str(self.size)]
        if self.oldest:
            out["order"] = ["oldest"]
        if self.utc:
            out["tz"] = ["utc"]
        if self.unresolved:
            out["unresolved"] = ["1"]
        if self.kinds:
            out["kind"] = list(self.kinds)
        if self.apps:
            out["app"] = list(self.apps)
        if self.error:
            out["error"] = [self.error]
        if self.originals:
            out["originals"] = ["1"]
        if self.resolved:
            out["resolved"] = ["1"]
        return out

    def to_string(self) -> str:
        """The query string of `params()`, as `from_string` reads it back (the audit records a bulk's filter so)."""
        return urlencode(self.params(), doseq=True)

    def link(self) -> dict[str, str | list[str]]:
        """`params()` as st.page_link / st.switch_page take query_params (single values unwrapped)."""
        return {k: v[0] if len(v) == 1 and k not in ("workflow", "kind", "app") else v
                for k, v in self.params().items()}

    def zone(self, browser_zone: ZoneInfo) -> ZoneInfo:
        return ZoneInfo("UTC") if self.utc else browser_zone

    def filter(self, now: datetime, zone: ZoneInfo) -> RunFilter:
        """The runs this view shows at `now`; custom days are whole days in `zone`."""
        start = end = None
        if self.window:
            start, end = self.window
        elif self.days:
            start = datetime.combine(self.days[0], time.min, tzinfo=zone)
            end = datetime.combine(self.days[1] + timedelta(days=1), time.min, tzinfo=zone)
        elif self.range in PRESET_SPAN:
            start = now - PRESET_SPAN[self.range]
        return RunFilter(q=self.q.strip(), statuses=self.statuses, workflows=self.workflows, start=start, end=end,
                         unresolved=self.unresolved, kinds=self.kinds, apps=self.apps, error=self.error,
                         originals=self.originals, resolved=self.resolved)

    def narrowed(self) -> list[tuple[str, tuple[str, ...]]]:
        """The conditions a link set that have no widget of their own (kind, app, error), for a removable line."""
        parts = [("kind", self.kinds), ("app", self.apps), ("error", (self.error,) if self.error else ()),
                 ("re-triggers", ("left out",) if self.originals else ()),
                 ("resolved", ("since: re-triggered, handled or cancelled",) if self.resolved else ())]
        return [(name, values) for name, values in parts if values]

    def describe(self, workflow_names: Mapping[str, str] | None = None, zone: ZoneInfo | None = None) -> str:
        """The view in words, e.g. "Failed runs of HubSpot Closed Won → QuickBooks Invoice where the error reads …"."""
        names = workflow_names or {}
        what = " or ".join(s for s in self.statuses) if self.statuses else ""
        subject = (f"{'Unresolved ' if self.unresolved else ''}{what} runs" if what
                   else ("Unresolved failed runs" if self.unresolved else "Runs"))
        subject = subject[0].upper() + subject[1:]
        parts = [subject]
        if self.workflows:
            parts.append("of " + " or ".join(names.get(w, w) for w in self.workflows))
        tz = self.zone(zone or ZoneInfo("UTC"))
        if self.window:
            start, end = (t.astimezone(tz) for t in self.window)
            parts.append(f"started {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} ({tz.key})")
        elif self.days:
            parts.append(f"started {self.days[0]:%Y-%m-%d} – {self.days[1]:%Y-%m-%d} ({tz.key})")
        elif self.range in PRESET_SPAN:
            parts.append(f"started in the {PRESETS[self.range].lower()}")
        conditions = []
        if self.q:
            conditions.append(f"the reference or ID contains “{self.q}”")
        if self.kinds:
            conditions.append("the error kind is " + " or ".join(self.kinds))
        if self.apps:
            conditions.append("the failed step called " + " or ".join(self.apps))
        if self.error:
            conditions.append(f"the error reads “{self.error}”")
        if self.originals:
            conditions.append("the run is not a re-trigger")
        if self.resolved:
            conditions.append("it needs nothing more (resolved by a re-trigger, handled or cancelled)")
        if conditions:
            parts.append("where " + " and ".join(conditions))
        return " ".join(parts)


def runs_query(start: datetime | None = None, end: datetime | None = None, **fields_: object) -> RunsQuery:
    """A Runs query for an exact window (clicked bars and rows of other pages) and any other fields."""
    window = (start.astimezone(UTC), end.astimezone(UTC)) if start is not None and end is not None else None
    return RunsQuery(window=window, range="custom" if window else "any", **fields_)  # type: ignore[arg-type]


__all__ = ["PAGE_SIZES", "PRESETS", "Params", "RunFilter", "RunsQuery", "runs_query"]
