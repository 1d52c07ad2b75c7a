"""`python -m fourgent bench` on the DuckDB store: ingest and page query speed, beside a bare-DuckDB floor.

The floor runs the very same query functions over a plain table copied from the store, so each ratio says
what the store's own layout (views, delete marks, rollups) costs.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeAlias

import duckdb

from ... import demo
from ... import overview as domain_overview
from ...filters import RunFilter
from ..errors import QueryError, QueryFailed, QueryStopped
from . import health, overview, runs, unresolved
from .database import Database, snapshot_folder
from .ingest import _LINE_TYPE, ingest
from .runs import TABLE_COLUMNS
from .sql import RUN_ROWS

RUNS_PER_FILE = 500_000
OVERVIEW_COLUMNS = "source, destination, error_kind, failed_app"  # what the Overview reads besides the table's


def _write_part(args: tuple[Path, int, int, int, float, str]) -> Path:
    logs, part, runs, parts, days, now_iso = args
    now = datetime.fromisoformat(now_iso)
    # Each part covers its own slice of time, so the files together read oldest to newest.
    span = timedelta(days=days)
    part_now = now - span * (parts - 1 - part) / parts
    files = demo.write_demo(logs / f"part-{part:03d}", runs, seed=1000 + part, days=days / parts,
                            per_file=runs, now=part_now)
    return files.files[0]


def record_demo_lineage(db: Database, files: list[Path]) -> None:
    """The demo's re-triggers recorded as Fourgent's before ingest, as loading the demo does (demo.DemoLogs):
    read back from the (possibly cached) files, since the generator ran in other processes."""
    listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)  # paths this module wrote
    with db.transaction() as cur:
        cur.execute(f"""INSERT OR IGNORE INTO fg.retriggers (run_id, retrigger_of, retriggered_by, retriggered_at)
            SELECT id, retrigger_of, retriggered_by, retriggered_at::TIMESTAMPTZ
            FROM read_json([{listed}], columns = {{id: 'VARCHAR', retrigger_of: 'VARCHAR',
                           retriggered_by: 'VARCHAR', retriggered_at: 'VARCHAR'}}, format = 'newline_delimited')
            WHERE retrigger_of IS NOT NULL""")


def generate(logs: Path, runs: int, days: float = 90.0) -> list[Path]:
    parts = max(1, -(-runs // RUNS_PER_FILE))
    sizes = [runs // parts + (1 if i < runs % parts else 0) for i in range(parts)]
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    jobs = [(logs, i, n, parts, days, now) for i, n in enumerate(sizes)]
    with multiprocessing.get_context("spawn").Pool(max(1, min(os.cpu_count() or 1, parts))) as pool:
        return sorted(pool.map(_write_part, jobs))


# A column's type as _LINE_TYPE spells it: a type name, [element type] or {field: type}.
_LineType: TypeAlias = "str | list[_LineType] | dict[str, _LineType]"


def _sql_type(value: _LineType) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return _sql_type(value[0]) + "[]"
    return "STRUCT(" + ", ".join(f'"{k}" {_sql_type(v)}' for k, v in value.items()) + ")"


def floor_ingest(files: list[Path], db: Path) -> float:
    """Seconds for a bare read_json of the same files into a table: what DuckDB does with no checks at all."""
    columns = {k: _sql_type(v) for k, v in json.loads(_LINE_TYPE).items()}
    con = duckdb.connect(str(db))
    started = time.perf_counter()
    con.execute(
        f"CREATE TABLE raw_runs AS SELECT * FROM read_json(?, format='newline_delimited', columns={columns!r})",
        [[str(f) for f in files]],
    )
    con.execute("CHECKPOINT")
    seconds = time.perf_counter() - started
    con.close()
    return seconds


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    """The median of `repeat` timed calls after one untimed (warming) call, in milliseconds."""
    fn()  # warm
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def query_suite(cur: duckdb.DuckDBPyConnection) -> dict[str, Callable[[duckdb.DuckDBPyConnection], object]]:
    """The Runs page's queries, with filter values picked from the data."""
    wf = cur.execute("SELECT workflow_id FROM runs GROUP BY ALL ORDER BY count(*) DESC LIMIT 1").fetchall()[0][0]
    last = cur.execute("SELECT max(started_at) FROM runs").fetchall()[0][0]
    day_end = last.replace(hour=0, minute=0, second=0, microsecond=0)
    day = (day_end - timedelta(days=1), day_end)
    some_id = cur.execute(
        "SELECT id FROM runs ORDER BY id LIMIT 1 OFFSET (SELECT count(*) // 2 FROM runs)").fetchall()[0][0]
    needle = "rocket foods – deal 42"  # rare: about one reference in 20,000
    failed = RunFilter(statuses=("failed",))
    last_ = domain_overview.last
    everything = RunFilter()
    return {
        "first page, no filter": lambda c: runs.page(c, everything),
        "status = failed": lambda c: runs.page(c, failed),
        "workflow": lambda c: runs.page(c, RunFilter(workflows=(wf,))),
        "one-day range": lambda c: runs.page(c, RunFilter(start=day[0], end=day[1])),
        "status + workflow + range": lambda c: runs.page(
            c, RunFilter(statuses=("failed",), workflows=(wf,), start=day[0] - timedelta(days=6), end=day[1])),
        "page 200 (no filter)": lambda c: runs.page(c, everything, page=200),
        "exact ID": lambda c: runs.find_exact(c, some_id),
        "reference/ID substring": lambda c: runs.page(c, RunFilter(q=needle)),
        "substring, no match (worst)": lambda c: runs.page(c, RunFilter(q="no such text anywhere")),
        "Runs page, full render": lambda c: runs.runs_view(c, RunFilter(statuses=("failed",), workflows=(wf,))),
        "filtered count": lambda c: runs.count(c, RunFilter(statuses=("failed",), workflows=(wf,))),
        "per-status counts": lambda c: runs.status_counts(c, everything),
        "daily counts by status, all": lambda c: runs.daily_counts(c, everything),
        "unresolved failures count (bulk button)": lambda c: unresolved.unresolved_count(c, everything),
        "  the same, 30 days, one workflow": lambda c: unresolved.unresolved_count(
            c, RunFilter(workflows=(wf,), start=last - timedelta(days=30))),
        "Overview, full render, 7 days": lambda c: overview.overview_view(c, last_(timedelta(days=7), last)),
        "Overview, full render, 30 days": lambda c: overview.overview_view(c, last_(timedelta(days=30), last)),
        "Overview, full render, 90 days": lambda c: overview.overview_view(c, last_(timedelta(days=90), last)),
        "Overview, 30 days, one workflow": lambda c: overview.overview_view(c, last_(timedelta(days=30), last, (wf,))),
        "Overview, 30 days, Europe/Paris (hour rollups)": lambda c: overview.overview_view(
            c, last_(timedelta(days=30), last, zone="Europe/Paris")),
        "Overview, 30 days, Asia/Kolkata (+5:30)": lambda c: overview.overview_view(
            c, last_(timedelta(days=30), last, zone="Asia/Kolkata")),
        "Workflows page": lambda c: health.workflow_health(c, last),
    }


