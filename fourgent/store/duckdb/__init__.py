"""The embedded default store: one DuckDB file, all of its SQL, DDL and migrations in this folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
import polars as pl
import pyarrow as pa

from ... import overview as domain_overview
from ...filters import RunFilter
from ...logfiles import BATCH_BYTES, IngestReport
from ...overview import UTC_ZONE, OverviewView, Window
from ..errors import StoreWriteFailed
from ..records import (
    SURFACE,
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
from . import dump, health, ingest, overview, prune, rollup, runs, snapshot, unresolved, worker
from .alerts import Alerts
from .database import Database, write_failure
from .examples import EXAMPLES
from .ledger import Ledger

__all__ = ["DuckDBStore"]


class DuckDBStore:
    """Every protocol of fourgent.store over one DuckDB instance; share it within the process (one per file)."""

    engine = "DuckDB"
    examples = EXAMPLES

    def __init__(self, path: Path | str, *, read_only: bool = False, memory_limit: str | None = None) -> None:
        self.db = Database(path, read_only=read_only, memory_limit=memory_limit)
        self.path = self.db.path
        self.read_only = read_only
        self._ledger = Ledger(self.db)
        self._alerts = Alerts(self.db)
        if not read_only:
            ingest.repair(self.db)
        if not read_only and not snapshot.is_complete(self.db.snapshot_dir):  # a new store, or one from before
            with self.db.write_lock:
                snapshot.complete(self.db.cursor(), self.db.snapshot_dir)

    def close(self) -> None:
        self.db.close()

    def dump(self) -> Iterator[tuple[str, pa.RecordBatchReader]]:
        """Every table `migrate` copies, as Arrow batches (dump.DUMP_SQL), each read on its own cursor."""
        return dump.dump(self.db.cursor)

    def table_counts(self) -> dict[str, int]:
        """Rows per table `dump` gives, to check a copy against."""
        return dump.counts(self.db.cursor())

    # ------------------------------------------------------------ RunsReader

    def runs_view(self, f: RunFilter, *, page: int = 1, size: int = 50,
                  order: Literal["newest", "oldest"] = "newest") -> RunsView:
        return runs.runs_view(self.db.cursor(), f, number=page, size=size, order=order)

    def page(self, f: RunFilter, *, page: int = 1, size: int = 50,
             order: Literal["newest", "oldest"] = "newest") -> pl.DataFrame:
        return runs.page(self.db.cursor(), f, page=page, size=size, order=order)

    def count(self, f: RunFilter) -> int:
        return runs.count(self.db.cursor(), f)

    def status_counts(self, f: RunFilter) -> dict[str, int]:
        return runs.status_counts(self.db.cursor(), f)

    def daily_counts(self, f: RunFilter) -> pl.DataFrame:
        return runs.daily_counts(self.db.cursor(), f)

    def select_ids(self, f: RunFilter, *, limit: int = 100_000, waiting_apps: Sequence[str] = (),
                   unfixable: bool = False) -> list[str]:
        return runs.select_ids(self.db.cursor(), f, limit=limit, waiting_apps=waiting_apps, unfixable=unfixable)

    def futile_split(self, f: RunFilter, waiting_apps: Sequence[str]) -> tuple[dict[str, int], int]:
        return runs.futile_split(self.db.cursor(), f, waiting_apps)

    def find_exact(self, run_id: str) -> bool:
        return runs.find_exact(self.db.cursor(), run_id)

    def workflows(self) -> list[tuple[str, str]]:
        return runs.workflows(self.db.cursor())

    def latest_retriggers(self, ids: Sequence[str]) -> dict[str, str]:
        return runs.latest_retriggers(self.db.cursor(), ids)

    def comment_counts(self, ids: Sequence[str]) -> dict[str, int]:
        return runs.comment_counts(self.db.cursor(), ids)

    def rejected(self, limit: int = 500) -> pl.DataFrame:
        return runs.rejected(self.db.cursor(), limit)

    def export_batches(self, f: RunFilter, columns: Sequence[str], cap: int,
                       order: Literal["newest", "oldest"] = "newest") -> Iterator[pa.RecordBatch]:
        return runs.export_batches(self.db.cursor(), f, columns, cap, order)

    def auth_failures_by_app(self, days: int = 7) -> dict[str, tuple[int, datetime]]:
        return runs.auth_failures_by_app(self.db.cursor(), days)

    def run_count(self) -> int:
        return int(self.db.cursor().execute("SELECT count(*) FROM fg.runs").fetchall()[0][0])

    def run_record(self, run_id: str) -> RunRecord | None:
        return self._ledger.run_record(run_id)

    # ------------------------------------------------------------ OverviewReader

    def overview(self, w: Window, *, exact_max: int | None = None) -> OverviewView:
        """exact_max: up to this many runs, every figure from the runs (default fourgent.overview.EXACT_MAX)."""
        limit = domain_overview.EXACT_MAX if exact_max is None else exact_max
        return overview.overview_view(self.db.cursor(), w, exact_max=limit)

    def workflow_health(self, now: datetime | None = None, zone: str = UTC_ZONE) -> pl.DataFrame:
        return health.workflow_health(self.db.cursor(), now, zone)

    def unresolved_count(self, f: RunFilter) -> int:
        return unresolved.unresolved_count(self.db.cursor(), f)

    def rollups_current(self) -> bool:
        return rollup.is_current(self.db.cursor())

    # ------------------------------------------------------------ Ledger

    def add_comment(self, run_id: str, author: str, body: str) -> Comment:
        return self._ledger.add_comment(run_id, author, body)

    def comments(self, run_id: str) -> list[Comment]:
        return self._ledger.comments(run_id)

    def paused(self) -> dict[str, tuple[datetime, str]]:
        return self._ledger.paused()

    def set_paused(self, workflow_id: str, pause: bool, who: str = "") -> None:
        self._ledger.set_paused(workflow_id, pause, who)

    def claim(self, run_ids: Sequence[str]) -> set[str]:
        return self._ledger.claim(run_ids)

    def release(self, run_ids: Sequence[str]) -> None:
        self._ledger.release(run_ids)

    def originals(self, run_ids: Sequence[str]) -> dict[str, tuple[str, str | None, dict[str, Any]]]:
        return self._ledger.originals(run_ids)

    def parents(self, run_ids: Sequence[str]) -> dict[str, str]:
        return self._ledger.parents(run_ids)

    def retriggered_since(self, run_ids: Sequence[str], since: datetime) -> dict[str, str]:
        return self._ledger.retriggered_since(run_ids, since)

    def record_retriggers(self, retriggers: Sequence[Retrigger]) -> None:
        self._ledger.record_retriggers(retriggers)

    def orphaned_retriggers(self, mine: str) -> list[tuple[str, str, str | None]]:
        return self._ledger.orphaned_retriggers(mine)

    def interrupted_sends(self, originals: Sequence[str]) -> dict[str, tuple[str, list[int]]]:
        return self._ledger.interrupted_sends(originals)

    def forget_retriggers(self, run_ids: Sequence[str]) -> None:
        self._ledger.forget_retriggers(run_ids)

    def recorded_runs(self, run_ids: Sequence[str]) -> dict[str, RecordedRun]:
        return self._ledger.recorded_runs(run_ids)

    def mark_handled(self, run_ids: Sequence[str], by: str, reason: str) -> list[str]:
        return self._ledger.mark_handled(run_ids, by, reason)

    def unmark_handled(self, run_ids: Sequence[str]) -> list[str]:
        return self._ledger.unmark_handled(run_ids)

    def handled(self, run_ids: Sequence[str]) -> dict[str, Handled]:
        return self._ledger.handled(run_ids)

    def record_audit(self, entry: AuditEntry) -> None:
        self._ledger.record_audit(entry)

    def audit_entries(self, *, actor: str = "", action: str = "", outcome: str = "", since: datetime | None = None,
                      limit: int = 1000) -> list[AuditEntry]:
        return self._ledger.audit_entries(actor=actor, action=action, outcome=outcome, since=since, limit=limit)

    def put_connection(self, app: str, base_url: str, token_encrypted: str | None, token_hint: str | None) -> None:
        self._ledger.put_connection(app, base_url, token_encrypted, token_hint)

    def connection(self, app: str) -> tuple[str, str | None] | None:
        return self._ledger.connection(app)

    def connection_rows(self) -> list[ConnectionRow]:
        return self._ledger.connection_rows()

    def record_calls(self, ok: Sequence[str], refused: Sequence[str]) -> None:
        self._ledger.record_calls(ok, refused)

    # ------------------------------------------------------------ AlertBook

    def alert_rules(self) -> list[AlertRule]:
        return self._alerts.rules()

    def put_alert_rule(self, rule: AlertRule) -> int:
        return self._alerts.put_rule(rule)

    def delete_alert_rule(self, rule_id: int) -> bool:
        return self._alerts.delete_rule(rule_id)

    def alert_destinations(self) -> list[AlertDestinationRow]:
        return self._alerts.destinations()

    def put_alert_destination(self, name: str, url_encrypted: str, masked: str) -> None:
        self._alerts.put_destination(name, url_encrypted, masked)

    def delete_alert_destination(self, name: str) -> bool:
        return self._alerts.delete_destination(name)

    def alert_destination(self, name: str) -> str | None:
        return self._alerts.destination(name)

    def open_alert_episodes(self) -> dict[int, AlertEpisode]:
        return self._alerts.open_episodes()

    def fire_alert(self, rule: AlertRule, summary: str, runs: int, query: str, by: str,
                   at: datetime) -> AlertEpisode | None:
        return self._alerts.fire(rule, summary, runs, query, by, at)

    def resolve_alert(self, episode: int, at: datetime) -> AlertEpisode | None:
        return self._alerts.resolve(episode, at)

    def alerts_still_firing(self, episodes: Sequence[int], at: datetime) -> None:
        self._alerts.still_firing(episodes, at)

    def alert_history(self, limit: int = 500) -> list[AlertEpisode]:
        return self._alerts.history(limit)

    def pending_alerts(self) -> list[AlertDelivery]:
        return self._alerts.pending()

    def alert_delivered(self, delivery: int, ok: bool, attempts: int, reason: str | None, at: datetime) -> None:
        self._alerts.delivered(delivery, ok, attempts, reason, at)

    # ------------------------------------------------------------ LogSink

    def ingest(self, paths: Sequence[Path | str], *, logs_dir: Path | None = None, batch_bytes: int = BATCH_BYTES,
               on_batch: Callable[[IngestReport], None] | None = None) -> IngestReport:
        try:
            return ingest.ingest(self.db, paths, logs_dir=logs_dir, batch_bytes=batch_bytes, on_batch=on_batch)
        except (duckdb.IOException, duckdb.TransactionException, OSError) as exc:
            raise StoreWriteFailed(write_failure(exc)) from exc

    # ------------------------------------------------------------ Retention

    def prune(self, default: datetime | None, per_workflow: Mapping[str, datetime], *, archive: Path | None = None,
              dry_run: bool = False) -> PruneReport:
        return prune.prune(self.db, default, per_workflow, archive=archive, dry_run=dry_run)

    def last_pruned(self) -> datetime | None:
        return prune.last_pruned(self.db)

    # ------------------------------------------------------------ AdhocSQL

    surface: tuple[str, ...] = SURFACE

    def run_sql(self, sql: str, *, max_rows: int, time_limit: float, with_audit: bool = False) -> SqlResult:
        """Run `sql` in a worker process over the read-only snapshot (worker.py): never on this database."""
        return worker.run(self.db.snapshot_dir, sql, max_rows=max_rows, time_limit=time_limit,
                          with_audit=with_audit)

    def describe(self, view: str) -> list[tuple[str, str]]:
        """(column, type) of one documented view."""
        if view not in SURFACE:
            raise ValueError(f"{view} is not one of the documented views")
        return [(r[0], r[1]) for r in self.db.cursor().execute(f"DESCRIBE {view}").fetchall()]  # a SURFACE name
