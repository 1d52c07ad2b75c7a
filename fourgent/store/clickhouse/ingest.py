"""The ClickHouse log sink: lines parsed by the embedded engine's rules, written so that many workers can run at once.

Files are read as the embedded store reads them (the DuckDB ingester's reading half: rotation, .gz, long lines,
unreadable files); each batch is parsed by the same SQL on an in-memory DuckDB (`parse_batch`), so one set of line
rules serves both engines. Then, per batch, with no lock held anywhere:

1. rule 1 of the spec (snapshot order) is applied against what the database holds for the batch's runs: a snapshot
   that loses is not written, one that wins is written with a `seq` above the stored one's;
2. the runs, then the rejected lines, are inserted with a deduplication token made of the batch's file ranges, so
   a batch written again after a crash is dropped by the server; both tables also collapse on their natural key
   (a run's sorting key, a rejected line's file and line) should a range be cut differently the second time;
3. the files' offsets are written last: a worker killed before that reads the same ranges again.

Two workers must be given disjoint files (each its own folder); each sees the other's files as read before and
leaves them alone, since only files under the folders it lists can be retired.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from ...logfiles import BATCH_BYTES, IngestReport, prefetch, scan
from ...rotation import FileRow, escaped
from ...spec import REJECTS_KEPT_PER_FILE
from ..duckdb.ingest import Ingester, _Batch, first_rejects, parse_batch, retired_name
from ..duckdb.schema import MIGRATIONS
from . import rollup
from .ids import fresh_id
from .sql import RUNS, Params

if TYPE_CHECKING:
    from . import ClickHouseStore

LOOKUP_IDS = 200_000  # run IDs per lookup of the stored snapshots: an array past 1,000,000 is refused by the engine
_FILE_COLUMNS = ("file_id", "path", "size", "mtime_ns", "offset", "lines", "head_len", "head_digest", "dev", "ino",
                 "tail_digest", "gone")

# The batch's runs as ClickHouse's `runs` takes them (the embedded dump's columns), each winner once, and a
# `deleted` row under every other sorting key the database holds for it. Ordered by month and key, so the insert
# splits into the same parts (and the same per-part tokens) when a batch is written again. `seq` is the batch's (from
# the clock) but always above what the database holds for the run, so a worker whose clock runs behind still wins.
_OUT_SQL = """
SELECT r.id, r.reference, r.workflow_id, r.source, r.destination, r.source_app, r.destination_app, r.status,
       r.started_at, r.finished_at, r.updated_at, r.error_message, r.error_kind, r.error_step, r.skip_reason,
       r.retrigger_of, r.retrigger_claim, r.attempt, r.trigger_payload::VARCHAR AS trigger_payload,
       r.result::VARCHAR AS result, coalesce(to_json(r.steps)::VARCHAR, '[]') AS steps, r.extra::VARCHAR AS extra,
       r.failed_app, greatest($seq, coalesce(m.top, 0) + 1)::UBIGINT AS seq, f.path AS source_file,
       r.line::UBIGINT AS source_line,
       0::UTINYINT AS deleted
FROM fg.runs r JOIN fg_paths f USING (file_id) LEFT JOIN (SELECT id, max(seq) AS top FROM fg_stored GROUP BY id) m
     USING (id)
WHERE r.id IN (SELECT id FROM fg_winners)
UNION ALL
SELECT s.id, NULL, '', '', '', NULL, NULL, '', s.started_at, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1,
       NULL, NULL, '[]', NULL, NULL, greatest($seq, s.seq + 1)::UBIGINT, NULL, NULL, 1::UTINYINT
FROM fg_stored s JOIN fg.runs r USING (id)
WHERE r.id IN (SELECT id FROM fg_winners) AND s.started_at <> r.started_at
ORDER BY date_trunc('month', started_at), started_at, id, deleted
"""

# Rule 1 across batches. The batch's own snapshots of a run were folded already (the embedded _drop_superseded): what
# is left wins outright when the batch held an undated snapshot of it (the stored one came before that one), when
# nothing is stored or the stored one is undated, or when it is no older by updated_at. `before`: the stored snapshot
# is older than this ingest, which then counts an update; one this ingest wrote is superseded (as the embedded store
# counts, against the ingest's start).
_WINNERS_SQL = """
CREATE OR REPLACE TEMP TABLE fg_winners AS
SELECT r.id, c.id IS NOT NULL AS stored, coalesce(c.top < $base, false) AS before FROM fg.runs r
LEFT JOIN (SELECT id, arg_max_null(updated_at, seq) AS upd, max(seq) AS top FROM fg_stored GROUP BY id) c USING (id)
WHERE c.id IS NULL OR c.upd IS NULL OR r.id IN (SELECT id FROM fg_undated)
   OR (r.updated_at IS NOT NULL AND r.updated_at >= c.upd)