def _bare_table(floor_db: Path, store_db: Path) -> None:
    """The same rows as the store's runs view, as one plain table of the same name: the query floor."""
    con = duckdb.connect(str(floor_db))
    con.execute("ATTACH ? AS s (READ_ONLY)", [str(store_db)])
    con.execute("CREATE SCHEMA IF NOT EXISTS fg")
    con.execute(f"CREATE OR REPLACE TABLE {RUN_ROWS} AS SELECT {TABLE_COLUMNS}, search, {OVERVIEW_COLUMNS} "
                f"FROM s.{RUN_ROWS}")
    # What else one Runs page render reads, empty here as in a fresh store.
    con.execute("CREATE OR REPLACE TABLE fg.rejects AS SELECT * FROM s.fg.rejects LIMIT 0")
    con.execute("CREATE OR REPLACE TABLE comments AS SELECT * FROM s.main.comments LIMIT 0")
    con.execute("CREATE OR REPLACE TABLE fg.files AS SELECT * FROM s.fg.files LIMIT 0")
    con.execute("CREATE OR REPLACE TABLE fg.handled AS SELECT * FROM s.fg.handled LIMIT 0")
    con.execute("CREATE OR REPLACE TABLE fg.retriggers AS SELECT * FROM s.fg.retriggers LIMIT 0")
    # No rollups in a bare table: marked out of date, the Overview computes every figure from the rows.
    con.execute("CREATE OR REPLACE TABLE fg.dirty_days AS SELECT 0 AS day")
    con.execute("DETACH s")
    con.execute("DROP TABLE IF EXISTS raw_runs")
    con.execute("CHECKPOINT")
    con.close()


