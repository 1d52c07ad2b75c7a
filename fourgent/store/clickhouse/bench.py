"""The Runs, Overview and Workflows pages' reads timed side by side: the embedded store a full bench left in a
folder, and a copy of it in ClickHouse (chDB in this process), the same reads on each
(`python -m fourgent bench --store clickhouse`)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from ...filters import RunFilter
from ...overview import Window
from ..duckdb import DuckDBStore
from ..duckdb.bench import median_ms
from . import ClickHouseStore, SchemaMismatch, rollup
from .sql import Params


def _embedded_ingest(workdir: Path, runs: int) -> int | None:
    """The embedded store's ingest runs/s, as its full bench in `workdir` recorded it."""
    found = sorted(workdir.glob("bench-[0-9]*.json"))
    return json.loads(found[0].read_text()).get("ingest_runs_per_s") if found else None


NEEDLE = "rocket foods – deal 42"  # rare: about one reference in 20,000 of the bench's runs


def _overview(w: Window) -> Callable[[Any], object]:
    return lambda s: s.overview(w)


def suite(embedded: DuckDBStore) -> dict[str, Callable[[Any], object]]:
    """The pages' reads, with values picked from the data; each takes either engine's store."""
    newest = embedded.page(RunFilter(), size=1)
    last = newest["started_at"][0]
    total = embedded.run_count()
    middle = embedded.page(RunFilter(), page=total // 2, size=1)["id"][0]
    counts = {wf: embedded.count(RunFilter(workflows=(wf,))) for wf, _ in embedded.workflows()}
    wf = max(counts, key=lambda w: counts[w])
    day_end = last.replace(hour=0, minute=0, second=0, microsecond=0)
    day = (day_end - timedelta(days=1), day_end)
    failed_wf = RunFilter(statuses=("failed",), workflows=(wf,))
    return {
        "first page, no filter": lambda s: s.page(RunFilter()),
        "status = failed": lambda s: s.page(RunFilter(statuses=("failed",))),
        "workflow": lambda s: s.page(RunFilter(workflows=(wf,))),
        "one-day range": lambda s: s.page(RunFilter(start=day[0], end=day[1])),
        "status + workflow + range": lambda s: s.page(
            RunFilter(statuses=("failed",), workflows=(wf,), start=day[0] - timedelta(days=6), end=day[1])),
        "page 200 (no filter)": lambda s: s.page(RunFilter(), page=200),
        "exact ID": lambda s: s.find_exact(middle),
        "reference/ID substring": lambda s: s.page(RunFilter(q=NEEDLE)),
        "substring, no match (worst)": lambda s: s.page(RunFilter(q="no such text anywhere")),
        "Runs page, full render": lambda s: s.runs_view(failed_wf),
        "filtered count": lambda s: s.count(failed_wf),
        "per-status counts": lambda s: s.status_counts(RunFilter()),
        "daily counts by status, all": lambda s: s.daily_counts(RunFilter()),
        "unresolved failures, counted from the runs": lambda s: s.count(RunFilter(unresolved=True)),
        # The Overview as the page asks for it (each window and the one before it); the embedded store reads
        # whole hours from its rollups past EXACT_MAX runs, ClickHouse reads the runs (no rollups yet).
        **{f"Overview, last {days} days": _overview(Window(day_end - timedelta(days=days), day_end))
           for days in (7, 30, 90)},
        "Workflows page (health)": lambda s: s.workflow_health(day_end),
    }


def ingest_bench(embedded: DuckDBStore, logs: Path, target: Path) -> dict[str, object]:
    """The same log files the embedded store read, ingested into an empty ClickHouse database at `target` (its
    re-trigger ledger copied first, as the embedded bench recorded it before its ingest): seconds and runs/s, the
    counts checked against the embedded store's. The folder is removed after (the copy for the reads follows)."""
    if target.exists():
        shutil.rmtree(target)
    store = ClickHouseStore(f"chdb://{target}")
    try:
        for table, reader in embedded.dump():
            if table == "retriggers":
                for batch in reader:
                    if batch.num_rows:
                        store.client.insert_arrow("retriggers", pa.Table.from_batches([batch]))
        print(f"Ingesting {logs} into ClickHouse (chDB) …", flush=True)
        started = time.perf_counter()
        report = store.ingest([logs], logs_dir=logs)
        seconds = time.perf_counter() - started
        want = embedded.table_counts()
        got = store.counts()
        if (got["runs"], got["rejects"]) != (want["runs"], want["rejects"]):
            raise SystemExit(f"ClickHouse ingested {got['runs']:,} runs and {got['rejects']:,} rejected lines; the "
                             f"embedded store holds {want['runs']:,} and {want['rejects']:,}")
        print(f"Ingest: {report.lines:,} lines in {seconds:.1f} s ({report.lines / seconds:,.0f} runs/s)", flush=True)
        return {"ingest_s": round(seconds, 1), "ingest_runs_per_s": round(report.lines / seconds),
                "ingest_mb": round(store.bytes_on_disk() / 1e6, 1)}
    finally:
        store.close()
        shutil.rmtree(target, ignore_errors=True)


def side_by_side(workdir: Path, repeat: int = 7, fresh: bool = False, ingest: bool = True) -> dict[str, object]:
    """Copy workdir/store.duckdb into workdir/clickhouse (unless a copy with the same counts is there), then
    time each read on both; printed and written to workdir/bench-clickhouse-<runs>.json."""
    source = workdir / "store.duckdb"
    if not source.exists():
        raise SystemExit("--store clickhouse needs the --workdir of an earlier full bench (it holds store.duckdb)")
    embedded = DuckDBStore(source, read_only=True)
    target = workdir / "clickhouse"
    copy_s = None
    ingested: dict[str, object] = {}
    try:
        expected = embedded.table_counts()
        logs = sorted(workdir.glob("logs-*"))
        if ingest and logs:
            if target.exists():  # chDB opens one folder per process, and the disk holds one more copy at a time
                shutil.rmtree(target)
            ingested = ingest_bench(embedded, logs[0], workdir / "clickhouse-ingest")
        if fresh and target.exists():
            shutil.rmtree(target)
        try:
            copy = ClickHouseStore(f"chdb://{target}")
        except SchemaMismatch:  # a copy made by another version of the schema: made again
            shutil.rmtree(target)
            copy = ClickHouseStore(f"chdb://{target}")
        try:
            if copy.run_count() and copy.counts() != expected:
                copy.close()
                shutil.rmtree(target)
                copy = ClickHouseStore(f"chdb://{target}")
            if not copy.run_count():
                print(f"Copying {expected['runs']:,} runs into ClickHouse (chDB) …", flush=True)
                t = time.perf_counter()
                copy.load(embedded.dump())
                copy_s = time.perf_counter() - t
                if copy.counts() != expected:
                    raise SystemExit(f"the copy holds {copy.counts()}, the embedded store {expected}")
            else:
                copy.merge()  # a copy cut short before its merge would be timed unmerged
            rows: list[dict[str, object]] = []
            for label, read in suite(embedded).items():
                ours = median_ms(lambda r=read: r(embedded), repeat)  # type: ignore[misc]
                theirs = median_ms(lambda r=read: r(copy), repeat)  # type: ignore[misc]
                rows.append({"query": label, "duckdb_ms": round(ours, 1), "clickhouse_ms": round(theirs, 1)})
                print(f"  {label:<44} DuckDB {ours:8.1f} ms   ClickHouse {theirs:8.1f} ms", flush=True)
            disk = copy.bytes_on_disk()
            summary: dict[str, object] = {
                "runs": expected["runs"], "copy_s": round(copy_s, 1) if copy_s else None,
                "copy_runs_per_s": round(expected["runs"] / copy_s) if copy_s else None,
                "duckdb_mb": round(source.stat().st_size / 1e6, 1), "clickhouse_mb": round(disk / 1e6, 1),
                **ingested, "duckdb_ingest_runs_per_s": _embedded_ingest(workdir, expected["runs"]),
                "repeat": repeat, "queries": rows,
            }
        finally:
            copy.close()
    finally:
        embedded.close()
    if ingested:
        print(f"Ingest: ClickHouse {ingested['ingest_runs_per_s']:,} runs/s, embedded DuckDB "
              f"{summary['duckdb_ingest_runs_per_s'] or '?'} runs/s (its full bench)")
    if copy_s:
        print(f"Copy: {copy_s:.1f} s ({expected['runs'] / copy_s:,.0f} runs/s)")
    print(f"On disk: DuckDB {summary['duckdb_mb']} MB, ClickHouse {summary['clickhouse_mb']} MB")
    (workdir / f"bench-clickhouse-{expected['runs']}.json").write_text(json.dumps(summary, indent=2))
    return summary


# Columns a grown copy changes: its IDs (and the IDs its lineage names) end in "~k", its times are k microseconds
# later. Everything else (workflow, status, error, reference, steps, payload) is the original's.
_SUFFIXED = ("id", "retrigger_of", "retrigger_claim", "run_id")
_SHIFTED = ("started_at", "finished_at", "updated_at", "retriggered_at", "handled_at")
_GROWN = ("runs", "retriggers", "handled")


def grow(store: ClickHouseStore, factor: int) -> None:
    """Every run, re-trigger record and handled mark of `store` again factor - 1 times, written by the engine from
    its own rows: copy k's IDs end in "~k" and its times are k microseconds later, so each copy keeps its original's
    day, status, error and lineage, and the store holds `factor` times the runs over the same weeks (what that many
    runs would look like, no log read: this times reads, not ingest). Then merged, and the rollups written again."""
    if factor < 2:
        raise ValueError("grow by a factor of 2 or more")
    for table in _GROWN:
        p = Params()
        names = [r[0] for r in store._rows(
            f"SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {p.add(table, 'String')} "
            "AND default_kind != 'MATERIALIZED' ORDER BY position", p)]
        exprs = [f"if({n} IS NULL, NULL, concat({n}, '~', toString(k)))" if n in _SUFFIXED
                 else f"{n} + toIntervalMicrosecond(k)" if n in _SHIFTED else n for n in names]
        rows = f"SELECT * FROM {table} FINAL WHERE deleted = 0"  # the live rows, read once as the insert starts
        store.client.command(f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(exprs)} "
                             f"FROM ({rows}) AS r CROSS JOIN (SELECT number AS k FROM numbers(1, {factor - 1})) AS n",
                             settings={"max_insert_threads": 2})
    store.merge()
    rollup.mark_all(store)
    store.refresh_rollups()


