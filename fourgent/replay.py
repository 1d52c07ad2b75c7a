"""The other ways to re-trigger a run: with an edited payload (checked, and diffed against the original), or
from its failed step with the earlier steps' recorded outputs reused."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .workflows import Workflow

MAX_PAYLOAD_BYTES = 256 * 1024  # an edited payload; the run log's whole line is 1 MiB at most
DIFF_KEPT = 200  # changes recorded per edit; past it the diff says how many more


class PayloadRejected(ValueError):
    """An edited payload that is not sent, and why, in words."""


def parse_payload(text: str, wf: Workflow | None) -> dict[str, Any]:
    """The edited payload: a JSON object carrying every field `wf` requires; refused in words otherwise."""
    if len(text.encode("utf-8")) > MAX_PAYLOAD_BYTES:
        raise PayloadRejected(f"The payload is over {MAX_PAYLOAD_BYTES // 1024} KB.")
    def no_constant(name: str) -> Any:
        raise PayloadRejected(f"Not valid JSON: {name} is not a JSON number (write it as a string or a number).")

    try:
        value = json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise PayloadRejected(f"Not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from None
    except RecursionError:
        raise PayloadRejected("Not valid JSON: nested too deeply.") from None
    if not isinstance(value, dict):
        raise PayloadRejected("The payload must be a JSON object ({…}), as the trigger sent it.")
    if wf is not None:
        missing = [f for f in wf.required if value.get(f) in (None, "")]
        if missing:
            raise PayloadRejected(f"Missing required field{'s' if len(missing) > 1 else ''} of workflow {wf.id}: "
                                  + ", ".join(missing) + ".")
    return value


def pretty(payload: Any) -> str:
    """A payload as the editor shows it and the diff compares it."""
    return json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=False)


def diff_text(before: Any, after: Any) -> str:
    """A unified diff of the two payloads' formatted JSON, for the confirmation (empty when equal)."""
    return "\n".join(difflib.unified_diff(pretty(before).splitlines(), pretty(after).splitlines(),
                                          "original payload", "edited payload", lineterm="", n=2))


def payload_diff(before: Any, after: Any, path: str = "$") -> list[dict[str, Any]]:
    """What an edit changed, as [{path, before, after}] (a side that does not exist is absent), at most DIFF_KEPT."""
    changes: list[dict[str, Any]] = []

    def walk(a: Any, b: Any, at: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in list(a) + [k for k in b if k not in a]:
                where = f"{at}.{key}"
                if key not in b:
                    changes.append({"path": where, "before": a[key]})
                elif key not in a:
                    changes.append({"path": where, "after": b[key]})
                else:
                    walk(a[key], b[key], where)
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{at}[{i}]")
        elif a != b or type(a) is not type(b):
            changes.append({"path": at, "before": a, "after": b})

    walk(before, after, path)
    if len(changes) > DIFF_KEPT:
        more = len(changes) - DIFF_KEPT
        changes = [*changes[:DIFF_KEPT], {"path": f"… and {more:,} more changes"}]
    return changes


@dataclass(frozen=True)
class FromStep:
    """A re-run from a failed run's failed step: `step` (0-based) onwards runs; the steps before it are reused."""

    step: int
    name: str
    reuse: tuple[Mapping[str, Any], ...]


def from_failed_step(status: str, error_step: int | None, steps: Sequence[Mapping[str, Any]],
                     wf: Workflow | None) -> FromStep | str:
    """The re-run from the failed step a run allows, or why not (in words). The rule the single action, the
    bulk and the CLI share."""
    if status != "failed":
        return "Only a failed run can be re-run from its failed step."
    if error_step is None or error_step < 0 or error_step >= max(len(steps), 1):
        return "It failed before any step ran (a check of its payload): there is no step to re-run from."
    if wf is None:
        return "There is no workflow definition for it here."
    if error_step >= len(wf.steps):
        return f"Its workflow has {len(wf.steps)} steps now, fewer than the step it failed at."
    for i in range(error_step + 1):
        if i < len(steps) and (steps[i].get("name") != wf.steps[i].name or steps[i].get("app") != wf.steps[i].app):
            return (f"Its workflow's steps changed since it ran (step {i + 1} is another step now): re-trigger "
                    "the whole run instead.")
    # In words without the log's own text (step names): these reasons also appear in tooltips.
    for i in range(error_step):
        s = steps[i]
        if s.get("status") != "finished":
            return f"Step {i + 1} did not finish, so it cannot be reused."
        if s.get("output") is None:
            return (f"Step {i + 1}'s output was not recorded, so it cannot be reused without calling it again: "
                    "re-trigger the whole run instead.")
    return FromStep(error_step, wf.steps[error_step].name, tuple(steps[:error_step]))
