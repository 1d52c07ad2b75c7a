"""The DuckDB database instance: one per store file per process, its settings, migrations and transactions."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from ..errors import StoreBusy
from .schema import MIGRATIONS, VIEWS

if TYPE_CHECKING:
    from .ingest import FileRow


def snapshot_folder(db_path: Path) -> Path:
    """Where a store's snapshot lives: beside the store file (fourgent.duckdb → fourgent.snapshot/)."""
    return db_path.with_suffix(".snapshot")

Cursor = duckdb.DuckDBPyConnection


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
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            raise _busy_or_raise(self.path, exc) from exc
        # Every timestamp leaves the store in UTC; pages convert for display.
        self.con.execute("SET GLOBAL TimeZone = 'UTC'")
        # Nothing is fetched or loaded behind the user's back: a function name in an ad-hoc query
        # must not make DuckDB download an extension.
        self.con.execute("SET autoinstall_known_extensions = false")
        self.con.execute("SET autoload_known_extensions = false")
        if memory_limit:  # the instance's, so every query's (ingest and ad-hoc SQL alike): DuckDB has no per-query one
            self.con.execute("SET memory_limit = ?", [memory_limit])
        if not read_only:
            self._migrate()
            os.chmod(self.path, 0o600)  # run payloads and encrypted credentials: not for other users

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
        return self.con.cursor()

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
