"""Pruning old runs: archived to Parquet first, removed with what belongs to them, then the file shrunk.

One transaction removes the runs started before their cutoff (a workflow's own, else the default), the ledger
rows of those runs (PER_RUN_TABLES) and the rejected lines read before the oldest cutoff, after marking the
days they fall on for the rollups and the snapshot, so both are recomputed from what is left (exact, as after
an ingest). `fg.files` is not touched: each file's offset stays, so reading the logs again does not bring a
pruned run back. DuckDB never gives freed blocks back to the file system, so when a prune leaves enough of
the file free, the database is copied into a new file that replaces it (Database.compact).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ...retention import COMPACT_SHARE, archive_folder
from ..records import PruneReport
from . import rollup, snapshot
from .database import Cursor, Database, in_transaction
from .sql import DAY_SQL

# The ledger tables whose rows belong to one run (its `run_id`): a pruned run's rows go with it, archived
# beside it. ONE list: a new per-run table gets its line here and is pruned and archived with the runs.
# (fg.audit is not one: it is append-only and keeps every action, prunes included.)
PER_RUN_TABLES = ("fg.comments", "fg.retriggers", "fg.retrigger_claims", "fg.handled")
COMMENTS = "fg.comments"

_CUTOFFS = "fg_prune_cutoffs"  # a temporary table: (workflow_id, cutoff) of the workflows with their own
# A run to prune: started before its workflow's cutoff, else before the default one (none: kept).
_PRUNED = (f"r.started_at < coalesce((SELECT c.cutoff FROM {_CUTOFFS} c WHERE c.workflow_id = r.workflow_id), "
           "$default::TIMESTAMPTZ)")
_PRUNED_IDS = f"SELECT r.id FROM fg.runs r WHERE {_PRUNED}"
PRUNED_AT = "pruned_at"  # fg.meta: when the last prune ran (the dashboard applies its policy once a day)


def prune(db: Database, default: datetime | None, per_workflow: Mapping[str, datetime], *,
          archive: Path | None = None, dry_run: bool = False) -> PruneReport:
    """Remove the runs started before their cutoff (see the module); `archive`: write them to Parquet in a new
    folder there first; `dry_run`: count only, change nothing."""
    started = time.perf_counter()
    report = PruneReport(dry_run=dry_run, bytes_before=_file_bytes(db.path))
    with db.write_lock:
        share = _remove_rows(db, default, per_workflow, archive, report)
        if not dry_run and report.runs and share >= COMPACT_SHARE:
            try:
                db.compact()
                report.compacted = True
            except (OSError, duckdb.Error) as exc:  # e.g. no room for the copy: the prune itself stands
                report.not_compacted = f"{type(exc).__name__}: {exc}"
    report.bytes_after = _file_bytes(db.path)
    report.seconds = time.perf_counter() - started
    return report


def _remove_rows(db: Database, default: datetime | None, per_workflow: Mapping[str, datetime],
                 archive: Path | None, report: PruneReport) -> float:
    """Count (and unless dry, archive and remove) the rows into `report`; returns the larger of the share of
    runs removed and the share of the file's blocks left free. Its cursor is closed on return, so a file
    swap after it waits for no one."""
    # Rejected lines cannot be told apart by workflow: they go when older than every cutoff, so never while
    # some workflow keeps its runs for good (no default).
    rejects_before = min([default, *per_workflow.values()]) if default is not None else None
    params = {"default": default}
    cur = db.cursor()
    try:
        cur.execute(f"CREATE OR REPLACE TEMP TABLE {_CUTOFFS} AS SELECT unnest($wfs::VARCHAR[]) AS workflow_id, "
                    "unnest($cuts::TIMESTAMPTZ[]) AS cutoff",
                    {"wfs": list(per_workflow), "cuts": list(per_workflow.values())})
        report.runs = _count(cur, f"SELECT count(*) FROM fg.runs r WHERE {_PRUNED}", params)
        runs_before = _count(cur, "SELECT count(*) FROM fg.runs", {})
        report.rejected_lines = _count(cur, "SELECT count(*) FROM fg.rejects WHERE ingested_at < $before",
                                       {"before": rejects_before})
        owned = {t: _count(cur, f"SELECT count(*) FROM {t} WHERE run_id IN ({_PRUNED_IDS})", params)
                 for t in PER_RUN_TABLES}
        report.comments = owned[COMMENTS]
        report.ledger_rows = sum(n for t, n in owned.items() if t != COMMENTS)
        if report.dry_run:
            return 0.0
        folder = archive_folder(archive) if archive is not None else None
        partial = folder.with_name(f".{folder.name}.tmp") if folder is not None else None
        try:
            with in_transaction(cur):
                if partial is not None:
                    _write_archive(cur, partial, params, rejects_before)
                _remove(cur, params, rejects_before)
                cur.execute("INSERT OR REPLACE INTO fg.meta VALUES (?, ?)", [PRUNED_AT, datetime.now(UTC).isoformat()])
                if folder is not None and partial is not None:  # whole before the removal commits
                    os.replace(partial, folder)
        except BaseException:
            if partial is not None:
                shutil.rmtree(partial, ignore_errors=True)
            raise
        report.archive = str(folder) if folder is not None else None
        rollup.refresh(cur)  # the marked days, from what is left
        snapshot.refresh(cur, db.snapshot_dir)  # their day files rewritten, or removed when empty
        for view in ("rejected_lines", "comments", "retriggers", "handled"):
            snapshot.write_view(cur, db.snapshot_dir, view)
        cur.execute("CHECKPOINT")
        total, free = cur.execute("SELECT total_blocks, free_blocks FROM pragma_database_size() "
                                  "WHERE database_name = current_database()").fetchall()[0]
        return max(report.runs / runs_before if runs_before else 0.0, free / total if total else 0.0)
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {_CUTOFFS}")
        cur.close()


def last_pruned(db: Database) -> datetime | None:
    found = db.cursor().execute("SELECT value FROM fg.meta WHERE key = ?", [PRUNED_AT]).fetchall()
    return datetime.fromisoformat(found[0][0]) if found else None


def _remove(cur: Cursor, params: dict[str, datetime | None], rejects_before: datetime | None) -> None:
    """Inside the caller's transaction: mark the days, then remove the ledger rows, rejects and runs."""
    cur.execute(f"""INSERT OR IGNORE INTO fg.dirty_days
        SELECT DISTINCT {DAY_SQL} FROM fg.runs r WHERE {_PRUNED}
        UNION  -- a pruned re-trigger's original, should it be kept (its resolution changes)
        SELECT DISTINCT {DAY_SQL} FROM fg.runs
        WHERE id IN (SELECT r.retrigger_of FROM fg.runs r WHERE {_PRUNED} AND r.retrigger_of IS NOT NULL)""", params)
    for table in PER_RUN_TABLES:
        cur.execute(f"DELETE FROM {table} WHERE run_id IN ({_PRUNED_IDS})", params)
    cur.execute("DELETE FROM fg.rejects WHERE ingested_at < $before", {"before": rejects_before})
    cur.execute(f"DELETE FROM fg.runs r WHERE {_PRUNED}", params)


