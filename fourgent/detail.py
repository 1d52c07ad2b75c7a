"""One run in full: its latest snapshot, steps, lineage, where it was read, and what to do next."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .replay import FromStep, from_failed_step
from .spec import INTERRUPTED_KIND, MISSING_FIELD_PATTERN
from .store import Store
from .workflows import Workflow


@dataclass
class RunDetail:
    run: dict[str, Any]
    steps: list[dict[str, Any]]
    retriggered_from: dict[str, Any] | None
    retriggered_as: list[dict[str, Any]] = field(default_factory=list)
    source_file: str | None = None
    source_line: int | None = None

    @property
    def failed_step(self) -> dict[str, Any] | None:
        if self.run["status"] != "failed":
            return None
        index = self.run["error_step"]
        if index is not None and 0 <= index < len(self.steps):
            return self.steps[index]
        return next((s for s in self.steps if s["status"] == "failed"), None)

    @property
    def payload(self) -> Any:
        return _load(self.run["trigger_payload"])

    @property
    def reused(self) -> tuple[str | None, int]:
        """(the run whose outputs it reused, how many of its first steps), for a re-run from a step: only when the
        ledger says Fourgent made it so (a log line's word alone could label any steps "reused")."""
        if (self.retriggered_from or {}).get("mode") != "from step":
            return None, 0
        said = (_load(self.run["extra"]) or {}).get("reused_steps") if self.run["extra"] else None
        if isinstance(said, dict) and isinstance(said.get("count"), int):
            return (str(said["from"]) if said.get("from") else None), said["count"]
        return None, 0

    def rerun(self, definitions: dict[str, Workflow]) -> FromStep | str:
        """The re-run from the failed step this run allows, or why not (replay.from_failed_step's rule)."""
        steps = [dict(s, input=_load(s["input"]), output=_load(s["output"])) for s in self.steps]
        return from_failed_step(self.run["status"], self.run["error_step"], steps,
                                definitions.get(self.run["workflow_id"]))

    def attempts_of(self, step_index: int) -> list[dict[str, Any]]:
        """The calls the engine made for a step, when its log says (`attempt_log`, written by our executor);
        entries of another shape (a log from elsewhere) are left out rather than guessed at."""
        log = (_load(self.run["extra"]) or {}).get("attempt_log") if self.run["extra"] else None
        if not isinstance(log, list):
            return []
        return [a for a in log if isinstance(a, dict) and a.get("step") == step_index]

    def record(self) -> dict[str, Any]:
        """The run as a run-log record: the spec's fields plus any unknown ones it arrived with."""
        r = self.run
        out: dict[str, Any] = {
            "id": r["id"], "reference": r["reference"],
            "workflow": {"id": r["workflow_id"], "source": r["source"], "destination": r["destination"],
                         "source_app": r["source_app"], "destination_app": r["destination_app"]},
            "status": r["status"], "started_at": _iso(r["started_at"]), "finished_at": _iso(r["finished_at"]),
        }
        if r["updated_at"] is not None:
            out["updated_at"] = _iso(r["updated_at"])
        out["trigger_payload"] = _load(r["trigger_payload"])
        out["steps"] = [
            {k: (_iso(v) if isinstance(v, datetime) else _load(v) if k in ("input", "output") else v)
             for k, v in s.items() if k not in ("step_index", "duration_ms")}
            for s in self.steps
        ]
        if r["error_message"] is not None:
            out["error"] = {"message": r["error_message"], "step": r["error_step"], "kind": r["error_kind"]}
        out["result"] = _load(r["result"])
        for key in ("skip_reason", "retrigger_of"):
            if r[key] is not None:
                out[key] = r[key]
        out["attempt"] = r["attempt"]
        out.update(_load(r["extra"]) or {})
        return out


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _load(value: str | None) -> Any:
    """A JSON value of the store; one nested too deeply for Python's parser is summarised, not a crash."""
    try:
        return json.loads(value) if isinstance(value, str) else value
    except RecursionError:
        return f"… (a value nested too deeply to show, {len(value or ''):,} characters)"


def get(store: Store, run_id: str) -> RunDetail | None:
    found = store.run_record(run_id)
    if found is None:
        return None
    return RunDetail(found.run, found.steps, found.parent, found.children, found.source_file, found.source_line)


_MISSING_FIELD = re.compile(MISSING_FIELD_PATTERN)


def unfixable_field(detail: RunDetail) -> str | None:
    """The required field a validation failure names and its payload still lacks: a re-trigger replays that
    payload, so it would fail again (the bulk re-trigger leaves such runs out by the same rule)."""
    run = detail.run
    if run["status"] != "failed" or run["error_kind"] != "validation":
        return None
    match = _MISSING_FIELD.search(run["error_message"] or "")
    if not match:
        return None
    payload = _load(run["trigger_payload"])
    carried = isinstance(payload, dict) and payload.get(match.group(1)) not in (None, "")
    return None if carried else match.group(1)


def next_step(detail: RunDetail) -> str | None:
    """For a failed run: what to fix before re-triggering, by error kind (plain text, never markup)."""
    run = detail.run
    if run["status"] != "failed":
        return None
    step = detail.failed_step
    app = (step or {}).get("app") or run["destination_app"] or run["destination"]
    kind = run["error_kind"]
    if kind == "auth":
        return (f"The credential for {app} expired or was revoked. Reconnect {app} in Connections, "
                "then re-trigger this run.")
    if kind == "validation":
        match = _MISSING_FIELD.search(run["error_message"] or "")
        source = run["source_app"] or run["source"]
        at = f" at step {step['step_index'] + 1} ({step['name']})" if step else " before any step ran"
        if not match:
            return (f"The run was refused{at}: a field of its payload is missing or wrong. A re-trigger replays "
                    f"the same payload, so fix the record in {source} and let {source} fire the workflow again.")
        field = unfixable_field(detail)
        if field is None:
            return (f"The run was refused{at} for lacking “{match.group(1)}”, which its payload carries now. "
                    "Re-trigger this run.")
        return (f"The run was refused{at}: its payload lacks the required field “{field}”. A re-trigger replays "
                f"this same payload and would fail again. Re-trigger it with changes and fill in “{field}”, or "
                f"fill it in in {source} and let {source} fire the workflow again.")
    if kind == "unavailable":
        attempts = (step or {}).get("attempts") or 1
        return (f"{app} did not answer in time or answered with an error; the engine tried "
                f"{attempts} time{'s' if attempts != 1 else ''}. Check {app}'s status, then re-trigger.")
    if kind == "logic":
        return ("The workflow met an edge case it does not handle. Change the workflow (or the record) so "
                "the case is handled, then re-trigger.")
    if kind == INTERRUPTED_KIND:
        return ("This re-trigger stopped half-way when the process running it did. Check in the destination app "
                "what the steps it may have sent did, then re-trigger the original: those steps go again with "
                "this run's idempotency keys, so an app that honours them does not act twice.")
    return "Read the error message above; fix its cause, then re-trigger."
