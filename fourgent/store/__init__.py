"""The store seam: small protocols the domain and the pages use, and `open_store(url)` to get one.

Pages and `fourgent.workspace` see only these methods and the plain values of `records`; no cursor, no SQL.
Each engine lives in a sub-package of its own (`duckdb/`, the embedded default) holding all of its SQL, and
the contract tests (tests/store/) run the same assertions against every engine.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import polars as pl
import pyarrow as pa

from ..filters import RunFilter
from ..logfiles import IngestReport
from ..overview import UTC_ZONE, OverviewView, Window
from .errors import QueryError, QueryFailed, QueryRefused, QueryStopped, RunNotFound, StoreBusy, StoreWriteFailed
from .records import (
    AlertDelivery,
    AlertDestinationRow,
    AlertEpisode,
    AlertRule,
    AuditEntry,
    Comment,
    ConnectionRow,
    Handled,
    PruneReport,
    RecordedRun,
    Retrigger,
    RunRecord,
    RunsView,
    SqlResult,
)

__all__ = ["AdhocSQL", "AlertBook", "AlertDelivery", "AlertDestinationRow", "AlertEpisode", "AlertRule",
           "AuditEntry", "Comment", "ConnectionRow", "Handled", "Ledger", "LogSink", "OverviewReader", "PruneReport",
           "QueryError", "QueryFailed", "QueryRefused", "QueryStopped", "RecordedRun", "Retention", "Retrigger",
           "RunNotFound", "RunRecord", "RunsReader", "RunsView", "SqlResult", "Store", "StoreBusy", "StoreWriteFailed",
           "open_store", "snapshot_sql"]

Order = Literal["newest", "oldest"]


class RunsReader(Protocol):
    """The Runs page, the run details page and bulk actions: runs under a RunFilter, one page at a time."""

    def runs_view(self, f: RunFilter, *, page: int = 1, size: int = 50, order: Order = "newest") -> RunsView: ...
    def page(self, f: RunFilter, *, page: int = 1, size: int = 50, order: Order = "newest") -> pl.DataFrame: ...
    def count(self, f: RunFilter) -> int: ...
    def status_counts(self, f: RunFilter) -> dict[str, int]: ...
    def daily_counts(self, f: RunFilter) -> pl.DataFrame: ...
    def select_ids(self, f: RunFilter, *, limit: int = 100_000, waiting_apps: Sequence[str] = (),
                   unfixable: bool = False) -> list[str]:
        """Newest first; leaving out the auth failures of `waiting_apps` and, with `unfixable`, validation
        failures whose payload lacks the field their error names."""
        ...
    def futile_split(self, f: RunFilter, waiting_apps: Sequence[str]) -> tuple[dict[str, int], int]:
        """Of the runs under `f`: auth failures per app of `waiting_apps`, and the unfixable validation ones."""
        ...
    def find_exact(self, run_id: str) -> bool: ...
    def workflows(self) -> list[tuple[str, str]]: ...
    def latest_retriggers(self, ids: Sequence[str]) -> dict[str, str]: ...
    def comment_counts(self, ids: Sequence[str]) -> dict[str, int]: ...
    def rejected(self, limit: int = 500) -> pl.DataFrame: ...
    def export_batches(self, f: RunFilter, columns: Sequence[str], cap: int,
                       order: Order = "newest") -> Iterator[pa.RecordBatch]: ...
    def auth_failures_by_app(self, days: int = 7) -> dict[str, tuple[int, datetime]]: ...
    def run_count(self) -> int: ...
    def run_record(self, run_id: str) -> RunRecord | None: ...


class OverviewReader(Protocol):
    """The Overview's and Workflows page's figures, and the bulk button's count of unresolved failures."""

    def overview(self, w: Window, *, exact_max: int | None = None) -> OverviewView: ...
    def workflow_health(self, now: datetime | None = None, zone: str = UTC_ZONE) -> pl.DataFrame: ...
    def unresolved_count(self, f: RunFilter) -> int: ...
    def rollups_current(self) -> bool: ...