def main(runs: int = 1_000_000, workdir: Path | None = None, repeat: int = 7,
         queries_only: bool = False) -> dict[str, object]:
    repeat = max(repeat, 5)
    if queries_only:
        return rerun_queries(runs, workdir, repeat)
    tmp = None
    if workdir is None:
        tmp = Path(tempfile.mkdtemp(prefix="fourgent-bench-"))
        workdir = tmp
    workdir.mkdir(parents=True, exist_ok=True)
    logs = workdir / f"logs-{runs}"
    try:
        files = sorted(logs.rglob("*.jsonl")) if logs.exists() else []
        if not files:
            print(f"Generating {runs:,} runs in {logs} …", flush=True)
            t = time.perf_counter()
            files = generate(logs, runs)
            print(f"  generated in {time.perf_counter() - t:.0f} s", flush=True)
        jsonl_bytes = sum(f.stat().st_size for f in files)
        store_db, floor_db = workdir / "store.duckdb", workdir / "floor.duckdb"
        for db in (store_db, floor_db):
            for p in (db, db.with_name(db.name + ".wal")):
                p.unlink(missing_ok=True)

        print("Bare read_json into a table (the ingest floor) …", flush=True)
        floor_s = floor_ingest(files, floor_db)

        print("fourgent ingest …", flush=True)
        store = Database(store_db)
        record_demo_lineage(store, files)
        t = time.perf_counter()
        report = ingest(store, [logs])
        store.con.execute("CHECKPOINT")
        ours_s = time.perf_counter() - t
        store.close()
        store_bytes = store_db.stat().st_size
        lines = report.lines
        with duckdb.connect(str(store_db), read_only=True) as probe:
            _, block_size, _, used_blocks, *_ = probe.execute("PRAGMA database_size").fetchall()[0][1:]
        used_bytes = block_size * used_blocks

        with duckdb.connect(str(store_db), read_only=True) as probe:
            n_runs = probe.execute("SELECT count(*) FROM fg.runs").fetchall()[0][0]

        summary = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, "
                       f"duckdb {duckdb.__version__}",
            "lines": lines, "runs": n_runs, "jsonl_mb": round(jsonl_bytes / 1e6, 1),
            "ingest_s": round(ours_s, 2), "floor_ingest_s": round(floor_s, 2),
            "ingest_runs_per_s": round(lines / ours_s), "floor_runs_per_s": round(lines / floor_s),
            "ingest_mb_per_s": round(jsonl_bytes / 1e6 / ours_s, 1),
            "floor_mb_per_s": round(jsonl_bytes / 1e6 / floor_s, 1),
            "ingest_vs_floor": round(floor_s / ours_s, 3),
            # Of which the first write of the SQL snapshot (issue 12): what the store's ingest does after the rows.
            "snapshot_s": round(report.snapshot_seconds, 2),
            "store_mb": round(store_bytes / 1e6, 1), "store_vs_jsonl": round(store_bytes / jsonl_bytes, 3),
            "store_used_mb": round(used_bytes / 1e6, 1),
            "queries": [], "repeat": repeat,
        }
        # Kept before the queries are timed: --queries-only can time them again if that part fails.
        (workdir / f"bench-{runs}.json").write_text(json.dumps(summary, indent=2))
        return rerun_queries(runs, workdir, repeat)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def rerun_queries(runs: int, workdir: Path | None, repeat: int) -> dict[str, object]:
    """Time the queries again on the stores an earlier run left in `workdir` (no new ingest)."""
    if workdir is None or not (workdir / f"bench-{runs}.json").exists():
        raise SystemExit("--queries-only needs the --workdir of an earlier full run with the same --runs")
    summary = json.loads((workdir / f"bench-{runs}.json").read_text())
    store_db, floor_db = workdir / "store.duckdb", workdir / "floor.duckdb"
    _bare_table(floor_db, store_db)  # the floor follows the store's current columns
    store = Database(store_db)
    floor = duckdb.connect(str(floor_db), read_only=True)
    try:
        summary["queries"] = _time_suite(store.cursor(), floor.cursor(), repeat)
    finally:
        store.close()
        floor.close()
    summary["repeat"] = repeat
    summary["queries_date"] = datetime.now(UTC).strftime("%Y-%m-%d")
    _print(summary)
    (workdir / f"bench-{runs}.json").write_text(json.dumps(summary, indent=2))
    return summary


