"""The retention policy: how many days of runs the store keeps (FOURGENT_RETENTION_DAYS, per-workflow overrides)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ENV = "FOURGENT_RETENTION_DAYS"
DEFINITION_FIELD = "retention_days"  # a workflow definition's own number of days, over the default
MAX_DAYS = 36_500  # a hundred years: anything longer is a typo, not a policy
APPLY_EVERY = timedelta(days=1)  # how often the running dashboard applies the policy
# When a prune removes at least this share of the runs, or leaves this share of the file's blocks free, the file
# is rewritten to shrink it; below it the free space is left for the next ingests to reuse (a daily prune
# removes a day's worth: not worth rewriting the whole file every day).
COMPACT_SHARE = 0.2

_AGE = re.compile(r"(\d+)\s*(d|day|days)?", re.IGNORECASE)


class PolicyError(ValueError):
    """A retention setting that cannot be used; the message names the setting and what it takes."""


def parse_days(text: str, where: str) -> int:
    """A whole number of days from 1 to MAX_DAYS, written `90` or `90d`."""
    found = _AGE.fullmatch(text.strip())
    days = int(found.group(1)) if found else 0
    if not found or not 1 <= days <= MAX_DAYS:
        raise PolicyError(f"{where} must be a whole number of days from 1 to {MAX_DAYS:,} (e.g. 90 or 90d), "
                          f"not {text!r}")
    return days


def check_days(value: object, where: str) -> int:
    """A definition's `retention_days`: a JSON whole number from 1 to MAX_DAYS."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
        raise PolicyError(f"{where} must be a whole number of days from 1 to {MAX_DAYS:,}, not {value!r}")
    return value


@dataclass(frozen=True)
class Policy:
    """Runs started more than `days` ago are pruned; a workflow in `per_workflow` keeps its own number of days.
    No default and no override: nothing is pruned."""

    days: int | None = None
    per_workflow: Mapping[str, int] = field(default_factory=dict)

    @property
    def in_force(self) -> bool:
        return self.days is not None or bool(self.per_workflow)

    def cutoffs(self, now: datetime) -> tuple[datetime | None, dict[str, datetime]]:
        """(the default cutoff, each overriding workflow's): runs started before theirs are pruned."""
        default = now - timedelta(days=self.days) if self.days is not None else None
        return default, {wf: now - timedelta(days=d) for wf, d in self.per_workflow.items()}

    def describe(self, names: Mapping[str, str] | None = None) -> str:
        """The policy in words, for the How it works page, the CLI and the README's example."""
        names = names or {}
        if not self.in_force:
            return (f"No retention policy: every run is kept. Set {ENV} (days) to prune older runs, or "
                    f"`{DEFINITION_FIELD}` in a workflow's definition for that workflow.")
        said = (f"Runs started more than {self.days:,} days ago are pruned ({ENV})" if self.days is not None
                else f"Runs are kept for good ({ENV} is not set), except")
        own = [f"{names.get(wf, wf)}: {d:,} days" for wf, d in sorted(self.per_workflow.items())]
        if own:
            said += ("; these workflows keep their own (their definitions' " + DEFINITION_FIELD + "): "
                     if self.days is not None else ": ") + "; ".join(own)
        return said + "."


def policy(overrides: Mapping[str, int], environ: Mapping[str, str] | None = None) -> Policy:
    """The policy in force: FOURGENT_RETENTION_DAYS (empty or unset: none) and the definitions' overrides."""
    text = (os.environ if environ is None else environ).get(ENV, "").strip()
    return Policy(parse_days(text, ENV) if text else None, dict(overrides))


def archive_folder(archive: Path) -> Path:
    """A new folder under `archive` for a prune's archive (written under a temporary name, `.NAME.tmp`, first)."""
    archive.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name, n = f"fourgent-pruned-{stamp}", 1
    while (archive / name).exists() or (archive / f".{name}.tmp").exists():
        n += 1
        name = f"fourgent-pruned-{stamp}-{n}"
    return archive / name
