"""The DuckDB database instance: one per store file per process, its settings, migrations and transactions."""

from __future__ import annotations

import os
import re
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from ..errors import StoreBusy
from .schema import MIGRATIONS, VIEWS

if TYPE_CHECKING:
    from ...rotation import FileRow


def snapshot_folder(db_path: Path) -> Path:
    """Where a store's snapshot lives: beside the store file (fourgent.duckdb → fourgent.snapshot/)."""
    return db_path.with_suffix(".snapshot")

Cursor = duckdb.DuckDBPyConnection
DRAIN_S = 5.0  # how long a file swap waits for the readers of the old file to finish


class Database:
    """One DuckDB database instance; share it within the process and take a cursor per thread."""

    def __init__(self, path: Path | str, *, read_only: bool = False, memory_limit: str | None = None) -> None:
        self.path = Path(path)
        self.snapshot_dir = snapshot_folder(self.path)  # the read-only copy ad-hoc SQL reads (snapshot.py)
        self.read_only = read_only
        # Serialises writers inside this process: one ingest or ledger transaction at a time.
        self.write_lock = threading.RLock()
        # fg.files as the last ingest left it, when that ingest wrote nothing (ingest.py): a refresh with
        # nothing new then skips reading 20,000 rows back.
        self.files_read: dict[str, FileRow] | None = None
        self.memory_limit = memory_limit
        # The cursors handed out, so a file swap (compact) can wait for the readers using them; new ones wait
        # while the swap runs.
        self._gate = threading.Condition()
        self._swapping = False
        self._cursors: weakref.WeakSet[Cursor] = weakref.WeakSet()
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = self._connect()
        if not read_only:
            self._migrate()
            os.chmod(self.path, 0o600)  # run payloads and encrypted credentials: not for other users

    def _connect(self) -> Cursor:
        try:
            con = duckdb.connect(str(self.path), read_only=self.read_only)
        except duckdb.IOException as exc:
            raise _busy_or_raise(self.path, exc) from exc
        # Every timestamp leaves the store in UTC; pages convert for display.
        con.execute("SET GLOBAL TimeZone = 'UTC'")
        # Nothing is fetched or loaded behind the user's back: a function name in an ad-hoc query
        # must not make DuckDB download an extension.
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        if self.memory_limit:  # the instance's, so every query's (ingest and ad-hoc SQL alike): none per query
            con.execute("SET memory_limit = ?", [self.memory_limit])
        return con

    def _migrate(self) -> None:
        with self.write_lock:
            cur = self.cursor()
            cur.execute("CREATE SCHEMA IF NOT EXISTS fg; "
                        "CREATE TABLE IF NOT EXISTS fg.meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
            found = cur.execute("SELECT value FROM fg.meta WHERE key = 'schema_version'").fetchall()
            version = int(found[0][0]) if found else 0
            for number, ddl in MIGRATIONS:
                if number > version:
                    with in_transaction(cur):
                        cur.execute(ddl)
                        cur.execute("INSERT OR REPLACE INTO fg.meta VALUES ('schema_version', ?)", [str(number)])
            cur.execute(VIEWS)

    def cursor(self) -> Cursor:
        """A connection to this same instance for the calling thread (DuckDB connections are not thread-safe)."""
        with self._gate:
            while self._swapping:
                self._gate.wait()
            cur = self.con.cursor()
            self._cursors.add(cur)
            return cur

    def compact(self, drain_s: float = DRAIN_S) -> None:
        """Rewrite the database into a new file and swap it in, so the file shrinks to what it holds (DuckDB
        never gives freed blocks back to the file system). Everything is copied: tables, sequences (with
        their values), views. Readers go on reading the old file during the copy; for the swap, new cursors
        wait and the ones out are given `drain_s` to be dropped, then closed."""
        tmp = self.path.with_name(f".{self.path.name}.compact")
        with self.write_lock:
            for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):  # a copy a crash left behind
                leftover.unlink(missing_ok=True)
            try:
                self._copy_into(tmp)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            os.chmod(tmp, 0o600)
            with self._gate:
                self._swapping = True
            try:
                deadline = time.monotonic() + drain_s
                while len(self._cursors) and time.monotonic() < deadline:
                    time.sleep(0.02)
                self.con.close()  # closes every cursor of it: the instance lets go of the old file
                # Checkpointed under the write lock, so the copy holds all a WAL could: a stale one must not be
                # replayed onto the new file.
                self.path.with_name(self.path.name + ".wal").unlink(missing_ok=True)
                os.replace(tmp, self.path)
                self.con = self._connect()
                self.con.execute(VIEWS)
            finally:
                with self._gate:
                    self._swapping = False
                    self._gate.notify_all()

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """A new cursor inside BEGIN … COMMIT, rolled back on any exception."""
        with self.write_lock:
            cur = self.cursor()
            try:
                with in_transaction(cur):
                    yield cur
            finally:
                cur.close()

    def _copy_into(self, target: Path) -> None:
        """Everything in this database into a new file (its cursor closed and gone on return)."""
        cur = self.cursor()
        try:
            cur.execute("CHECKPOINT")
            name = cur.execute("SELECT current_database()").fetchall()[0][0]
            cur.execute("ATTACH ? AS fg_compact", [str(target)])
            try:
                # The store's own name, not user text: an identifier cannot be a bound parameter.
                cur.execute(f'COPY FROM DATABASE "{name.replace(chr(34), chr(34) * 2)}" TO fg_compact')
            finally:
                cur.execute("DETACH fg_compact")
        finally:
            cur.close()

    def close(self) -> None:
        self.con.close()


@contextmanager
def in_transaction(cur: Cursor) -> Iterator[Cursor]:
    """BEGIN … COMMIT on this cursor, rolled back on any exception."""
    cur.execute("BEGIN TRANSACTION")
    try:
        yield cur
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    cur.execute("COMMIT")


_PID = re.compile(r"\(PID (\d+)\)")


def _busy_or_raise(path: Path, exc: duckdb.IOException) -> Exception:
    text = str(exc)
    if "lock" not in text.lower():
        return exc
    match = _PID.search(text)
    return StoreBusy(path, int(match.group(1)) if match else None)


_COULD_NOT_WRITE = re.compile(r'Could not write file "(?P<file>[^"]+)": (?P<why>.+)')


def write_failure(exc: BaseException) -> str:
    """A failed write in words: "The store could not save new lines (No space left on device, in x.duckdb.wal)"."""
    if isinstance(exc, OSError):
        why, where = exc.strerror or str(exc), exc.filename
    else:
        found = _COULD_NOT_WRITE.search(str(exc))
        why, where = (found["why"].strip(), found["file"]) if found else (str(exc).split("\n")[0], None)
    at = f", in {os.path.basename(where)}" if where else ""
    return (f"The store could not save new lines ({why}{at}). Nothing was lost: what is stored is shown, and the "
            "new lines are read in by themselves once it can write again.")