def _time_suite(ours_cur: duckdb.DuckDBPyConnection, floor_cur: duckdb.DuckDBPyConnection,
                repeat: int) -> list[dict[str, object]]:
    results = []
    for name, fn in query_suite(ours_cur).items():
        ours_ms = median_ms(functools.partial(fn, ours_cur), repeat)
        floor_ms = median_ms(functools.partial(fn, floor_cur), repeat)
        results.append({"query": name, "ms": round(ours_ms, 1), "floor_ms": round(floor_ms, 1)})
    return results


def _print(s: dict) -> None:
    print()
    print(f"fourgent bench — {s['runs']:,} runs ({s['lines']:,} lines, {s['jsonl_mb']:,} MB JSONL) — "
          f"{s['date']}, {s['machine']}")
    print()
    print(f"{'ingest':<32}{'fourgent':>14}{'bare read_json':>16}")
    print(f"{'  runs/s':<32}{s['ingest_runs_per_s']:>14,}{s['floor_runs_per_s']:>16,}")
    print(f"{'  MB/s':<32}{s['ingest_mb_per_s']:>14,}{s['floor_mb_per_s']:>16,}")
    print(f"{'  seconds':<32}{s['ingest_s']:>14,}{s['floor_ingest_s']:>16,}")
    print(f"  fourgent reaches {s['ingest_vs_floor']:.0%} of the floor's throughput (target ≥ 70%)")
    if "snapshot_s" in s:
        rows_s = s["ingest_s"] - s["snapshot_s"]
        print(f"  of the {s['ingest_s']:,} s, writing the SQL snapshot took {s['snapshot_s']:,} s; the rows alone "
              f"{rows_s:,.2f} s = {s['floor_ingest_s'] / rows_s:.0%} of the floor")
    print(f"  store {s['store_mb']:,} MB = {s['store_vs_jsonl']:.0%} of the JSONL (target ≤ 60%); "
          f"{s['store_used_mb']:,} MB of it in use, the rest free blocks DuckDB reuses")
    print()
    print(f"{'query (median of ' + str(s['repeat']) + ')':<42}{'fourgent ms':>14}{'bare table ms':>16}")
    for r in s["queries"]:
        print(f"  {r['query']:<40}{r['ms']:>14,}{r['floor_ms']:>16,}")




EXPLORE_QUERIES = {
    "SELECT 1 (the worker's own cost)": "SELECT 1 AS one",
    "count of runs": "SELECT count(*) FROM runs",
    "runs per status": "SELECT status, count(*) FROM runs GROUP BY ALL",
    "failures by app, 7 days": "SELECT failed_app, count(*) FROM runs WHERE status = 'failed' "
                               "AND started_at >= now() - INTERVAL 7 DAY GROUP BY ALL",
    "slowest steps": "SELECT name, median(duration_ms) AS p50 FROM steps GROUP BY ALL ORDER BY p50 DESC LIMIT 5",
}


