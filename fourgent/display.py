"""How values read on a page: status labels, empty references, local times and "3 min ago"."""

from __future__ import annotations

from datetime import UTC, datetime
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


def reference(value: str | None) -> str:
    return value if value else EMPTY


def zone(name: str | None) -> ZoneInfo:
    """The browser's time zone when known and valid, else UTC."""
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(moment: datetime | None, tz: ZoneInfo) -> str:
    if moment is None:
        return EMPTY
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


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


def duration(ms: int | None) -> str:
    if ms is None:
        return EMPTY
    if ms < 1000:
        return f"{ms} ms"
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


def replay_label(run_id: str, retrigger_of: str | None, latest_retrigger: str | None) -> str:
    """The table's Re-trigger cell: how the run's latest re-trigger went, or ↩ for a run that is one."""
    if latest_retrigger:
        return REPLAY_LABELS.get(latest_retrigger, latest_retrigger)
    return "↩ replay" if retrigger_of else ""
