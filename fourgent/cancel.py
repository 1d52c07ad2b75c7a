"""Cancelling runs this process's executor is running: one flag per live run, which the executor checks between
steps, before each attempt and throughout a backoff or Retry-After wait."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .access import Action, Actor
from .audit import perform
from .store import Store


@dataclass
class CancelFlag:
    """Set once, by whoever cancels; the executor reads who from it for the run's message."""

    event: threading.Event = field(default_factory=threading.Event)
    who: str = ""

    def is_set(self) -> bool:
        return self.event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking at once on a cancel; True when cancelled."""
        return self.event.wait(max(0.0, seconds))


class LiveRuns:
    """The runs this process is executing now. Runs in the store that are not here (written by an outside engine,
    or by a process that has gone) cannot be cancelled from this one."""

    def __init__(self) -> None:
        self._flags: dict[str, CancelFlag] = {}
        self._batches: dict[int, tuple[threading.Event, dict[str, str]]] = {}  # bulk re-triggers under way
        self._lock = threading.Lock()

    def batch(self, stop: threading.Event, started: dict[str, str]) -> int:
        """A bulk re-trigger under way (its stop, and its replays so far): cancelling one of its runs stops it
        starting more, or a bulk cancel would see the next ones start at once."""
        with self._lock:
            key = id(stop)
            self._batches[key] = (stop, started)
            return key

    def batch_done(self, key: int) -> None:
        with self._lock:
            self._batches.pop(key, None)

    def start(self, run_id: str) -> CancelFlag:
        with self._lock:
            return self._flags.setdefault(run_id, CancelFlag())

    def end(self, run_id: str) -> None:
        with self._lock:
            self._flags.pop(run_id, None)

    def live(self, run_ids: Iterable[str] | None = None) -> set[str]:
        with self._lock:
            return set(self._flags) if run_ids is None else {r for r in run_ids if r in self._flags}

    def cancel(self, run_id: str, who: str) -> bool:
        """Ask a live run to stop; False when this process is not running it (or it was cancelled already)."""
        with self._lock:
            flag = self._flags.get(run_id)
            if flag is None or flag.is_set():
                return False
            flag.who = who
            flag.event.set()
            for stop, started in self._batches.values():
                if run_id in started.values():
                    stop.set()
            return True


LIVE = LiveRuns()  # the process's: one executor pool per process holds the store


# ---------------------------------------------------------------- the action

CANCEL_CAP = 10_000  # runs one bulk cancel takes
LISTED = 20  # an audit entry names the runs up to this many
IN_FLIGHT = ("running", "pending")
SETTLE_SECONDS = 5.0  # how long a bulk cancel waits for its runs to end before it summarises


@dataclass
class CancelResult:
    requested: int
    cancelled: list[str] = field(default_factory=list)  # asked to stop: each ends failed (cancelled) within a second
    refused: dict[str, str] = field(default_factory=dict)  # run -> why it was not cancelled


def why_not(status: str | None, ours: bool) -> str:
    """Why a run this process is not executing cannot be cancelled from here, in words."""
    if status is None:
        return "no such run"
    if status not in IN_FLIGHT:
        return f"it has already ended ({status})"
    if ours:
        return ("Fourgent started it, but this dashboard's process is not running it (another process is, or it "
                "was interrupted, or it has just ended)")
    return "it was written by an outside engine: only that engine can stop it"


def cancellable(store: Store, run_id: str, status: str, live: LiveRuns = LIVE) -> str | None:
    """None when this process can cancel the run now, else why not (what the run's Cancel button says)."""
    if run_id in live.live([run_id]):
        return None
    return why_not(status, bool(store.parents([run_id])))


def cancel(store: Store, actor: Actor, run_ids: Sequence[str], *, bulk_filter: str | None = None,
           live: LiveRuns = LIVE) -> CancelResult:
    """Ask running or pending runs this process executes to stop, as `actor` (an operator's action)."""
    ids = list(dict.fromkeys(run_ids))

    def do() -> CancelResult:
        result = CancelResult(len(ids))
        for run_id in ids:
            if live.cancel(run_id, actor.who):
                result.cancelled.append(run_id)
        rest = [r for r in ids if r not in set(result.cancelled)]
        if rest:
            statuses = {r: rec.status for r, rec in store.recorded_runs(rest).items()}
            ours = set(store.parents(rest))
            for run_id in rest:
                result.refused[run_id] = why_not(statuses.get(run_id), run_id in ours)
        return result

    detail: dict[str, object] = {"count": len(ids)}
    if bulk_filter is not None:
        detail["filter"] = bulk_filter
    if len(ids) <= LISTED:
        detail["runs"] = ids
    return perform(store, actor, Action.CANCEL_BULK if bulk_filter is not None else Action.CANCEL,
                   bulk_filter if bulk_filter is not None else ", ".join(ids[:3]), do, detail=detail,
                   outcome=lambda r: {"cancelled": len(r.cancelled), "refused": len(r.refused)})
