"""The DuckDB log sink: one SQL pass parses, validates and types each batch of lines; one transaction per batch.

Files are read by `fourgent.logfiles`; here each batch's lines become rows of `fg.runs` (the current
state, one row per run) or `fg.rejects` (with the reason), and each file's offset is kept in the same
transaction, so a crash leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import duckdb
import numpy as np
import pyarrow as pa

from ...logfiles import (
    BATCH_BYTES,
    SCAN_ROWS,
    GzipStream,
    IngestReport,
    Long,
    Reject,
    lines_table,
    long_table,
    path_order,
    prefetch,
    scan,
    segments,
    unreadable_because,
)
from ...rotation import HEAD_BYTES, FileRow, OnDisk, Plan, digest, escaped, plan, tail_digest_at, unchanged
from ...spec import (
    GZ_INFLATE_MIN,
    GZ_INFLATE_RATIO,
    ID_MAX_CHARS,
    KNOWN_FIELDS,
    RAW_KEEP_CHARS,
    REJECTS_KEPT_PER_FILE,
    STATUSES,
)
from . import rollup, snapshot
from .database import Cursor, Database, in_transaction
from .sql import failed_app_sql

_FILE_COLUMNS = 'file_id, path, size, mtime_ns, "offset", lines, head_len, head_digest, dev, ino, tail_digest, gone'


SECOND_LOOK_S = 0.1  # how long a file read before must stay nowhere before it is retired


def retired_name(row: FileRow) -> str:
    """The name a file read before keeps once its content is nowhere to be found (its rejected lines stay
    listed under it) and its name may hold a new file."""
    return f"{row.path} (earlier file #{row.file_id})"


# --------------------------------------------------------------------------- the SQL of one batch

_LINE_TYPE = json.dumps(
    {
        "id": "VARCHAR",
        "reference": "VARCHAR",
        "workflow": {k: "VARCHAR" for k in ("id", "source", "destination", "source_app", "destination_app")},
        "status": "VARCHAR",
        "started_at": "VARCHAR",
        "finished_at": "VARCHAR",
        "updated_at": "VARCHAR",
        "trigger_payload": "JSON",
        "steps": [
            {
                "name": "VARCHAR", "app": "VARCHAR", "status": "VARCHAR", "started_at": "VARCHAR",
                "finished_at": "VARCHAR", "attempts": "DOUBLE", "input": "JSON", "output": "JSON", "error": "VARCHAR",
            }
        ],
        "error": {"message": "VARCHAR", "step": "DOUBLE", "kind": "VARCHAR"},
        "result": "JSON",
        "skip_reason": "VARCHAR",
        "retrigger_of": "VARCHAR",
        # Numbers are read as DOUBLE and range-checked: as BIGINT, 1e400 read as null and passed as "no value".
        "attempt": "DOUBLE",
    }
)


def _sql_list(values: Sequence[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


_STATUS_LIST = _sql_list(STATUSES)
_KNOWN_LIST = _sql_list(KNOWN_FIELDS)


# The instants Python (and so every page) can hold: DuckDB's own range is far wider (year 99999 casts), and
# one such line once broke the rollups and every page for good.
_FIRST_INSTANT, _LAST_INSTANT = "TIMESTAMPTZ '0001-01-01 00:00:00+00'", "TIMESTAMPTZ '9999-12-31 23:59:59.999999+00'"


def _ts_ok(expr: str) -> str:
    # The cast in _ts checks the shape of the date and time; this checks the offset the spec requires (hours
    # 00-23, minutes 00-59: DuckDB reads -99:99 and +24:00), an hour below 24 (it reads T24:00 as the next
    # day) and the range. (A regular expression for all of it cost 4x as much over steps.)
    t = f"greatest(strpos(upper({expr}), 'T'), strpos({expr}, ' '))"  # where the time of day starts
    return (f"({expr} IS NULL OR ((suffix({expr}, 'Z') OR suffix({expr}, 'z') "
            f"OR (substring({expr}, -6, 1) IN ('+', '-') AND substring({expr}, -3, 1) = ':' "
            f"AND substring({expr}, -5, 2) < '24' AND substring({expr}, -2, 2) < '60'))"
            f" AND {t} > 0 AND substring({expr}, {t} + 1, 2) < '24'"
            f" AND coalesce({_ts(expr)} BETWEEN {_FIRST_INSTANT} AND {_LAST_INSTANT}, false)))")


def _ts(expr: str) -> str:
    # DuckDB's cast wants upper-case 'T'/'Z'; try the common spelling first, it is cheaper.
    return f"coalesce(try_cast({expr} AS TIMESTAMPTZ), try_cast(upper({expr}) AS TIMESTAMPTZ))"


def _ts_rules(field_name: str, required: bool) -> str:
    col = f"j.{field_name}"
    missing = f"WHEN {col} IS NULL THEN 'missing \"{field_name}\"'" if required else ""
    return f"""
        {missing}
        WHEN NOT {_ts_ok(col)} THEN '"{field_name}" is not an RFC 3339 timestamp with offset in years 1-9999 (UTC): '
             || to_json({col})"""


_STEP_OK = (
    "lambda s: coalesce(s.name, '') <> '' AND lower(s.status) IN "
    + _STATUS_LIST.replace("[", "(").replace("]", ")")
    + f" AND {_ts_ok('s.started_at')} AND {_ts_ok('s.finished_at')}"
    + " AND coalesce(s.attempts, 1) BETWEEN 1 AND 2147483647"
)
_STATUS_IN = _STATUS_LIST.replace("[", "(").replace("]", ")")

# Every rule of the spec, as the first one a line breaks. Evaluated only for the
# lines the fast path did not store, so its cost is paid per rejected line.
_REASON = f"""
    CASE
    WHEN pre_reason IS NOT NULL THEN pre_reason
    WHEN j IS NULL AND trim(raw, ' ' || chr(9) || chr(13) || chr(10)) = '' THEN 'blank line'
    WHEN j IS NULL AND NOT json_valid(raw) THEN 'not valid JSON'
    WHEN j IS NULL OR NOT starts_with(ltrim(raw, ' ' || chr(9)), '{{') THEN 'not a JSON object'
    WHEN j.id IS NULL THEN 'missing "id"'
    WHEN length(j.id) NOT BETWEEN 1 AND {ID_MAX_CHARS} THEN '"id" must be 1 to {ID_MAX_CHARS} characters'
    WHEN j.workflow IS NULL THEN 'missing "workflow"'
    WHEN coalesce(j.workflow.id, '') = '' THEN 'missing "workflow.id"'
    WHEN coalesce(j.workflow.source, '') = '' THEN 'missing "workflow.source"'
    WHEN coalesce(j.workflow.destination, '') = '' THEN 'missing "workflow.destination"'
    WHEN j.status IS NULL THEN 'missing "status"'
    WHEN lower(j.status) NOT IN {_STATUS_IN} THEN 'unknown status ' || to_json(j.status)
    {_ts_rules("started_at", True)}
    {_ts_rules("finished_at", False)}
    {_ts_rules("updated_at", False)}
    WHEN lower(j.status) = 'failed' AND coalesce(j.error.message, '') = ''
        THEN 'status "failed" without "error.message"'
    WHEN j.attempt NOT BETWEEN 1 AND 2147483647 THEN '"attempt" must be a whole number from 1'
    WHEN j.error.step NOT BETWEEN 0 AND 2147483647 THEN '"error.step" must be a step index (0 or more)'
    WHEN list_position(list_transform(j.steps, {_STEP_OK}), false) IS NOT NULL
        THEN 'step ' || (list_position(list_transform(j.steps, {_STEP_OK}), false) - 1)::VARCHAR
             || ': needs a "name", a known "status" and RFC 3339 timestamps with offset'
    ELSE 'rejected'
    END"""

# The same rules as one boolean, cheap enough to run over every line.
_VALID = f"""
    pre_reason IS NULL AND j IS NOT NULL
    AND CASE WHEN left(raw, 1) = '{{' THEN true ELSE starts_with(ltrim(raw, ' ' || chr(9)), '{{') END
    AND length(j.id) BETWEEN 1 AND {ID_MAX_CHARS}
    AND j.workflow.id <> '' AND j.workflow.source <> '' AND j.workflow.destination <> ''
    AND lower(j.status) IN {_STATUS_IN}
    AND j.started_at IS NOT NULL AND {_ts_ok("j.started_at")}
    AND {_ts_ok("j.finished_at")} AND {_ts_ok("j.updated_at")}
    AND (lower(j.status) <> 'failed' OR j.error.message <> '')
    AND coalesce(j.attempt, 1) BETWEEN 1 AND 2147483647 AND coalesce(j.error.step, 0) BETWEEN 0 AND 2147483647
    AND list_position(list_transform(j.steps, {_STEP_OK}), false) IS NULL"""

_PARSED = f"""
    SELECT pos, file_id, line, raw, pre_reason,
           CASE WHEN pre_reason IS NULL THEN try(json_transform(raw, '{_LINE_TYPE}')) END AS j
    FROM fg_batch"""

# A line's lineage counts only when Fourgent started that re-trigger (fg.retriggers, written before the
# run starts); any other "retrigger_of" is kept as the line's claim and resolves nothing.
_OURS = ("coalesce(j.id || chr(31) || j.retrigger_of IN "
         "(SELECT run_id || chr(31) || retrigger_of FROM fg.retriggers), false)")

# Good lines go straight into fg.runs: one pass, one materialisation. Lines
# left out are found afterwards by position and given their reason.
_INSERT_SQL = f"""
INSERT INTO fg.runs (id, reference, workflow_id, source, destination, source_app, destination_app, status,
                     started_at, finished_at, updated_at, error_message, error_kind, error_step, skip_reason,
                     retrigger_of, retrigger_claim, attempt, trigger_payload, result, steps, extra, file_id, line,
                     seq, search, failed_app)
