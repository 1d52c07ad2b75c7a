"""Pruning old runs on ClickHouse: archived to Parquet first, whole months dropped as partitions (the disk is freed at
once), the rest deleted row by row, with the ledger rows of the pruned runs and the rejected lines older than every
cutoff; the rollups of the days touched are written again.

The rules are the embedded store's (its prune.py): a run goes when it started before its workflow's cutoff, else the
default one (None: kept); rejected lines go when older than every cutoff, so never while a workflow keeps its runs
for good. ClickHouse has no transaction over these statements: they run archive first, then the ledger rows, the
rejected lines and the runs last, so a prune cut short and run again finishes the job and loses nothing unarchived.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pyarrow.parquet as pq

from ...retention import archive_folder
from ..records import PruneReport
from . import rollup
from .ids import fresh_id
from .ledger import DETAIL_SQL
from .sql import RUNS, Params, instant, micros

META_DDL = """
CREATE TABLE IF NOT EXISTS meta (key String, value String, changed_at DateTime64(6, 'UTC') DEFAULT now64(6))
ENGINE = ReplacingMergeTree(changed_at) ORDER BY key
"""
PRUNED_AT = "pruned_at"
KEPT = -(2**62)  # a cutoff in microseconds no run started before: a workflow without one keeps its runs
# The ledger tables whose rows belong to one run: a pruned run's rows go with it, archived beside it.
PER_RUN_TABLES = ("comments", "retriggers", "retrigger_claims", "handled")
APPEND_ONLY = ("comments",)


class Store(Protocol):
    client: Any

    def _rows(self, sql: str, p: Params | None = None,
              settings: dict[str, Any] | None = None) -> list[tuple[Any, ...]]: ...
    def bytes_on_disk(self) -> int: ...


def prune(store: Store, default: datetime | None, per_workflow: Mapping[str, datetime], *,
          archive: Path | None = None, dry_run: bool = False) -> PruneReport:
    started = time.perf_counter()
    report = PruneReport(dry_run=dry_run, bytes_before=store.bytes_on_disk())
    p = Params()
    cutoff = (f"transform(toString(workflow_id), {p.add(list(per_workflow), 'Array(String)')}, "
              f"{p.add([micros(t) for t in per_workflow.values()], 'Array(Int64)')}, "
              f"toInt64({p.add(micros(default) if default is not None else KEPT, 'Int64')}))")
    pruned = f"toUnixTimestamp64Micro(started_at) < {cutoff}"
    ids = f"SELECT id FROM {RUNS} WHERE {pruned}"
    oldest = min([default, *per_workflow.values()]) if default is not None else None
    rejects = "0" if oldest is None else f"ingested_at < {instant(oldest, p)}"

    def count(sql: str) -> int:
        return int(store._rows(f"SELECT count() FROM ({sql})", p)[0][0])

    report.runs = count(ids)
    report.rejected_lines = count(f"SELECT 1 FROM rejects FINAL WHERE {rejects}")
    owned = {t: count(f"SELECT 1 FROM {t}{'' if t in APPEND_ONLY else ' FINAL'} WHERE run_id IN ({ids})")
             for t in PER_RUN_TABLES}
    report.comments = owned["comments"]
    report.ledger_rows = sum(n for t, n in owned.items() if t != "comments")
    if dry_run:
        report.seconds = time.perf_counter() - started
        return report
    if archive is not None:
        folder = archive_folder(archive)
        partial = folder.with_name(f".{folder.name}.tmp")
        partial.mkdir(parents=True)
        for name, sql in (("runs", f"SELECT * FROM ({DETAIL_SQL}) WHERE id IN ({ids})"),
                          ("rejected_lines",
                           f"SELECT file, line, reason, raw, ingested_at FROM rejects FINAL WHERE {rejects}"),
                          *((t, f"SELECT * EXCEPT (changed_at, deleted) FROM {t} FINAL WHERE run_id IN ({ids})"
                             if t not in APPEND_ONLY else f"SELECT * FROM {t} WHERE run_id IN ({ids})")
                            for t in PER_RUN_TABLES)):
            pq.write_table(store.client.query_arrow(sql, parameters=p.values), partial / f"{name}.parquet")
        partial.rename(folder)  # whole, before anything is removed
        report.archive = str(folder)
    if report.runs:
        mark = p.add(fresh_id(), "UInt64")
        day = rollup.DAY
        store.client.command(  # the days of the pruned runs, and of the originals a pruned re-trigger resolved
            f"INSERT INTO dirty_days SELECT DISTINCT {day}, {mark} FROM {RUNS} WHERE {pruned} OR id IN "
            f"(SELECT retrigger_of FROM {RUNS} WHERE {pruned} AND retrigger_of IS NOT NULL)", parameters=p.values)
    for table in PER_RUN_TABLES:
        store.client.command(f"DELETE FROM {table} WHERE run_id IN ({ids})", parameters=p.values)
    store.client.command(f"DELETE FROM rejects WHERE {rejects}", parameters=p.values)
    if oldest is not None:  # months every run of which goes: dropped whole, their disk freed at once
        before = p.add(micros(oldest), "Int64")
        for (month,) in store._rows(f"SELECT toYYYYMM(started_at) AS month FROM runs GROUP BY month HAVING "
                                    f"toUnixTimestamp64Micro(max(started_at)) < {before}", p):
            store.client.command(f"ALTER TABLE runs DROP PARTITION {int(month)}")
    store.client.command(f"DELETE FROM runs WHERE {pruned}", parameters=p.values)
    store.client.command("INSERT INTO meta (key, value) VALUES ({k:String}, {v:String})",
                         parameters={"k": PRUNED_AT, "v": datetime.now(UTC).isoformat()})
    rollup.refresh(store)
    report.bytes_after = store.bytes_on_disk()
    report.seconds = time.perf_counter() - started
    return report


def last_pruned(store: Store) -> datetime | None:
    p = Params()
    found = store._rows(f"SELECT value FROM meta FINAL WHERE key = {p.add(PRUNED_AT, 'String')}", p)
    return datetime.fromisoformat(found[0][0]) if found else None
