"""The plain values a store hands back: what pages and the domain read, whatever the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

# The documented views of ad-hoc SQL (docs/schema.md), the same on every engine.
SURFACE: tuple[str, ...] = ("runs", "steps", "rejected_lines", "comments", "retriggers", "handled", "audit", "alerts")


@dataclass(frozen=True)
class Comment:
    run_id: str
    author: str
    body: str
    created_at: datetime


@dataclass(frozen=True)
class ConnectionRow:
    """One app's stored connection, the credential still encrypted."""

    app: str
    base_url: str
    token_encrypted: str | None
    token_hint: str | None
    updated_at: datetime | None
    last_success_at: datetime | None
    refused: bool  # its latest answer to this credential was a refusal (401/403)


@dataclass(frozen=True)
class Retrigger:
    """A re-trigger Fourgent starts: the new run's ID, the original it replays, who asked and when; and how:
    a replay of the payload, an edited one (with what changed), or from a step (1-based)."""

    run_id: str
    retrigger_of: str
    by: str
    at: datetime
    mode: str = "replay"  # replay, edited, from step (RETRIGGER_MODES)
    from_step: int | None = None
    payload_diff: list[dict[str, Any]] | None = None
    owner: str | None = None  # the process running it (process.me()); None: lineage read from logs


RETRIGGER_MODES = ("replay", "edited", "from step")


@dataclass(frozen=True)
class Handled:
    """A failure marked handled without a replay: by whom, when and why."""

    run_id: str
    by: str
    at: datetime
    reason: str


@dataclass(frozen=True)
class RecordedRun:
    """What a re-run from a step needs of a run: its status, the step it failed at and its steps as recorded
    (name, app, status, attempts, input, output: JSON values parsed)."""

    status: str
    error_step: int | None
    steps: list[dict[str, Any]]


@dataclass(frozen=True)
class AuditEntry:
    """One action as the audit records it: who, as what, did what to what, and how it ended."""

    at: datetime
    actor: str
    role: str
    via: str
    action: str
    target: str | None
    detail: dict[str, Any] | None  # never a secret
    outcome: str  # ok, refused or failed
    message: str | None = None


@dataclass
class RunRecord:
    """One run as stored: its row of `runs`, its steps, its lineage both ways and where it was read."""

    run: dict[str, Any]
    steps: list[dict[str, Any]]
    parent: dict[str, Any] | None  # the run this one re-triggered: id, status, started_at, by, at
    children: list[dict[str, Any]]  # re-triggers of this run, oldest first
    source_file: str | None
    source_line: int | None


@dataclass
class RunsView:
    """Everything one render of the Runs page shows, from one call (the benchmark times this)."""

    rows: pl.DataFrame  # id, reference, workflow, workflow_id, status, started_at, finished_at, duration_ms,
    #                     error_message, retrigger_of
    total: int  # runs matching the filter
    by_status: dict[str, int]  # per status under the other filters
    exact_id: str | None  # the search text is exactly a run's ID
    comment_counts: dict[str, int]
    retriggers: dict[str, str]  # run on the page -> status of its latest re-trigger
    rejected_lines: int
    store_runs: int  # runs in the store at all (for the empty state)
    marks: dict[str, str] = field(default_factory=dict)  # run on the page -> "handled", "edited", "from step N"


@dataclass
class SqlResult:
    """An ad-hoc query's answer: the first rows kept, how many there were in all, and the time it took."""

    frame: pl.DataFrame  # the first rows, at most the cap
    total: int = 0  # rows the query returned; more than shown when capped
    seconds: float = 0.0

    @property
    def columns(self) -> list[str]:
        return self.frame.columns

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        return self.frame.rows()

    @property
    def capped(self) -> bool:
        return self.total > self.frame.height


@dataclass(frozen=True)
class AlertRule:
    """One alert rule as stored: what to watch (`kind` and its figures), where to send, and whether it is on."""

    name: str
    kind: str  # a fourgent.alerts.KINDS key
    threshold: float  # a rate in 0-1 (failure_rate), a number of runs, or minutes (stuck)
    workflow_id: str | None = None  # None: every workflow together
    subject: str | None = None  # the error kind (error_kind) or app (app)
    min_runs: int = 0  # failure_rate: ended runs in the window before the rate counts
    window_minutes: int = 60  # failure_rate, error_kind, app: the trailing window
    cooldown_minutes: int = 15  # after a resolve, no new episode for this long
    destination: str | None = None  # an alert destination's name; None: the history only
    enabled: bool = True
    rule_id: int | None = None  # None: not stored yet
    updated_at: datetime | None = None
    updated_by: str = ""


@dataclass(frozen=True)
class AlertDestinationRow:
    """Where alerts go, the Apprise URL still encrypted (it often holds a token or a password)."""

    name: str
    url_encrypted: str
    masked: str
    updated_at: datetime


@dataclass(frozen=True)
class AlertEpisode:
    """One episode of a rule's condition holding: a row of the `alerts` view."""

    episode: int
    rule_id: int
    rule: str
    kind: str
    fired_at: datetime
    resolved_at: datetime | None
    summary: str
    runs: int
    query: str  # the Runs page's query string of the runs behind it
    fired_by: str  # dashboard or cli
    checked_at: datetime
    destination: str | None = None
    fired_delivery: str | None = None  # pending, delivered or undelivered; None: nowhere to send
    resolved_delivery: str | None = None

    @property
    def firing(self) -> bool:
        return self.resolved_at is None


@dataclass(frozen=True)
class AlertDelivery:
    """A message still to send: an episode's firing or its resolve, to one destination."""

    delivery: int
    event: str  # fired or resolved
    destination: str
    episode: AlertEpisode
@dataclass
class PruneReport:
    """What a prune removed (or, dry, would remove), where it archived it, and the store file's size around it."""

    runs: int = 0
    rejected_lines: int = 0
    comments: int = 0
    ledger_rows: int = 0  # rows of the other per-run ledger tables (re-triggers, claims, …) of the pruned runs
    archive: str | None = None  # the folder the pruned rows were written to, as Parquet
    bytes_before: int = 0
    bytes_after: int = 0
    compacted: bool = False  # the file was rewritten to shrink it
    not_compacted: str | None = None  # why it was not, when it was to be
    seconds: float = 0.0
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "rejected_lines": self.rejected_lines, "comments": self.comments,
                "ledger_rows": self.ledger_rows, "archive": self.archive, "bytes_before": self.bytes_before,
                "bytes_after": self.bytes_after, "compacted": self.compacted, "not_compacted": self.not_compacted,
                "seconds": round(self.seconds, 2), "dry_run": self.dry_run}