"""


def _scratch() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the embedded tables the parse writes (file ids here are the database's 64-bit ones)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    # As the embedded ingest runs its batches: with filter pushdown DuckDB copies the JSON parse into every
    # condition that reads it (10x slower). This connection runs nothing else.
    con.execute("SET disabled_optimizers = 'filter_pushdown'")
    con.execute("CREATE SCHEMA fg; CREATE TABLE fg.meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    for _, ddl in MIGRATIONS:
        con.execute(ddl)
    con.execute("ALTER TABLE fg.runs ALTER COLUMN file_id TYPE BIGINT")
    return con


def first_lines(batch: _Batch) -> dict[int, int]:
    """Per file id, the first line number this batch holds of it."""
    firsts: dict[int, int] = {}
    for t in batch.tables:
        if t.num_rows:
            fid, line = int(t.column("file_id")[0].as_py()), int(t.column("line")[0].as_py())
            firsts[fid] = min(line, firsts.get(fid, line))
    return firsts


def batch_token(batch: _Batch, firsts: dict[int, int]) -> str:
    """The batch's identity: each file's id with the lines and the end offset read of it (what a second run of the
    batch reads again)."""
    ranges = sorted((fid, firsts.get(fid, 0), p.row.lines, p.row.offset) for fid, p in batch.files.items())
    return hashlib.sha256(repr(ranges).encode()).hexdigest()


class ClickHouseIngester(Ingester):
    """Reads log files into a ClickHouse store; holds no lock but the store's own client's."""

    def __init__(self, store: ClickHouseStore, *, logs_dir: Path | None = None, batch_bytes: int = BATCH_BYTES,
                 on_batch: Callable[[IngestReport], None] | None = None) -> None:
        super().__init__(None, logs_dir=logs_dir, batch_bytes=batch_bytes, on_batch=on_batch)  # type: ignore[arg-type]
        self.ch = store
        self.scratch = _scratch()
        self.not_kept_total: dict[int, int] = {}  # per file id: its rejected lines past the cap, so far
        self.base_seq = fresh_id()  # rows with a lower seq were there before this ingest
        self.known_rows: dict[int, FileRow] = {}

    def _key(self, real: str) -> str:
        """A file's name in the database: its whole real path. Workers each have a logs folder of their own, and
        the same name under two of them is two files (the embedded store names a file under its one folder)."""
        return escaped(real if os.sep == "/" else real.replace(os.sep, "/"))

    def _shown(self, key: str) -> str:
        """A file's name as a run's page and the rejected lines show it: under the logs folder, as the embedded
        store names it."""
        prefix = self._key(self.logs_prefix) if self.logs_prefix else ""
        return key[len(prefix):] if prefix and key.startswith(prefix) else key

    def _new_file_id(self) -> int:
        return fresh_id()  # unique across workers with no table to ask

    def run(self, paths: Sequence[Path]) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        files = scan(paths, report.links_left_out, report.unreadable)
        self.scanned = [os.path.join(p.resolve(), "") for p in paths if p.is_dir()]
        known: dict[str, FileRow] = {}
        for row in self.ch._rows(f"SELECT {', '.join(_FILE_COLUMNS)}, rejects_not_kept FROM files FINAL "
                                 "WHERE NOT gone"):
            file_row = FileRow(*row[:-1])
            if self.logs_prefix and not os.path.isabs(file_row.path):  # named under a logs folder (a copy brought)
                file_row = replace(file_row, path=self._key(self.logs_prefix + file_row.path))
            known[file_row.path] = file_row
            self.known_rows[file_row.file_id] = file_row
            self.not_kept_total[file_row.file_id] = int(row[-1])
        self.known = known
        try:
            for batch in prefetch(self._batches(files, known, report)):
                self._flush_batch(batch, report)
        finally:
            self.scratch.close()
        if report.lines:
            with self.ch._write_lock:
                rollup.refresh(self.ch)
        report.seconds = time.perf_counter() - started
        return report

    def _flush_batch(self, batch: _Batch, report: IngestReport) -> None:
        if not batch.files:
            return
        part = IngestReport(lines=batch.lines, bytes=batch.bytes)
        firsts = first_lines(batch)
        token = batch_token(batch, firsts)
        table = pa.concat_tables(batch.tables) if batch.tables else None
        cur = self.scratch
        cur.execute("DELETE FROM fg.runs")
        cur.execute("DROP TABLE IF EXISTS fg_rej")
        if table is not None and table.num_rows:
            self._write_runs(cur, table, batch, firsts, part, token)
        self._write_files(batch)
        report.merge(part)
        if self.on_batch:
            self.on_batch(part)

    def _write_runs(self, cur: duckdb.DuckDBPyConnection, table: pa.Table, batch: _Batch, firsts: dict[int, int],
                    part: IngestReport, token: str) -> None:
        client = self.ch.client
        # Lineage counts only when Fourgent started that re-trigger: the ledger as it is now, before the parse.
        cur.execute("DELETE FROM fg.retriggers")
        pairs = self.ch._rows("SELECT run_id, retrigger_of FROM retriggers FINAL")
        if pairs:
            cur.register("fg_pairs", pa.table({"run_id": [a for a, _ in pairs], "retrigger_of": [b for _, b in pairs]}))
            cur.execute("INSERT INTO fg.retriggers (run_id, retrigger_of, retriggered_by, retriggered_at) "
                        "SELECT run_id, retrigger_of, '', now() FROM fg_pairs")
            cur.unregister("fg_pairs")
        stored = parse_batch(cur, table, 0)
        if stored < table.num_rows:
            self._write_rejects(cur, batch, firsts, part, token)
        part.snapshots = stored
        if not stored:
            return
        cur.execute("CREATE OR REPLACE TEMP TABLE fg_undated AS "
                    "SELECT DISTINCT id FROM fg.runs WHERE updated_at IS NULL")
        self._drop_superseded(cur, 0)  # the batch's own snapshots of a run: rule 1 among them first
        ids = [r[0] for r in cur.execute("SELECT id FROM fg.runs").fetchall()]
        held = pa.concat_tables([self._stored(ids[i:i + LOOKUP_IDS]) for i in range(0, len(ids), LOOKUP_IDS)])
        cur.register("fg_stored", held)
        paths = pa.table({"file_id": pa.array(list(batch.files), pa.int64()),
                          "path": [self._shown(f.row.path) for f in batch.files.values()]})
        cur.register("fg_paths", paths)
        try:
            cur.execute(_WINNERS_SQL, {"base": self.base_seq})
            winners, stored_before, before = cur.execute(
                "SELECT count(*), count(*) FILTER (WHERE stored), count(*) FILTER (WHERE before) FROM fg_winners"
            ).fetchall()[0]
            seq = fresh_id()
            out = cur.sql(_OUT_SQL, params={"seq": seq}).to_arrow_table()
        finally:
            cur.unregister("fg_stored")
            cur.unregister("fg_paths")
        if out.num_rows:
            client.insert_arrow("runs", out, settings={"insert_deduplication_token": f"{token}:runs"})
            days = set(rollup.day_numbers(out.column("started_at")))
            days |= self._one_row_per_run(seq)
            rollup.mark_days(self.ch, sorted(days))
        part.added = winners - stored_before
        part.updated = before
        part.superseded = stored - part.added - part.updated

    def _stored(self, ids: list[str]) -> pa.Table:
        """What the database holds of these runs: every live row's key, updated_at and seq."""
        p = Params()
        return self.ch.client.query_arrow(f"SELECT id, started_at, updated_at, seq FROM {RUNS} WHERE id IN "
                                          f"{p.among(ids, 'String')}", parameters=p.values)

    def _one_row_per_run(self, seq: int) -> set[int]:
        """Another worker may have written a snapshot of one of these runs under another start while this batch
        was written (a run's snapshots split over two workers' files): keep one row and delete the others. Which one
        by rule 1 as far as the rows tell (the latest updated_at when all have one; else the one written last), so
        both workers pick the same row and doing it twice is harmless. The days changed. The batch's runs are those
        written with its `seq` or above (cheaper to find by that column than to send their IDs again)."""
        p = Params()
        held = self.ch._rows(
            f"SELECT id, started_at, updated_at, seq FROM {RUNS} WHERE id IN (SELECT id FROM {RUNS} WHERE id IN "
            f"(SELECT id FROM runs WHERE seq >= {p.add(seq, 'UInt64')}) GROUP BY id HAVING count() > 1)", p)
        if not held:
            return set()
        rows: dict[str, list[tuple[Any, ...]]] = {}
        for row in held:
            rows.setdefault(row[0], []).append(row)
        losers: list[tuple[Any, ...]] = []
        for group in rows.values():
            dated = all(r[2] is not None for r in group)
            keep = max(group, key=lambda r: (r[2], r[3]) if dated else (r[3],))
            losers += [r for r in group if r is not keep]
        top = max(r[3] for r in held) + 1
        n = len(losers)
        self.ch.client.insert_arrow("runs", pa.table({
            "id": [r[0] for r in losers], "started_at": pa.array([r[1] for r in losers], pa.timestamp("us", tz="UTC")),
            "workflow_id": [""] * n, "source": [""] * n, "destination": [""] * n, "status": [""] * n,
            "attempt": pa.array([1] * n, pa.int32()), "steps": ["[]"] * n, "seq": pa.array([top] * n, pa.uint64()),
            "deleted": pa.array([1] * n, pa.uint8())}))
        return set(rollup.day_numbers(pa.array([r[1] for r in losers], pa.timestamp("us", tz="UTC"))))

    def _write_rejects(self, cur: duckdb.DuckDBPyConnection, batch: _Batch, firsts: dict[int, int],
                       part: IngestReport, token: str) -> None:
        """The batch's rejected lines, each file keeping its first REJECTS_KEPT_PER_FILE (those before this batch
        counted by line number, so a batch written twice counts as once); the rest counted on its files row."""
        part.rejected = int(cur.execute("SELECT count(*) FROM fg_rej").fetchall()[0][0])
        names = {fid: self._shown(f.row.path) for fid, f in batch.files.items()}
        part.first_rejects = first_rejects(cur)
        for reject in part.first_rejects:
            reject["file"] = names.get(reject.pop("file_id", 0), "?")
        p = Params()
        before: dict[int, int] = {}
        for fid, line in self.ch._rows(f"SELECT file_id, line FROM rejects FINAL WHERE file_id IN "
                                       f"{p.among(list(firsts), 'UInt64')}", p):
            if line < firsts[int(fid)]:
                before[int(fid)] = before.get(int(fid), 0) + 1
        cur.register("fg_kept_before", pa.table({"file_id": pa.array(list(before), pa.int64()),
                                                 "kept": pa.array(list(before.values()), pa.int64())}))
        try:
            ranked = cur.execute(
                "SELECT r.file_id, r.line, r.reason, r.raw, row_number() OVER (PARTITION BY r.file_id ORDER BY r.pos) "
                "+ coalesce(k.kept, 0) AS nth FROM fg_rej r LEFT JOIN fg_kept_before k USING (file_id) "
                "ORDER BY r.file_id, r.line").fetchall()
        finally:
            cur.unregister("fg_kept_before")
        keep = [r for r in ranked if r[4] <= REJECTS_KEPT_PER_FILE]
        for r in ranked:
            if r[4] > REJECTS_KEPT_PER_FILE:
                self.not_kept_total[r[0]] = self.not_kept_total.get(r[0], 0) + 1
        part.rejects_not_kept = len(ranked) - len(keep)
        if keep:
            at = self.ch._rows("SELECT now64(6)")[0][0]
            self.ch.client.insert_arrow("rejects", pa.table({
                "file_id": pa.array([r[0] for r in keep], pa.uint64()),
                "file": [names[r[0]] for r in keep],
                "line": pa.array([r[1] for r in keep], pa.uint64()),
                "reason": [r[2] for r in keep],
                "raw": [r[3] for r in keep],
                "ingested_at": pa.array([at] * len(keep), pa.timestamp("us", tz="UTC")),
            }), settings={"insert_deduplication_token": f"{token}:rejects"})

    def _write_files(self, batch: _Batch) -> None:
        """The batch's files as reading left them: the offsets that say the batch is written."""
        rows: list[FileRow] = []
        stat: list[tuple[int, int]] = []
        for p in batch.files.values():
            rows.append(p.row)
            stat.append((p.stat_size, p.stat_mtime_ns) if p.complete else (-1, 0))
        # A file read before that holds a name a file of this batch takes (a rotation under way) gives it up for a
        # placeholder: not found under it, it is looked for by identity next time.
        taken = {r.path for r in rows}
        ids = {r.file_id for r in rows}
        for other in self.known_rows.values():
            if other.path in taken and other.file_id not in ids:
                moved = FileRow(**{**other.__dict__, "path": f"{other.path} (moving, file #{other.file_id})"})
                rows.append(moved)
                stat.append((other.size, other.mtime_ns))
        columns: dict[str, Any] = {c: [getattr(r, c) for r in rows] for c in _FILE_COLUMNS}
        columns["size"] = [s for s, _ in stat]
        columns["mtime_ns"] = [m for _, m in stat]
        columns["rejects_not_kept"] = [self.not_kept_total.get(r.file_id, 0) for r in rows]
        self.ch.client.insert("files", [list(v) for v in zip(*columns.values(), strict=True)],
                              column_names=list(columns))
        for r in rows:
            self.known_rows[r.file_id] = r


def ingest(store: ClickHouseStore, paths: Sequence[Path | str], *, logs_dir: Path | None = None,
           batch_bytes: int = BATCH_BYTES, on_batch: Callable[[IngestReport], None] | None = None) -> IngestReport:
    """Read new complete lines of the run logs under `paths` into the ClickHouse store."""
    return ClickHouseIngester(store, logs_dir=logs_dir, batch_bytes=batch_bytes, on_batch=on_batch).run(
        [Path(p) for p in paths])


__all__ = ["ClickHouseIngester", "ingest", "retired_name"]