def explore_bench(workdir: Path, repeat: int = 5) -> dict[str, object]:
    """Ad-hoc SQL through its worker over the snapshot, beside the same query in the dashboard's own process
    (the old path, the floor); the snapshot's first write, its lag after a small ingest, and its disk cost."""
    from . import DuckDBStore, adhoc, worker

    store_db = workdir / "store.duckdb"
    folder = snapshot_folder(store_db)
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    store = DuckDBStore(store_db)  # writes the whole snapshot: a store from before snapshots
    first_write = time.perf_counter() - started
    size = sum(f.stat().st_size for f in folder.rglob("*.parquet"))
    runs = store.run_count()
    timings: dict[str, dict[str, float]] = {}
    out: dict[str, object] = {"runs": runs, "first_snapshot_s": round(first_write, 2),
                              "snapshot_mb": round(size / 1e6, 1),
                              "store_mb": round(store_db.stat().st_size / 1e6, 1), "queries": timings}
    print(f"\nExplore over the snapshot — {runs:,} runs — snapshot written in {first_write:.1f} s, "
          f"{size / 1e6:,.0f} MB ({store_db.stat().st_size / 1e6:,.0f} MB store)")
    print(f"{'query (median of ' + str(repeat) + ')':<42}{'worker ms':>12}{'in-process ms':>16}")
    for label, sql in EXPLORE_QUERIES.items():
        try:
            ours = median_ms(functools.partial(worker.run, folder, sql, time_limit=60), repeat)
        except (QueryError, QueryFailed, QueryStopped) as exc:  # over the worker's limits: say so, go on
            print(f"  {label:<40} not answered in the worker: {str(exc).splitlines()[0][:80]}")
            continue
        floor = median_ms(functools.partial(adhoc.run, store.db.cursor(), sql, time_limit=60), repeat)
        timings[label] = {"worker_ms": round(ours, 1), "in_process_ms": round(floor, 1)}
        print(f"  {label:<40}{ours:>12.1f}{floor:>16.1f}")
    # The lag: 1,000 runs of yesterday (a whole day's file to rewrite), ingested.
    now = datetime.now(UTC) - timedelta(days=1)
    log = workdir / "lag.jsonl"
    with open(log, "w", encoding="utf-8") as f:
        for i in range(1000):
            f.write(json.dumps({"id": f"lag_{now:%H%M%S}_{i:04d}", "workflow": {"id": "lag", "source": "A",
                                "destination": "B"}, "status": "finished", "started_at": now.isoformat(),
                                "finished_at": now.isoformat()}) + "\n")
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    lags = []
    for _ in range(3):
        report = store.ingest([log])
        lags.append(report.snapshot_seconds)
        log.write_text(log.read_text().replace('"finished"', '"finished" '))  # a changed file: read again
    out["lag_s"] = round(statistics.median(lags), 2)
    print(f"  snapshot lag after an ingest of 1,000 runs (median of 3): {statistics.median(lags):.2f} s "
          f"(yesterday's file rewritten: {store.count(RunFilter(start=day, end=day + timedelta(days=1))):,} runs)")
    log.unlink()
    store.close()
    return out


def refresh_bench(files: int = 20_000, repeat: int = 15) -> dict[str, object]:
    """A refresh with nothing new over many one-line log files, beside its floor: listing the folder and
    stat'ing every file in Python, which a refresh cannot skip (an append changes no folder's mtime)."""
    from . import DuckDBStore

    tmp = Path(tempfile.mkdtemp(prefix="fourgent-refresh-"))
    try:
        logs = tmp / "logs"
        logs.mkdir()
        started = datetime(2026, 11, 20, 10, tzinfo=UTC).isoformat()
        for i in range(files):
            (logs / f"engine-{i:06d}.jsonl").write_text(json.dumps({
                "id": f"r{i}", "workflow": {"id": "w", "source": "A", "destination": "B"},
                "status": "finished", "started_at": started}) + "\n")
        store = DuckDBStore(tmp / "store.duckdb")
        t = time.perf_counter()
        store.ingest([logs], logs_dir=logs)
        first = time.perf_counter() - t

        def listing() -> None:
            with os.scandir(logs) as entries:
                for entry in entries:
                    os.stat(entry.path)

        ours = median_ms(lambda: store.ingest([logs], logs_dir=logs), repeat)
        floor = median_ms(listing, repeat)
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nRefresh over {files:,} one-line files — first ingest {first:.1f} s")
    print(f"  refresh with nothing new (median of {repeat}): {ours:.1f} ms; floor (scandir + stat): {floor:.1f} ms")
    return {"files": files, "first_ingest_s": round(first, 2), "refresh_ms": round(ours, 1),
            "floor_ms": round(floor, 1)}