SELECT
    j.id, nullif(j.reference, ''),
    j.workflow.id, j.workflow.source, j.workflow.destination, j.workflow.source_app, j.workflow.destination_app,
    lower(j.status),
    {_ts("j.started_at")}, {_ts("j.finished_at")}, {_ts("j.updated_at")},
    j.error.message, j.error.kind, j.error.step::INTEGER, j.skip_reason,
    CASE WHEN {_OURS} THEN j.retrigger_of END, CASE WHEN NOT {_OURS} THEN j.retrigger_of END,
    coalesce(j.attempt, 1)::INTEGER,
    coalesce(j.trigger_payload, '{{}}'::JSON), j.result,
    coalesce(list_transform(j.steps, lambda s: {{
        'name': s.name, 'app': s.app, 'status': lower(s.status),
        'attempts': coalesce(s.attempts, 1)::INTEGER,
        'started_at': {_ts("s.started_at")}, 'finished_at': {_ts("s.finished_at")},
        'error': s.error, 'input': s.input, 'output': s.output}}), []),
    CASE WHEN len(unknown) > 0 THEN to_json(map_from_entries(list_transform(unknown, lambda k: {{
        'k': k, 'v': json_extract(raw, '/' || replace(replace(k, '~', '~0'), '/', '~1'))}})))
    END,
    file_id, line, $base + pos,
    lower(coalesce(j.reference, '') || chr(31) || j.id),
    {failed_app_sql("lower(j.status)", "j.steps", "j.error.step::INTEGER", "j.workflow.destination_app")}