class Ledger(Protocol):
    """What people and the re-triggerer write beside the runs: comments, pauses, claims, connections."""

    def add_comment(self, run_id: str, author: str, body: str) -> Comment: ...
    def comments(self, run_id: str) -> list[Comment]: ...
    def paused(self) -> dict[str, tuple[datetime, str]]: ...
    def set_paused(self, workflow_id: str, pause: bool, who: str = "") -> None: ...
    def claim(self, run_ids: Sequence[str]) -> set[str]: ...
    def release(self, run_ids: Sequence[str]) -> None: ...
    def originals(self, run_ids: Sequence[str]) -> dict[str, tuple[str, str | None, dict[str, Any]]]: ...
    def parents(self, run_ids: Sequence[str]) -> dict[str, str]: ...
    def retriggered_since(self, run_ids: Sequence[str], since: datetime) -> dict[str, str]: ...
    def record_retriggers(self, retriggers: Sequence[Retrigger]) -> None: ...
    def forget_retriggers(self, run_ids: Sequence[str]) -> None: ...
    def orphaned_retriggers(self, mine: str) -> list[tuple[str, str, str | None]]:
        """Re-triggers recorded by processes other than `mine` that have not ended: (run id, owner, status,
        None when the run has no line yet)."""
    def interrupted_sends(self, originals: Sequence[str]) -> dict[str, tuple[str, list[int]]]:
        """Per original whose latest re-trigger ended interrupted: that run's ID and the step indexes it sent."""
    def recorded_runs(self, run_ids: Sequence[str]) -> dict[str, RecordedRun]: ...
    def mark_handled(self, run_ids: Sequence[str], by: str, reason: str) -> list[str]:
        """Only failed originals (not re-triggers) not marked already; returns those marked."""
        ...
    def unmark_handled(self, run_ids: Sequence[str]) -> list[str]: ...
    def handled(self, run_ids: Sequence[str]) -> dict[str, Handled]: ...
    def record_audit(self, entry: AuditEntry) -> None: ...
    def audit_entries(self, *, actor: str = "", action: str = "", outcome: str = "",
                      since: datetime | None = None, limit: int = 1000) -> list[AuditEntry]: ...
    def put_connection(self, app: str, base_url: str, token_encrypted: str | None,
                       token_hint: str | None) -> None: ...
    def connection(self, app: str) -> tuple[str, str | None] | None: ...
    def connection_rows(self) -> list[ConnectionRow]: ...
    def record_calls(self, ok: Sequence[str], refused: Sequence[str]) -> None: ...


class LogSink(Protocol):
    """Ingest: new complete lines of run logs into the store, every line accounted for."""

    def ingest(self, paths: Sequence[Path | str], *, logs_dir: Path | None = None, batch_bytes: int = ...,
               on_batch: Callable[[IngestReport], None] | None = None) -> IngestReport: ...


class Retention(Protocol):
    """Pruning old runs (fourgent.retention says which) and remembering when it last ran."""

    def prune(self, default: datetime | None, per_workflow: Mapping[str, datetime], *, archive: Path | None = None,
              dry_run: bool = False) -> PruneReport:
        """Remove the runs started before their workflow's cutoff in `per_workflow`, else before `default` (None:
        kept), with their comments and other per-run ledger rows, and the rejected lines older than every
        cutoff; archived to Parquet in a new folder under `archive` first; the file shrinks. Offsets stay, so
        the logs read again do not bring them back."""
        ...
    def last_pruned(self) -> datetime | None: ...


class AdhocSQL(Protocol):
    """Read-only SQL over the documented views (Explore and `python -m fourgent sql`)."""

    engine: str
    surface: tuple[str, ...]
    examples: dict[str, str]

    def run_sql(self, sql: str, *, max_rows: int, time_limit: float, with_audit: bool = False) -> SqlResult:
        """`with_audit`: the `audit` view is readable (an admin's query)."""
        ...
    def describe(self, view: str) -> list[tuple[str, str]]: ...