def prune_bench(runs: int, workdir: Path, keep: float = 0.1) -> dict[str, object]:
    """What retention costs on a store of `runs` demo runs: the dashboard's daily prune (its oldest day's runs:
    what a page's refresh waits for once a day), then pruning to the newest `keep` share in one command (its
    seconds, the file's size before and after), then the logs read again (nothing comes back). The store is
    built once in `workdir` (logs and `store.duckdb` with its snapshot) and copied for each run, never pruned."""
    from . import DuckDBStore

    built = workdir / "store.duckdb"
    logs = workdir / f"logs-{runs}"
    if not built.exists():
        files = sorted(logs.rglob("*.jsonl")) if logs.exists() else []
        if not files:
            print(f"Generating {runs:,} runs in {logs} …", flush=True)
            files = generate(logs, runs)
        print("Ingesting them into a store kept in the workdir …", flush=True)
        db = Database(built)
        record_demo_lineage(db, files)
        ingest(db, [logs], logs_dir=logs)
        db.close()
        DuckDBStore(built).close()  # writes its snapshot
    copy = workdir / "prune.duckdb"
    for leftover in (copy, copy.with_name(copy.name + ".wal")):
        leftover.unlink(missing_ok=True)
    shutil.rmtree(snapshot_folder(copy), ignore_errors=True)
    shutil.copyfile(built, copy)
    shutil.copytree(snapshot_folder(built), snapshot_folder(copy))
    size_before = copy.stat().st_size
    store = DuckDBStore(copy)
    try:
        total = store.run_count()
        cur = store.db.cursor()
        first, cutoff = cur.execute("SELECT min(started_at), quantile_disc(started_at, ?) FROM fg.runs",
                                    [1 - keep]).fetchall()[0]
        del cur
        day = store.prune(first + timedelta(days=1), {})
        print(f"\nRetention on {total:,} runs ({size_before / 1e6:,.1f} MB store)")
        print(f"  the daily prune (the oldest day: {day.runs:,} runs): {day.seconds:.2f} s, file rewritten: "
              f"{day.compacted}")
        report = store.prune(cutoff, {})
        left = store.run_count()
        size_after = copy.stat().st_size
        out: dict[str, object] = {
            "runs": total, "daily_pruned": day.runs, "daily_seconds": round(day.seconds, 2),
            "pruned": report.runs + day.runs, "left": left, "cutoff": cutoff.isoformat(),
            "seconds": round(report.seconds, 1), "bytes_before": size_before, "bytes_after": size_after,
            "share": round(size_after / size_before, 3), "compacted": report.compacted,
        }
        print(f"  prune to the newest {left:,} (from {cutoff:%Y-%m-%d %H:%M} UTC), {report.runs:,} runs: "
              f"{report.seconds:.1f} s, file rewritten: {report.compacted}")
        print(f"  store file {size_before / 1e6:,.1f} MB → {size_after / 1e6:,.1f} MB "
              f"({size_after / size_before:.1%} of before)")
        t = time.perf_counter()
        again = store.ingest([logs], logs_dir=logs)
        out["reingest_s"] = round(time.perf_counter() - t, 2)
        out["reingest_lines"] = again.lines
        print(f"  the logs read again: {again.lines:,} new lines ({time.perf_counter() - t:.2f} s); runs now "
              f"{store.run_count():,}")
    finally:
        store.close()
    (workdir / f"prune-{runs}.json").write_text(json.dumps(out, indent=2))
    return out
