"""How values read on a page: status labels, empty references, local times and "3 min ago"."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

STATUS_LABELS = {
    "finished": "🟢 Finished",
    "failed": "🔴 Failed",
    "running": "🔵 Running",
    "pending": "🟡 Pending",
    "skipped": "⚪ Skipped",
}
EMPTY = "—"


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


def count(n: int | None) -> str:
    """The one way a count reads: "1,127"."""
    return EMPTY if n is None else f"{n:,}"


# A table's format for counts, the same grouping as `count` (Streamlit's printf-style column format).
COUNT_FORMAT = "%,d"


def reference(value: str | None) -> str:
    return value if value else EMPTY


def zone(name: str | None) -> ZoneInfo:
    """The browser's time zone when known and valid, else UTC."""
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(moment: datetime | None, tz: ZoneInfo, *, seconds: bool = True) -> str:
    if moment is None:
        return EMPTY
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return EMPTY
    now = now or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = (now - moment).total_seconds()
    if seconds < 0:
        return "in the future"
    for size, unit in ((86400 * 365, "y"), (86400 * 30, "mo"), (86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def duration(ms: float | None) -> str:
    if ms is None:
        return EMPTY
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


REPLAY_LABELS = {"finished": "✅ resolved", "failed": "❌ failed again", "running": "🔵 running",
                 "pending": "🟡 pending", "skipped": "⚪ skipped"}


# How a re-trigger was made (retriggers.mode), as the lineage and the table name it.
RETRIGGER_MODE_LABELS = {"replay": "re-trigger", "edited": "edited replay", "from step": "re-run from step"}


def replay_label(retrigger_of: str | None, latest_retrigger: str | None, mark: str | None = None) -> str:
    """The table's Re-trigger cell: how the run's latest re-trigger went, "handled" for a failure marked so,
    or ↩ for a run that is one (an edited replay, a re-run from step N)."""
    if latest_retrigger == "finished" or (latest_retrigger and mark != "handled"):
        return REPLAY_LABELS.get(latest_retrigger, latest_retrigger)
    if mark == "handled":
        return "✋ handled"
    if mark == "cancelled":
        return "⏹ cancelled"
    if retrigger_of:
        return "↩ edited replay" if mark == "edited" else f"↩ {mark}" if mark else "↩ replay"
    return ""


def percent(rate: float | None) -> str:
    return EMPTY if rate is None else f"{rate:.1%}"


def change(now: float | None, before: float | None) -> str | None:
    """A metric's change against the previous period, as a signed percentage (None when it cannot be said)."""
    if now is None or not before:
        return None
    return f"{(now - before) / before:+.1%}"


def points(now: float | None, before: float | None) -> str | None:
    """A rate's change in percentage points."""
    if now is None or before is None:
        return None
    return f"{(now - before) * 100:+.1f} pts"


def span(length: timedelta) -> str:
    """"24 hours", "7 days": a period's length in words."""
    hours = length.total_seconds() / 3600
    if hours < 48:
        return f"{hours:.0f} hours"
    return f"{hours / 24:.0f} days"


# Characters that change how the text around them is drawn without being seen: bidirectional overrides and
# isolates (`invoice\u202egpj.exe` reads "invoiceexe.jpg"), marks, and zero-width ones. Shown by name instead.
_HIDDEN = {c: f"⟨U+{ord(c):04X}⟩" for c in
           "\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"}
_HIDDEN_TABLE = str.maketrans(_HIDDEN)
MAX_DEPTH = 32  # levels of a nested value a page draws; deeper levels are summarised


def visible(text: str) -> str:
    """Text from a log or a person with its invisible direction and width controls shown by name."""
    return text.translate(_HIDDEN_TABLE)


def bounded(value: object, depth: int = MAX_DEPTH) -> object:
    """A nested value as a page may draw it: strings made `visible`, levels past `depth` summarised."""
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, dict | list):
        if depth <= 0:
            return f"… ({'object' if isinstance(value, dict) else 'list'} nested deeper than {MAX_DEPTH} levels)"
        if isinstance(value, dict):
            return {visible(str(k)): bounded(v, depth - 1) for k, v in value.items()}
        return [bounded(v, depth - 1) for v in value]
    return value


def loads(text: str | None) -> object:
    """A JSON value from the store for a page: too deep for Python's parser, it is summarised, not a crash."""
    if text is None:
        return None
    try:
        return bounded(json.loads(text))
    except RecursionError:
        return f"… (a value nested too deeply to show, {len(text):,} characters)"
