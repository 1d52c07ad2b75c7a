"""Replays a process left behind when it died (killed mid-bulk): each marked failed with kind `interrupted`.

A replay belongs to the process that ran it (fourgent.process). Once that process is gone, a replay still
`running` or `pending` in the store will never end by itself: it gets a last snapshot in the run log, Failed,
kind `interrupted`, saying which steps it had already sent. A later re-trigger of its original sends those steps
with the interrupted run's idempotency keys (retrigger.py), so an app that honours them does not act twice. A
replay planned but never started (no line at all) is forgotten, so it blocks nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import process
from .spec import INTERRUPTED_KIND
from .store import Store


@dataclass
class Recovered:
    interrupted: list[str] = field(default_factory=list)  # replays marked failed, kind interrupted
    forgotten: list[str] = field(default_factory=list)  # planned, never started


def _iso(t: Any) -> Any:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z") if isinstance(t, datetime) else t


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def interrupted_line(run: dict[str, Any], steps: Sequence[dict[str, Any]], owner: str, now: datetime) -> dict:
    """The run's last snapshot: as stored, ended Failed (kind interrupted), the step under way failed too."""
    at = _iso(now)
    pid = owner.partition(":")[0]
    out_steps, sent, under_way = [], [], None
    for s in steps:
        step = {k: _iso(s[k]) for k in ("name", "app", "status", "attempts", "started_at", "finished_at")
                if s.get(k) is not None}
        for k in ("input", "output"):
            if s.get(k) is not None:
                step[k] = _json(s[k])
        if s.get("error"):
            step["error"] = s["error"]
        if (s.get("attempts") or 0) >= 1:
            sent.append(s["step_index"])
        if s["status"] in ("running", "pending"):
            under_way = s["step_index"] if under_way is None else under_way
            step.update(status="failed", finished_at=at, error="Interrupted: the process running it stopped")
        out_steps.append(step)
    if under_way is None and run["status"] == "running":
        # The executor records a step once it has answered: the one after the last recorded may have been sent.
        under_way = len(out_steps)
    maybe = sorted({*sent, *([under_way] if under_way is not None else [])})
    said = (f"step{'s' if len(maybe) != 1 else ''} {', '.join(str(i + 1) for i in maybe)} may have been sent (a "
            "re-trigger sends them again with this run's idempotency keys)") if maybe else "no step had been sent"
    extra = _json(run.get("extra")) or {}
    line = {**(extra if isinstance(extra, dict) else {}),
            "id": run["id"], "reference": run.get("reference"),
            "workflow": {"id": run["workflow_id"], "source": run["source"], "destination": run["destination"],
                         "source_app": run.get("source_app"), "destination_app": run.get("destination_app")},
            "status": "failed", "started_at": _iso(run["started_at"]), "finished_at": at, "updated_at": at,
            "trigger_payload": _json(run.get("trigger_payload")), "steps": out_steps,
            "error": {"message": f"Interrupted: the process that ran it ({pid}) stopped while it was "
                                 f"{run['status']}; {said}. Marked by process {os.getpid()}.",
                      "step": under_way, "kind": INTERRUPTED_KIND},
            "retrigger_of": run.get("retrigger_of"), "attempt": run.get("attempt") or 1}
    return {k: v for k, v in line.items() if v is not None}


def recover(store: Store, write: Callable[[dict], None], now: datetime | None = None) -> Recovered:
    """Mark the replays of processes that are gone (and forget those that never started); their lines go
    through `write` (the run log), for the next ingest to read."""
    out = Recovered()
    left = [(run_id, owner, status) for run_id, owner, status in store.orphaned_retriggers(process.me())
            if not process.alive(owner)]
    out.forgotten = [run_id for run_id, _, status in left if status is None]
    store.forget_retriggers(out.forgotten)
    at = now or datetime.now(UTC)
    for run_id, owner, status in left:
        if status is None:
            continue
        record = store.run_record(run_id)
        if record is None:
            continue
        write(interrupted_line(record.run, record.steps, owner, at))
        out.interrupted.append(run_id)
    return out