class AlertBook(Protocol):
    """Failure alerts (fourgent.alerts): rules, destinations (encrypted), episodes and the messages they queue."""

    def alert_rules(self) -> list[AlertRule]: ...
    def put_alert_rule(self, rule: AlertRule) -> int: ...
    def delete_alert_rule(self, rule_id: int) -> bool: ...
    def alert_destinations(self) -> list[AlertDestinationRow]: ...
    def put_alert_destination(self, name: str, url_encrypted: str, masked: str) -> None: ...
    def delete_alert_destination(self, name: str) -> bool: ...
    def alert_destination(self, name: str) -> str | None: ...
    def open_alert_episodes(self) -> dict[int, AlertEpisode]:
        """Per rule id, its open episode."""
        ...
    def fire_alert(self, rule: AlertRule, summary: str, runs: int, query: str, by: str,
                   at: datetime) -> AlertEpisode | None:
        """Open an episode and queue its message; None when one is open or the rule is cooling down."""
        ...
    def resolve_alert(self, episode: int, at: datetime) -> AlertEpisode | None: ...
    def alerts_still_firing(self, episodes: Sequence[int], at: datetime) -> None: ...
    def alert_history(self, limit: int = 500) -> list[AlertEpisode]: ...
    def pending_alerts(self) -> list[AlertDelivery]: ...
    def alert_delivered(self, delivery: int, ok: bool, attempts: int, reason: str | None, at: datetime) -> None: ...


class Store(RunsReader, OverviewReader, Ledger, LogSink, Retention, AdhocSQL, AlertBook, Protocol):
    """One store: every protocol above. `open_store` gives the process's one per location."""

    path: Path
    read_only: bool

    def close(self) -> None: ...


_instances: dict[str, Store] = {}
_instances_lock = threading.Lock()


CLICKHOUSE_SCHEMES = ("clickhouse", "clickhouses", "chdb")


def _location(url: str | os.PathLike[str]) -> tuple[str, Path]:
    """(engine, path) of an embedded store URL: `duckdb:///abs/path.duckdb`, or a plain path (DuckDB)."""
    text = os.fspath(url)
    engine, sep, rest = text.partition("://")
    if not sep:
        return "duckdb", Path(text).resolve()
    if engine != "duckdb":
        raise ValueError(f"Unknown store engine {engine!r} in {text!r}: this version has duckdb, clickhouse, "
                         "clickhouses and chdb")
    return engine, Path(rest).resolve()


def is_clickhouse(url: str | os.PathLike[str]) -> bool:
    """Whether `url` names a ClickHouse database (a server, over TLS, or chDB in this process)."""
    return os.fspath(url).partition("://")[0] in CLICKHOUSE_SCHEMES


def open_store(url: str | os.PathLike[str], *, read_only: bool = False) -> Store:
    """The process's one store at `url`, opened on first use (DuckDB refuses a second instance of a file; a
    ClickHouse database is shared by any number of processes, each with its one store object)."""
    clickhouse = is_clickhouse(url)
    key = os.fspath(url) if clickhouse else f"duckdb://{_location(url)[1]}"
    with _instances_lock:
        store = _instances.get(key)
        if store is None:
            if clickhouse:
                from .clickhouse import ClickHouseStore

                store = ClickHouseStore(os.fspath(url))
            else:
                from .duckdb import DuckDBStore

                store = DuckDBStore(_location(url)[1], read_only=read_only,
                                    memory_limit=os.environ.get("FOURGENT_MEMORY_LIMIT") or None)
            _instances[key] = store
        elif store.read_only and not read_only:
            raise RuntimeError(f"{store.path} is already open read-only in this process")
        return store


def snapshot_sql(url: str | os.PathLike[str], sql: str, *, max_rows: int, time_limit: float) -> SqlResult:
    """Ad-hoc SQL over a store's read-only snapshot without opening the store (so also while the dashboard
    holds it): what `python -m fourgent sql` runs. The CLI acts as an admin (access.cli_actor): it reads the
    audit too. A ClickHouse database needs no snapshot: its read-only session is the guard."""
    if is_clickhouse(url):
        return open_store(url).run_sql(sql, max_rows=max_rows, time_limit=time_limit, with_audit=True)
    engine, path = _location(url)
    from .duckdb import database, worker

    return worker.run(database.snapshot_folder(path), sql, max_rows=max_rows, time_limit=time_limit,
                      with_audit=True)


def is_open(store: Store) -> bool:
    """Whether `store` is still the process's open store of its location (close_store forgets it)."""
    with _instances_lock:
        return any(held is store for held in _instances.values())


def close_store(store: Store) -> None:
    """Close a store and forget it, so the next open_store of its location opens it afresh."""
    with _instances_lock:
        for key, held in list(_instances.items()):
            if held is store:
                del _instances[key]
    store.close()