def _write_archive(cur: Cursor, folder: Path, params: dict[str, datetime | None],
                   rejects_before: datetime | None) -> None:
    """The rows about to be removed, one Parquet file per kind: runs (with their steps), rejected lines and
    each per-run ledger table's rows."""
    folder.mkdir(parents=True)
    _copy(cur, f"SELECT s.* FROM fg.snapshot_rows s WHERE s.id IN ({_PRUNED_IDS})", folder / "runs.parquet", params)
    _copy(cur, "SELECT * FROM main.rejected_lines WHERE ingested_at < $before", folder / "rejected_lines.parquet",
          {"before": rejects_before})
    for table in PER_RUN_TABLES:
        _copy(cur, f"SELECT * FROM {table} WHERE run_id IN ({_PRUNED_IDS})",
              folder / f"{table.removeprefix('fg.')}.parquet", params)


def _copy(cur: Cursor, select: str, target: Path, params: Mapping[str, object]) -> None:
    literal = str(target).replace("'", "''")  # a path this module made (under the archive folder asked for)
    cur.execute(f"COPY ({select}) TO '{literal}' (FORMAT parquet)", dict(params))


def _count(cur: Cursor, sql: str, params: Mapping[str, object]) -> int:
    return int(cur.execute(sql, dict(params)).fetchall()[0][0])


def _file_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + ".wal")) if p.exists())
