"""Workflow definitions: one JSON file per workflow under data/workflows/ — trigger, steps, checks, retries."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .retention import DEFINITION_FIELD, PolicyError, check_days

BUILTIN_DIR = Path(__file__).resolve().parent / "workflow_defs"


class DefinitionError(ValueError):
    """A workflow file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # per step, the first try included
    backoff_initial_s: float = 0.2  # full-jitter exponential backoff: random(0, min(max, initial * 2^n))
    backoff_max_s: float = 5.0
    retry_after_cap_s: float = 30.0  # a Retry-After longer than this is cut to this
    timeout_s: float = 10.0  # one HTTP call
    deadline_s: float = 60.0  # the whole run


@dataclass(frozen=True)
class Step:
    name: str
    app: str
    method: str
    path: str  # may hold {field} placeholders filled from the payload
    body: Any = None  # JSON; strings "{field}" are filled from the payload


@dataclass(frozen=True)
class Workflow:
    id: str
    source: str
    destination: str
    source_app: str
    destination_app: str
    steps: tuple[Step, ...]
    required: tuple[str, ...] = ()  # payload fields that must be present and not empty
    skip_if: dict[str, Any] | None = None  # {"field": ..., "equals": ..., "reason": ...}
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    retention_days: int | None = None  # keeps its runs this many days, over FOURGENT_RETENTION_DAYS (retention.py)
    path: Path | None = None  # the file it was read from

    @property
    def apps(self) -> list[str]:
        return sorted({s.app for s in self.steps})


def parse(data: dict[str, Any], origin: str = "definition") -> Workflow:
    def need(obj: dict[str, Any], key: str, where: str) -> Any:
        if key not in obj or obj[key] in (None, ""):
            raise DefinitionError(f"{origin}: {where} needs {key!r}")
        return obj[key]

    try:
        steps = tuple(
            Step(name=need(s, "name", f"step {i}"), app=need(s, "app", f"step {i}"),
                 method=str(need(s, "method", f"step {i}")).upper(), path=need(s, "path", f"step {i}"),
                 body=s.get("body"))
            for i, s in enumerate(need(data, "steps", "the workflow"))
        )
        retry = RetryPolicy(**data.get("retry", {}))
    except TypeError as exc:
        raise DefinitionError(f"{origin}: {exc}") from None
    if retry.attempts < 1:
        raise DefinitionError(f"{origin}: retry.attempts must be 1 or more")
    retention = data.get(DEFINITION_FIELD)
    try:
        retention_days = None if retention is None else check_days(retention, f"{origin}: {DEFINITION_FIELD}")
    except PolicyError as exc:
        raise DefinitionError(str(exc)) from None
    return Workflow(
        id=need(data, "id", "the workflow"), source=need(data, "source", "the workflow"),
        destination=need(data, "destination", "the workflow"),
        source_app=data.get("source_app", ""), destination_app=data.get("destination_app", ""),
        steps=steps, required=tuple(data.get("required", ())), skip_if=data.get("skip_if"), retry=retry,
        retention_days=retention_days,
    )


def ensure_builtin(folder: Path) -> None:
    """Copy the demo workflows' definitions into `folder` unless a file of that name is there already."""
    folder.mkdir(parents=True, exist_ok=True)
    for src in BUILTIN_DIR.glob("*.json"):
        if not (folder / src.name).exists():
            shutil.copyfile(src, folder / src.name)


def load(folder: Path) -> dict[str, Workflow]:
    """Every definition in `folder`, by workflow id."""
    found: dict[str, Workflow] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DefinitionError(f"{path.name}: {exc}") from None
        wf = replace(parse(data, path.name), path=path)
        found[wf.id] = wf
    return found