def scaled(workdir: Path, factor: int, repeat: int = 7) -> dict[str, object]:
    """The ClickHouse reads of the side-by-side bench on `factor` times workdir/store.duckdb's runs: the store
    copied into workdir/clickhouse-x<factor> and grown there in the engine (grow), unless a grown copy of the same
    size is there; each read's median beside the one the last side-by-side run recorded for the copy as it is."""
    source = workdir / "store.duckdb"
    if not source.exists():
        raise SystemExit("--scale needs the --workdir of an earlier full bench (it holds store.duckdb)")
    embedded = DuckDBStore(source, read_only=True)
    target = workdir / f"clickhouse-x{factor}"
    try:
        runs = embedded.table_counts()["runs"]
        try:
            store = ClickHouseStore(f"chdb://{target}")
        except SchemaMismatch:
            shutil.rmtree(target)
            store = ClickHouseStore(f"chdb://{target}")
        try:
            grow_s = None
            if store.run_count() != runs * factor:
                store.close()
                shutil.rmtree(target, ignore_errors=True)
                store = ClickHouseStore(f"chdb://{target}")
                print(f"Copying {runs:,} runs into ClickHouse (chDB), then growing them to {runs * factor:,} …",
                      flush=True)
                store.load(embedded.dump())
                t = time.perf_counter()
                grow(store, factor)
                grow_s = time.perf_counter() - t
                if store.run_count() != runs * factor:
                    raise SystemExit(f"the grown copy holds {store.run_count():,} runs, not {runs * factor:,}")
                print(f"Grown in {grow_s:.1f} s (written, merged, rollups made)", flush=True)
            before = _recorded(workdir, runs)
            rows: list[dict[str, object]] = []
            for label, read in suite(embedded).items():
                ms = median_ms(lambda r=read: r(store), repeat)  # type: ignore[misc]
                was = before.get(label)
                rows.append({"query": label, "clickhouse_ms": round(ms, 1), "recorded_ms": was})
                growth = f"{ms / was:5.1f}×" if was else "     "
                print(f"  {label:<44} ClickHouse {runs * factor:,} runs {ms:8.1f} ms   "
                      f"{runs:,} runs {was if was is not None else '?':>8} ms   {growth}", flush=True)
            summary: dict[str, object] = {"runs": runs * factor, "grown_from": runs, "grow_s": grow_s and
                                          round(grow_s, 1), "clickhouse_mb": round(store.bytes_on_disk() / 1e6, 1),
                                          "repeat": repeat, "queries": rows}
        finally:
            store.close()
    finally:
        embedded.close()
    print(f"On disk: ClickHouse {summary['clickhouse_mb']} MB")
    (workdir / f"bench-clickhouse-{runs * factor}.json").write_text(json.dumps(summary, indent=2))
    return summary


def _recorded(workdir: Path, runs: int) -> dict[str, float]:
    """Each read's ClickHouse median from the side-by-side run recorded for `runs` runs in workdir, if any."""
    found = workdir / f"bench-clickhouse-{runs}.json"
    if not found.exists():
        return {}
    return {q["query"]: q["clickhouse_ms"] for q in json.loads(found.read_text())["queries"]}