FROM (
    SELECT *, list_distinct(list_filter(json_keys(raw), lambda k: NOT list_contains({_KNOWN_LIST}, k))) AS unknown
    FROM ({_PARSED})
    WHERE {_VALID}
)
"""

_REJECTS_SQL = f"""
CREATE OR REPLACE TEMP TABLE fg_rej AS
SELECT pos, file_id, line, {_REASON} AS reason,
       left(rtrim(raw, chr(13) || chr(10)), {RAW_KEEP_CHARS}) AS raw
FROM ({_PARSED})
WHERE pos IN (SELECT pos FROM fg_batch
              EXCEPT SELECT seq - $base FROM fg.runs WHERE seq >= $base)
"""

# Each file keeps its first REJECTS_KEPT_PER_FILE rejected lines; the rest are counted on its fg.files row.
_RANKED_REJECTS = """
    SELECT r.*, row_number() OVER (PARTITION BY r.file_id ORDER BY r.pos) + coalesce(k.kept, 0) AS nth
    FROM fg_rej r LEFT JOIN (SELECT file_id, count(*) AS kept FROM fg.rejects
                             WHERE file_id IN (SELECT DISTINCT file_id FROM fg_rej) GROUP BY ALL) k USING (file_id)"""
_KEEP_REJECTS_SQL = f"""
INSERT INTO fg.rejects SELECT file_id, line, reason, raw, now() FROM ({_RANKED_REJECTS}) WHERE nth <= ?"""
_NOT_KEPT_SQL = f"SELECT file_id, count(*) FROM ({_RANKED_REJECTS}) WHERE nth > ? GROUP BY ALL"

# Snapshot order (spec rule 1): by updated_at when both have it, else by position.
# Applied one snapshot at a time, that rule keeps, of a run's snapshots in
# order, the latest by (updated_at, position) among those after its last
# snapshot without updated_at (or that one itself, when nothing follows it).
# `seq` is the position: rows already stored come before this batch's.
_TOUCHED_SQL = """
CREATE OR REPLACE TEMP TABLE fg_touched AS
WITH batch_ids AS (
    SELECT id FROM fg.runs WHERE seq >= $base
), multi AS (
    -- runs with more than one row now: a snapshot already stored, or several in this batch.
    -- The BETWEEN lets DuckDB skip row groups by their min/max id: with time-ordered run IDs
    -- (ULIDs and the like) a batch of new runs touches almost nothing already stored.
    SELECT id FROM fg.runs
    WHERE id BETWEEN $lo AND $hi AND id IN (SELECT id FROM batch_ids)
    GROUP BY id HAVING count(*) > 1
), w AS (
    SELECT id, seq, updated_at AS upd,
        max(seq) FILTER (WHERE updated_at IS NULL) OVER (PARTITION BY id) AS last_undated,
        min(seq) OVER (PARTITION BY id) AS first_seq
    FROM fg.runs WHERE id BETWEEN $lo AND $hi AND id IN (SELECT id FROM multi)
)
SELECT id, seq, first_seq,
       seq >= coalesce(last_undated, -1)
       AND row_number() OVER (PARTITION BY id ORDER BY seq >= coalesce(last_undated, -1) DESC,
                                                   upd DESC NULLS LAST, seq DESC) = 1 AS wins
