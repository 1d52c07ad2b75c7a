"""Which process this is, and whether another still runs: re-trigger claims and replays belong to a live process."""

from __future__ import annotations

import os


def _started(pid: int) -> str | None:
    """When `pid` started (clock ticks since boot, from /proc): a pid reused by a later process reads otherwise."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19].decode() if len(fields) > 19 else None


def me() -> str:
    """This process as claims record it: "pid:start" (asked each time: a forked child is another process)."""
    pid = os.getpid()
    return f"{pid}:{_started(pid) or ''}"


def alive(owner: str | None) -> bool:
    """Whether the process `owner` names (as `me` wrote it) still runs. None (no owner recorded): not alive."""
    if not owner:
        return False
    pid_text, _, started = owner.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    now = _started(pid)
    if now is not None:
        return not started or now == started
    if os.path.isdir("/proc"):
        return False  # /proc is there and has no such process
    try:  # no /proc (macOS): the pid alone
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