FROM w
"""


def _json_error(raw: str) -> str:
    try:
        json.loads(raw)
    except json.JSONDecodeError as exc:
        return f"not valid JSON: {exc.msg} at column {exc.colno}"
    except RecursionError:
        return "not valid JSON: nested too deeply"
    return "not valid JSON"


def parse_batch(cur: Cursor, table: pa.Table, base: int) -> int:
    """Parse one batch of lines (file_id, line, raw, pre_reason) on `cur`: the good ones become rows of fg.runs
    with seq from `base`, and when some are not, temp table fg_rej holds those with their reasons. How many runs.
    Every engine parses with this one set of rules (the ClickHouse sink on an in-memory DuckDB)."""
    table = table.append_column("pos", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    # DuckDB scans an Arrow table one record batch per thread: hand it many small ones so
    # both cores parse (one 64 MB batch kept the JSON parse on a single core).
    table = pa.Table.from_batches(table.to_batches(max_chunksize=SCAN_ROWS))
    cur.register("fg_batch", table)
    try:
        stored: int = cur.execute(_INSERT_SQL, {"base": base}).fetchall()[0][0]
        if stored < table.num_rows:
            cur.execute(_REJECTS_SQL, {"base": base})
            bad_json = cur.execute(
                "SELECT b.pos, b.raw FROM fg_batch b SEMI JOIN fg_rej r ON b.pos = r.pos "
                "AND r.reason = 'not valid JSON' ORDER BY b.pos LIMIT 1000"
            ).fetchall()
            if bad_json:
                cur.executemany("UPDATE fg_rej SET reason = ? WHERE pos = ?",
                                [(_json_error(raw), pos) for pos, raw in bad_json])
    finally:
        cur.unregister("fg_batch")
    return stored


def first_rejects(cur: Cursor) -> list[Reject]:
    """The first rejected lines of the batch parse_batch left in fg_rej, to show in the ingest's report."""
    return [{"file_id": f, "line": ln, "reason": why} for f, ln, why in cur.execute(
        "SELECT file_id, line, reason FROM fg_rej ORDER BY pos LIMIT 10").fetchall()]


@dataclass
class _PendingFile:
    row: FileRow
    renamed: bool = False  # followed to another name, or retired: its path changes in the store
    complete: bool = False  # read up to its end: record its size and mtime so it is skipped until it changes
    stat_size: int = 0
    stat_mtime_ns: int = 0

    def snapshot(self) -> _PendingFile:
        """A copy for one batch: the reader goes on changing the original while the batch is written."""
        return replace(self, row=replace(self.row))


class _Batch:
    def __init__(self) -> None:
        self.tables: list[pa.Table] = []
        self.files: dict[int, _PendingFile] = {}
        self.bytes = 0
        self.lines = 0


class Ingester:
    """Reads log files into one store; holds the store's write lock for the whole ingest."""

    def __init__(self, store: Database, *, logs_dir: Path | None = None, batch_bytes: int = BATCH_BYTES,
                 on_batch: Callable[[IngestReport], None] | None = None) -> None:
        self.store = store
        self.logs_prefix = os.path.join(logs_dir.resolve(), "") if logs_dir else ""
        self.scanned: list[str] = []  # the folders this ingest lists (resolved, with a trailing separator)
        self.batch_bytes = batch_bytes
        self.on_batch = on_batch
        self.not_kept: dict[int, int] = {}  # this batch's rejected lines past each file's cap

    def _key(self, real: str) -> str:
        """A file's name in the store: its real path under the logs folder, else its whole real path."""
        key = real[len(self.logs_prefix):] if self.logs_prefix and real.startswith(self.logs_prefix) else real
        if os.sep != "/":
            key = key.replace(os.sep, "/")
        # A file name that is not UTF-8 keeps its odd bytes as \xNN, so it can be stored.
        return escaped(key)

    def _path_of(self, key: str) -> str:
        """Where to open a file by its name in the store."""
        return key if os.path.isabs(key) or not self.logs_prefix else self.logs_prefix + key

    def _in_scope(self, key: str) -> bool:
        """Whether this ingest looked where a file read before lies: only then can it be missing."""
        path = self._path_of(key)
        return any(path.startswith(folder) for folder in self.scanned)

    def run(self, paths: Sequence[Path]) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        files = scan(paths, report.links_left_out, report.unreadable)
        self.scanned = [os.path.join(p.resolve(), "") for p in paths if p.is_dir()]
        with self.store.write_lock:
            cur = self.store.cursor()
            known = self.store.files_read
            if known is None:
                known = {r[1]: FileRow(*r) for r in cur.execute(
                    f"SELECT {_FILE_COLUMNS} FROM fg.files WHERE NOT gone").fetchall()}
            # Kept between ingests only while nothing was written: the next ingest reads fg.files again.
            self.store.files_read = None
            self.known = known
            self.next_file_id: int | None = None  # worked out when a new file turns up
            unsettled = cur.execute("SELECT value FROM fg.meta WHERE key = 'unsettled_from'").fetchall()
            if unsettled:  # an ingest died between a batch and its settling
                self._settle(cur, int(unsettled[0][0]))
            self.next_seq = cur.execute("SELECT coalesce(max(seq), -1) + 1 FROM fg.runs").fetchall()[0][0]
            self.ingest_base = self.next_seq
            # Reading and splitting the next batch overlaps DuckDB's work on this one. DuckDB
            # checkpoints once the WAL passes 16 MB, at every commit of a large ingest; one
            # checkpoint at the end costs a third of those.
            cur.execute("SET checkpoint_threshold = '1GB'")
            flushed = False
            try:
                for batch in prefetch(self._batches(files, known, report)):
                    flushed = True
                    self._flush(cur, batch, report)
            finally:
                cur.execute("RESET checkpoint_threshold")
            if not flushed:
                self.store.files_read = known
            rollup.refresh(cur)  # also repairs what a crashed ingest left marked
            if report.lines:
                _checkpoint(cur)
            report.seconds = time.perf_counter() - started
            if report.lines:
                cur.execute(
                    "INSERT INTO fg.ingests VALUES (now(), ?, ?, ?, ?, ?, ?, ?, ?)",
                    [report.seconds, report.files, report.lines, report.snapshots, report.added,
                     report.updated, report.superseded, report.rejected],
                )
            # The read-only copy ad-hoc SQL reads: the days this ingest changed (timed apart: its lag).
            snapshot_started = time.perf_counter()
            folder = self.store.snapshot_dir
            if not snapshot.is_complete(folder):
                snapshot.write_all(cur, folder)
            else:
                snapshot.refresh(cur, folder)
                if report.rejected or report.reread:
                    snapshot.write_view(cur, folder, "rejected_lines")
            report.snapshot_seconds = time.perf_counter() - snapshot_started
            names = file_paths(self.store, [r["file_id"] for r in report.first_rejects])
            for reject in report.first_rejects:
                reject["file"] = names.get(reject.pop("file_id"), "?")
            cur.close()
        return report

    def _batches(self, files: list[tuple[str, str]], known: dict[str, FileRow],
                 report: IngestReport) -> Iterator[_Batch]:
        batch = _Batch()
        todo = self._plan(files, known, report.unreadable)
        if todo.gone:
            # A file read before is nowhere: perhaps a rotation was half-way (renames one at a time) while this
            # looked. Retiring it would lose its unread lines for good, so look once more first.
            time.sleep(SECOND_LOOK_S)
            todo = self._plan(files, known, [])
        report.reread.extend(todo.replaced)
        report.followed.extend(todo.moved)
        report.copies.extend(todo.copies)
        for row in todo.gone:
            batch.files[row.file_id] = _PendingFile(replace(row, path=retired_name(row), gone=True), renamed=True)
        # The old content's unread lines before the new files' lines: the order their snapshots count in. Files
        # read before go in the order they were first seen (the oldest rotated copy first).
        follow = sorted(todo.follow, key=lambda rf: rf[0].file_id)
        new = sorted(todo.new, key=lambda f: path_order((f.path,)))
        reads: list[tuple[OnDisk, FileRow | None]] = [(f, row) for row, f in follow]
        reads += [(f, None) for f in new]
        for f, was in reads:
            batch = yield from self._read_file(Path(f.path), f.key, was, f.st, batch, report)
        if batch.files:
            yield batch

    def _plan(self, files: list[tuple[str, str]], known: dict[str, FileRow], unreadable: list[str]) -> Plan:
        """Each file read before, wherever its content is now (renamed, copied, compressed), and the new files."""
        listed, settled = [], []
        for found, real in files:
            key = self._key(real)
            try:
                st = os.stat(found)
            except OSError as exc:  # gone since the folder was listed, or its folder cannot be searched
                unreadable.append(unreadable_because(key, exc))
                continue
            if unchanged(known.get(key), st):
                settled.append(key)
            else:
                listed.append(OnDisk(found, key, st, listed=True))
        return plan(known, listed, in_scope=self._in_scope, path_of=self._path_of,
                    key_of=lambda path: self._key(os.path.realpath(path)), settled=settled)

    def _new_file_id(self) -> int:
        if self.next_file_id is None:  # retired files keep their ids: ask the table, not `known`
            self.next_file_id = self.store.cursor().execute(
                "SELECT coalesce(max(file_id), 0) FROM fg.files").fetchall()[0][0]
        self.next_file_id += 1
        return self.next_file_id

    def _read_file(self, path: Path, key: str, row: FileRow | None, st: os.stat_result, batch: _Batch,
                   report: IngestReport) -> Generator[_Batch, None, _Batch]:
        """Add the file's new lines to `batch`, yielding each batch that fills up; returns the last, unfilled one.
        `row`: where reading it stopped before (rotation.plan checked it holds that content), None for a new file."""
        gz = path.name.endswith(".gz")
        try:
            # Opened first: a file that cannot be read is skipped, said, and tried again next time.
            stream: GzipStream | BinaryIO = GzipStream(path) if gz else open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            report.unreadable.append(unreadable_because(key, exc))
            return batch
        fd = stream.fileno()  # digests read the file opened, not the name: it may be rotated meanwhile
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino) or not self._still_holds(row, fd, opened, gz):
            stream.close()  # rotated, truncated or rewritten between the look and the open
            return batch  # the next ingest plans it again
        renamed = row is not None and row.path != key
        if row is not None and renamed and unchanged(row, opened):
            # Renamed and untouched since it was read to its end (b.jsonl.2.gz -> b.jsonl.3.gz): only the name
            # changes; reading on would inflate a whole .gz to find its end again.
            stream.close()
            batch.files[row.file_id] = _PendingFile(replace(row, path=key), renamed=True, complete=True,
                                                    stat_size=opened.st_size, stat_mtime_ns=opened.st_mtime_ns)
            return batch
        if row is None:
            row = FileRow(self._new_file_id(), key, -1, 0, 0, 0, 0, "")
        head_len = min(HEAD_BYTES, opened.st_size)
        pending = _PendingFile(
            FileRow(row.file_id, key, -1, 0, row.offset, row.lines, head_len, digest(os.pread(fd, head_len, 0)),
                    opened.st_dev, opened.st_ino, row.tail_digest),
            renamed, stat_size=opened.st_size, stat_mtime_ns=opened.st_mtime_ns,
        )
        counted = False
        # A .gz file may inflate to at most this much (read in pieces no larger, so at most one piece past it):
        # 100 KB once inflated to 35 million lines. The rest is not read; the file counts as read to its end
        # until it changes.
        inflate_cap = max(GZ_INFLATE_MIN, GZ_INFLATE_RATIO * st.st_size) if gz else None
        try:
            piece = self.batch_bytes if inflate_cap is None else min(self.batch_bytes, inflate_cap)
            pieces = segments(stream, pending.row.offset, piece)
            while True:
                try:
                    item = next(pieces)
                except StopIteration:
                    break
                except (zlib.error, EOFError) as exc:
                    self._corrupt_gzip(pending, exc, batch)
                    break
                except OSError as exc:  # a read error part-way: what came before it counts, the rest waits
                    report.unreadable.append(unreadable_because(key, exc))
                    pending.stat_size = -1  # not read to its end: looked at again next time
                    break
                offset, data = item
                if inflate_cap is not None and offset >= inflate_cap:
                    report.cut.append(row.path)
                    break
                if not counted:
                    report.files += 1
                    counted = True
                line = pending.row.lines + 1
                if isinstance(data, Long):
                    table = long_table(row.file_id, line, data)
                    size = data.length + 1
                else:
                    table = lines_table(row.file_id, line, data, at_file_start=offset == 0)
                    size = len(data)
                pending.row.offset = offset + size
                pending.row.lines += table.num_rows
                batch.tables.append(table)
                batch.bytes += size
                batch.lines += table.num_rows
                if batch.bytes >= self.batch_bytes:
                    self._mark_tail(pending, fd, gz)
                    batch.files[row.file_id] = pending.snapshot()
                    yield batch
                    batch = _Batch()
                    pending.renamed = False  # done by the batch just handed over
            self._mark_tail(pending, fd, gz)
        finally:
            stream.close()
        pending.complete = True
        batch.files[row.file_id] = pending.snapshot()
        return batch

    @staticmethod
    def _still_holds(row: FileRow | None, fd: int, opened: os.stat_result, gz: bool) -> bool:
        """Whether the file opened still holds what `row` read (the plan looked by name, a moment before)."""
        if row is None or gz or row.gz:
            return True  # a new file; a .gz is replaced, never truncated in place (the plan checked it)
        if opened.st_size < row.offset or digest(os.pread(fd, row.head_len, 0)) != row.head_digest:
            return False
        return row.tail_digest is None or tail_digest_at(fd, row.offset) == row.tail_digest

    @staticmethod
    def _mark_tail(pending: _PendingFile, fd: int, gz: bool) -> None:
        """The digest of the bytes before where reading stopped: a file rewritten in place (same name, size and
        first bytes) is told from one appended to."""
        if not gz:
            pending.row.tail_digest = tail_digest_at(fd, pending.row.offset)

    def _corrupt_gzip(self, pending: _PendingFile, exc: Exception, batch: _Batch) -> None:
        """A gzip stream that cannot be inflated: one rejected line says so, and the file waits for a change."""
        reason = f"gzip data is corrupt after {pending.row.offset:,} bytes ({exc}); the rest of the file was not read"
        batch.tables.append(
            pa.table({
                "file_id": pa.array([pending.row.file_id], pa.int64()),
                "line": pa.array([pending.row.lines + 1], pa.int64()),
                "raw": pa.array([""], pa.large_string()),
                "pre_reason": pa.array([reason], pa.string()),
            })
        )
        batch.lines += 1

    def _flush(self, cur: Cursor, batch: _Batch, report: IngestReport) -> None:
        if not batch.files:
            return
        part = IngestReport(lines=batch.lines, bytes=batch.bytes)
        table = pa.concat_tables(batch.tables) if batch.tables else None
        # With filter pushdown on, DuckDB copies the JSON parse into every condition that reads
        # `j` (10x slower). The setting is global: dashboard queries that run during a batch's
        # write go without pushdown too (measured: keeping the parse out of the filters with
        # unnest([...]) instead cost 5-25% more ingest time). Set and reset outside the
        # transaction, so a failed batch cannot leave it set.
        cur.execute("SET disabled_optimizers = 'filter_pushdown'")
        try:
            with in_transaction(cur):
                self._write_batch(cur, batch, table, part)
        finally:
            cur.execute("RESET disabled_optimizers")
            cur.execute("DROP TABLE IF EXISTS fg_rej")
        if part.snapshots:
            assert table is not None  # snapshots come only from the batch's table
            self._settle(cur, self.next_seq - table.num_rows, part)
        report.merge(part)
        if self.on_batch:
            self.on_batch(part)

    def _write_batch(self, cur: Cursor, batch: _Batch, table: pa.Table | None, part: IngestReport) -> None:
        """The batch's rejects, runs and file offsets: all in the caller's one transaction."""
        # Names that move (a rotated file followed, a file retired) free theirs first: one may be another's next.
        # A row outside this batch holding a name it takes (its file could not be opened, or comes in a later
        # batch) gets a placeholder name meanwhile: not found under it, it is looked for by identity next time.
        moving = [p.row.file_id for p in batch.files.values() if p.renamed]
        taken = [p.row.path for p in batch.files.values()]
        ids = [p.row.file_id for p in batch.files.values()]
        cur.execute("UPDATE fg.files SET path = path || ' (moving, file #' || file_id::VARCHAR || ')' "
                    "WHERE file_id IN (SELECT unnest(?::INTEGER[])) "
                    "OR (path IN (SELECT unnest(?::VARCHAR[])) AND file_id NOT IN (SELECT unnest(?::INTEGER[])))",
                    [moving, taken, ids])
        self.not_kept = {}
        if table is not None and table.num_rows:
            self._load(cur, table, part)
        # Every file of the batch in one statement: one statement per file was most of a first ingest of
        # 20,000 small files (67 s).
        rows = [(p.row, *((p.stat_size, p.stat_mtime_ns) if p.complete else (-1, 0))) for p in batch.files.values()]
        if rows:
            files = pa.table({
                "file_id": pa.array([r.file_id for r, _, _ in rows], pa.int32()),
                "path": pa.array([r.path for r, _, _ in rows], pa.string()),
                "size": pa.array([size for _, size, _ in rows], pa.int64()),
                "mtime_ns": pa.array([mtime for _, _, mtime in rows], pa.int64()),
                "offset": pa.array([r.offset for r, _, _ in rows], pa.int64()),
                "lines": pa.array([r.lines for r, _, _ in rows], pa.int64()),
                "head_len": pa.array([r.head_len for r, _, _ in rows], pa.int32()),
                "head_digest": pa.array([r.head_digest for r, _, _ in rows], pa.string()),
                "dev": pa.array([r.dev for r, _, _ in rows], pa.uint64()),
                "ino": pa.array([r.ino for r, _, _ in rows], pa.uint64()),
                "tail_digest": pa.array([r.tail_digest for r, _, _ in rows], pa.string()),
                "gone": pa.array([r.gone for r, _, _ in rows], pa.bool_()),
            })
            cur.register("fg_files_batch", files)
            try:
                cur.execute(
                    f"""INSERT INTO fg.files ({_FILE_COLUMNS}, read_at)
                       SELECT {_FILE_COLUMNS}, now() FROM fg_files_batch
                       ON CONFLICT (file_id) DO UPDATE SET path = excluded.path, size = excluded.size,
                       mtime_ns = excluded.mtime_ns, "offset" = excluded."offset", lines = excluded.lines,
                       head_len = excluded.head_len, head_digest = excluded.head_digest, dev = excluded.dev,
                       ino = excluded.ino, tail_digest = excluded.tail_digest, gone = excluded.gone,
                       read_at = excluded.read_at""")
            finally:
                cur.unregister("fg_files_batch")
        if self.not_kept:  # after the files' rows exist: a new file's too
            cur.executemany("UPDATE fg.files SET rejects_not_kept = rejects_not_kept + ? WHERE file_id = ?",
                            [(n, file_id) for file_id, n in self.not_kept.items()])

    def _load(self, cur: Cursor, table: pa.Table, part: IngestReport) -> None:
        base = self.next_seq
        self.next_seq += table.num_rows
        stored = parse_batch(cur, table, base)
        if stored < table.num_rows:
            part.rejected = cur.execute("SELECT count(*) FROM fg_rej").fetchall()[0][0]
            self.not_kept = dict(cur.execute(_NOT_KEPT_SQL, [REJECTS_KEPT_PER_FILE]).fetchall())
            kept = cur.execute(_KEEP_REJECTS_SQL, [REJECTS_KEPT_PER_FILE]).fetchall()[0][0]
            part.rejects_not_kept = part.rejected - kept
            part.first_rejects = first_rejects(cur)
        part.snapshots = stored
        if stored:
            rollup.mark_batch(cur, base)
            # Until _settle runs, this batch's runs may have an older snapshot beside the new one.
            cur.execute("INSERT OR REPLACE INTO fg.meta VALUES ('unsettled_from', ?)", [str(base)])

    def _settle(self, cur: Cursor, base: int, part: IngestReport | None = None) -> None:
        """Keep one row per run among those with rows from seq `base` on: drop the superseded snapshots.

        A transaction of its own, after the batch's: deleting rows a transaction has just
        written makes DuckDB rewrite them at commit (4 s per million runs here); deleting
        committed rows costs nothing. A crash in between leaves the 'unsettled_from' mark,
        and the next ingest settles first.
        """
        try:
            with in_transaction(cur):
                multi_rows, multi_added, updated = self._drop_superseded(cur, base)
        finally:
            cur.execute("DROP TABLE IF EXISTS fg_touched")
        if part is not None:
            stored = part.snapshots
            part.added = stored - multi_rows + multi_added
            part.updated = updated
            part.superseded = stored - part.added - updated

    def _drop_superseded(self, cur: Cursor, base: int) -> tuple[int, int, int]:
        lo, hi = cur.execute("SELECT min(id), max(id) FROM fg.runs WHERE seq >= ?", [base]).fetchall()[0]
        cur.execute(_TOUCHED_SQL, {"base": base, "lo": lo, "hi": hi})
        # fg_touched holds only runs with several rows; every other snapshot is a new run.
        # Counted against the ingest's start, so the totals do not depend on where batches split.
        multi_rows, multi_added, updated, losers = cur.execute(
            """SELECT count(*) FILTER (WHERE seq >= $base),
                      count(DISTINCT id) FILTER (WHERE first_seq >= $base),
                      count(*) FILTER (WHERE wins AND seq >= $base AND first_seq < $ingest_base),
                      count(*) FILTER (WHERE NOT wins)
               FROM fg_touched""",
            {"base": base, "ingest_base": getattr(self, "ingest_base", base)},
        ).fetchall()[0]
        if losers:
            rollup.mark_rows(cur, "SELECT seq FROM fg_touched WHERE NOT wins")
            cur.execute("DELETE FROM fg.runs WHERE seq IN (SELECT seq FROM fg_touched WHERE NOT wins)")
        cur.execute("DELETE FROM fg.meta WHERE key = 'unsettled_from'")
        return multi_rows, multi_added, updated


def repair(store: Database) -> bool:
    """On open: finish what an ingest that died between a batch and its settling left (superseded snapshots
    beside the latest, which every reader, SQL included, would count until the next ingest). True if it did."""
    with store.write_lock:
        cur = store.cursor()
        unsettled = cur.execute("SELECT value FROM fg.meta WHERE key = 'unsettled_from'").fetchall()
        if not unsettled:
            return False
        Ingester(store)._settle(cur, int(unsettled[0][0]))
        rollup.refresh(cur)
        if snapshot.is_complete(store.snapshot_dir):
            snapshot.refresh(cur, store.snapshot_dir)
        return True


def _checkpoint(cur: Cursor) -> None:
    with contextlib.suppress(duckdb.Error):  # another transaction is open; DuckDB checkpoints on its own later
        cur.execute("CHECKPOINT")



def ingest(store: Database, paths: Sequence[Path | str], *, logs_dir: Path | None = None,
           batch_bytes: int = BATCH_BYTES, on_batch: Callable[[IngestReport], None] | None = None) -> IngestReport:
    """Read new complete lines of the run logs under `paths` into `store`."""
    return Ingester(store, logs_dir=logs_dir, batch_bytes=batch_bytes, on_batch=on_batch).run(
        [Path(p) for p in paths]
    )


def file_paths(store: Database, file_ids: Iterable[int]) -> dict[int, str]:
    ids = sorted(set(file_ids))
    if not ids:
        return {}
    rows = store.cursor().execute("SELECT file_id, path FROM fg.files WHERE file_id IN (SELECT unnest(?))", [ids])
    return dict(rows.fetchall())
