"""The ClickHouse engine (a server, a cluster, or chDB in-process), driven by clickhouse-connect.

What it holds so far (issue 16, first parts): the runs in a ReplacingMergeTree and the ledger beside them
(schema.py), a copy of an embedded store (`load`, what `python -m fourgent migrate --to` runs), the Runs page's
reads (the RunsReader protocol's) and the ledger's and alerts' reads (ledger.py), which the contract tests run
against both engines. Ingest, the ledger's writes, the Overview and Explore are not here yet, so the dashboard
cannot be pointed at it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

import polars as pl
import pyarrow as pa

from ...filters import RunFilter
from ...logfiles import BATCH_BYTES, IngestReport
from ...overview import EXACT_MAX, UTC_ZONE, OverviewView, Window
from ...spec import CANCELLED_KIND, STATUSES
from ..errors import StoreBusy
from ..records import SURFACE, PruneReport, RunsView, SqlResult
from . import explore, ingest, overview, prune, rollup
from .bulk import BulkReads
from .schema import APPEND_ONLY, DAY_MS, SCHEMA_VERSION, TABLE_COLUMNS, TABLES, epoch_ms, floor_div
from .sql import RUNS, Params, run_where
from .writes import ClaimWrites

DATABASE = "fourgent"
SCHEMES = ("clickhouse", "clickhouses", "chdb")
IDENTIFIER = re.compile(r"[A-Za-z0-9_]+")
# A run's snapshots share its month, so FINAL need not collapse rows across partitions: a partition merged to one
# part is then read as it is (9 ms for a filtered count at 1M runs, against 74 ms with parts to collapse).
SETTINGS = {"do_not_merge_across_partitions_select_final": 1}


@dataclass(frozen=True)
class Target:
    """Where a ClickHouse store URL points, cut by hand (a password may hold # ? / unencoded)."""

    scheme: str
    host: str
    port: int | None
    user: str | None
    password: str | None
    database: str
    path: str  # chdb: the folder


def parse_url(url: str) -> Target:
    """`clickhouse://user:password@host:8123/database`, `clickhouses://…` (TLS) or `chdb:///path/to/folder`."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in SCHEMES:
        raise ValueError("not a ClickHouse store URL (clickhouse://, clickhouses:// or chdb://)")
    if scheme == "chdb":
        if not rest.startswith("/"):
            raise ValueError("a chdb:// URL names a folder by its absolute path: chdb:///path/to/folder")
        return Target(scheme, "", None, None, None, DATABASE, rest)
    credentials, at, place = rest.rpartition("@")
    user, _, password = credentials.partition(":") if at else ("", "", "")
    hostport, _, database = place.partition("/")
    database = database.split("?", 1)[0].strip("/") or DATABASE
    host, colon, port = hostport.rpartition(":") if hostport.count(":") == 1 else (hostport, "", "")
    if not host or (colon and not port.isdigit()):
        raise ValueError("the URL names no host (and port): clickhouse://user:password@host:8123/database")
    if not IDENTIFIER.fullmatch(database):
        raise ValueError(f"the database name {database!r} is not letters, digits and _")
    return Target(scheme, host, int(port) if colon else None, unquote(user) or None,
                  unquote(password) if password else None, database, "")


def _client(url: str, database: str | None = None, *, session: bool = False) -> Any:
    """A clickhouse-connect client for the store at `url` (parse_url), its database (or `database`) made if missing.
    Without `session` its queries carry no session id: the dashboard's threads share it, and a server refuses a
    second query of a session while one runs (every setting here goes with its query)."""
    import clickhouse_connect

    target = parse_url(url)
    if database is not None:
        target = replace(target, database=database)
    if target.scheme == "chdb":
        client = clickhouse_connect.get_client(dsn=f"chdb://{target.path}")
    else:
        client = clickhouse_connect.get_client(host=target.host, port=target.port, username=target.user,
                                               password=target.password or "", database="default",
                                               secure=target.scheme == "clickhouses",
                                               autogenerate_session_id=session)
    try:
        client.command(f"CREATE DATABASE IF NOT EXISTS `{target.database}`")
    except Exception:
        client.close()
        raise
    client.database = target.database
    return client


class SchemaMismatch(ValueError):
    """The database holds this store's tables as another version of it made them."""


def _schema(client: Any) -> None:
    """Make the tables of an empty database (and mark it with SCHEMA_VERSION), or check that a database holding them
    was made by this version. There are no migrations yet: a database of another version is refused in words."""
    client.command(prune.META_DDL)
    found = client.query("SELECT value FROM meta FINAL WHERE key = 'schema_version'").result_rows
    held = int(client.command("SELECT count() FROM system.tables WHERE database = currentDatabase() "
                              "AND name != 'meta'"))
    if found and found[0][0] != str(SCHEMA_VERSION) or not found and held:
        made = f"version {found[0][0]}" if found else "a version before versions were kept"
        raise SchemaMismatch(f"the ClickHouse database {client.database} holds Fourgent tables of {made}; this is "
                             f"version {SCHEMA_VERSION}, with no migration from it yet: copy into an empty database")
    for ddl in (*TABLES.values(), *rollup.TABLES.values()):
        client.command(ddl)
    if not found:
        client.command("INSERT INTO meta (key, value) VALUES ('schema_version', {v:String})",
                       parameters={"v": str(SCHEMA_VERSION)})


class ClickHouseStore(ClaimWrites, BulkReads):
    """The store in one ClickHouse database: every protocol of fourgent.store, shared by many processes."""

    engine = "clickhouse"
    read_only = False  # a read-only store is the embedded engine's (a second process reading the file)

    def __init__(self, url: str) -> None:
        self.url = url
        target = parse_url(url)
        # What names this store in this process (alert tickers are kept per store): chDB's folder, else the server's
        # database, never the password.
        self.path = Path(target.path) if target.scheme == "chdb" else Path(f"{target.host}:{target.port or ''}",
                                                                               target.database)
        self._write_lock = threading.Lock()
        try:
            self.client = _client(url)
        except Exception as exc:
            # chDB is one process's engine: a second process cannot open the folder while the first holds it.
            if target.scheme == "chdb" and "Unable to open the chdb engine" in str(exc):
                raise StoreBusy(self.path, None, "chDB (ClickHouse in a process)") from None
            raise
        self.explorer = explore.Explorer(lambda database: _client(url, database, session=True),
                                         explore.sql_database(self.client.database))
        try:
            _schema(self.client)
            self.client.command(f"CREATE DATABASE IF NOT EXISTS `{explore.sql_database(self.client.database)}`")
            for view in explore.views(self.client.database):
                self.client.command(view)
        except Exception:
            self.client.close()
            raise

    def close(self) -> None:
        self.explorer.close()
        self.client.close()

    # -- ingest (ingest.py) ----------------------------------------------------------------------------------

    def ingest(self, paths: Sequence[Path | str], *, logs_dir: Path | None = None, batch_bytes: int = BATCH_BYTES,
               on_batch: Callable[[IngestReport], None] | None = None) -> IngestReport:
        """New complete lines of the run logs under `paths`, every line a run snapshot or a rejected line; other
        workers may ingest other files into the same database at the same time."""
        return ingest.ingest(self, paths, logs_dir=logs_dir, batch_bytes=batch_bytes, on_batch=on_batch)

    # -- retention (prune.py) -------------------------------------------------------------------------------

    def prune(self, default: datetime | None, per_workflow: Mapping[str, datetime], *, archive: Path | None = None,
              dry_run: bool = False) -> PruneReport:
        """Remove the runs started before their workflow's cutoff, else before `default` (None: kept), with their
        ledger rows and the rejected lines older than every cutoff; archived to Parquet under `archive` first."""
        with self._write_lock:
            return prune.prune(self, default, per_workflow, archive=archive, dry_run=dry_run)

    def last_pruned(self) -> datetime | None:
        return prune.last_pruned(self)

    # -- ad-hoc SQL (explore.py) ------------------------------------------------------------------------------

    surface: tuple[str, ...] = SURFACE
    examples = explore.EXAMPLES

    def run_sql(self, sql: str, *, max_rows: int, time_limit: float, with_audit: bool = False) -> SqlResult:
        """`sql` on a read-only session of the views' database, under the engine's own limits."""
        return self.explorer.run(sql, max_rows=max_rows, time_limit=time_limit, with_audit=with_audit)

    def describe(self, view: str) -> list[tuple[str, str]]:
        """(column, type) of one documented view."""
        return self.explorer.describe(view)

    # -- reading ---------------------------------------------------------------------------------------------

    def _frame(self, sql: str, p: Params | None = None, settings: dict[str, Any] | None = None) -> pl.DataFrame:
        table = self.client.query_arrow(sql, parameters=(p.values if p else None),
                                        settings={**SETTINGS, **(settings or {})})
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return frame

    def _rows(self, sql: str, p: Params | None = None,
              settings: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        # Every instant here is UTC; the driver hands back naive datetimes unless asked for aware ones.
        return [tuple(r) for r in self.client.query(sql, parameters=(p.values if p else None),
                                                    settings={**SETTINGS, **(settings or {})},
                                                    tz_mode="aware").result_rows]

    def page(self, f: RunFilter, *, page: int = 1, size: int = 50,
             order: Literal["newest", "oldest"] = "newest") -> pl.DataFrame:
        p = Params()
        where = run_where(f, p)
        direction = "DESC" if order == "newest" else "ASC"
        sql = (f"SELECT {TABLE_COLUMNS} FROM {RUNS}{where} ORDER BY started_at {direction}, id {direction} "
               f"LIMIT {p.add(size, 'UInt64')} OFFSET {p.add(max(page - 1, 0) * size, 'UInt64')}")
        return self._frame(sql, p)

    def count(self, f: RunFilter) -> int:
        p = Params()
        return int(self._rows(f"SELECT count() FROM {RUNS}{run_where(f, p)}", p)[0][0])

    def status_counts(self, f: RunFilter) -> dict[str, int]:
        p = Params()
        where = run_where(replace(f, statuses=()), p)
        found = dict(self._rows(f"SELECT status, count() FROM {RUNS}{where} GROUP BY status", p))
        return {s: int(found.get(s, 0)) for s in STATUSES}

    def daily_counts(self, f: RunFilter) -> pl.DataFrame:
        p = Params()
        # Days as the embedded store cuts them (whole UTC days of the rounded milliseconds), as DateTime64, so
        # a day outside 1970-2106 (what DateTime holds) is not clamped.
        return self._frame(f"SELECT toDateTime64({floor_div(epoch_ms('started_at'), DAY_MS)} * 86400, 6, 'UTC') "
                           f"AS day, status, toInt64(count()) AS runs FROM {RUNS}{run_where(f, p)} "
                           "GROUP BY day, status ORDER BY day, status", p)

    def find_exact(self, run_id: str) -> bool:
        p = Params()
        return bool(self._rows(f"SELECT count() FROM {RUNS} WHERE id = {p.add(run_id, 'String')}", p)[0][0])

    def workflows(self) -> list[tuple[str, str]]:
        return [(w, n) for w, n in self._rows(
            f"SELECT workflow_id, any(source) || ' → ' || any(destination) AS name FROM {RUNS} "
            "GROUP BY workflow_id ORDER BY name")]

    def run_count(self) -> int:
        return int(self._rows(f"SELECT count() FROM {RUNS}")[0][0])

    def latest_retriggers(self, ids: Sequence[str]) -> dict[str, str]:
        if not ids:
            return {}
        p = Params()
        among = p.among(list(ids), "String")
        # The children are found in the re-trigger ledger (small), then read by ID (id_bloom): runs.retrigger_of
        # holds only the lineage the ledger recorded, so the two name the same runs (with id_bloom, a full Runs page
        # at 10M runs went from 640 to 272 ms).
        return dict(self._rows(
            f"SELECT retrigger_of, argMax(status, started_at) FROM {RUNS} WHERE id IN (SELECT run_id FROM "
            f"retriggers FINAL WHERE retrigger_of IN {among}) AND retrigger_of IN {among} GROUP BY retrigger_of", p))

    def comment_counts(self, ids: Sequence[str]) -> dict[str, int]:
        if not ids:
            return {}
        p = Params()
        return {r: int(n) for r, n in self._rows(
            f"SELECT run_id, count() FROM comments WHERE run_id IN {p.among(list(ids), 'String')} "
            "GROUP BY run_id", p)}

    def marks(self, ids: Sequence[str]) -> dict[str, str]:
        """For a page of runs: "cancelled", "handled", or how a re-trigger among them was made when not a plain
        replay (the embedded store's rule: one mark per run, by rank)."""
        if not ids:
            return {}
        p = Params()
        among = p.among(list(ids), "String")
        return dict(self._rows(
            "SELECT run_id, argMin(mark, rank) FROM ("
            f"SELECT id AS run_id, 'cancelled' AS mark, 0 AS rank FROM {RUNS} WHERE id IN {among} "
            f"AND status = 'failed' AND error_kind = '{CANCELLED_KIND}' "
            f"UNION ALL SELECT run_id, 'handled', 1 FROM handled FINAL WHERE run_id IN {among} "
            "UNION ALL SELECT run_id, if(mode = 'from step', concat('from step ', toString(from_step)), mode), 2 "
            f"FROM retriggers FINAL WHERE run_id IN {among} AND mode <> 'replay') GROUP BY run_id", p))

    def rejected(self, limit: int = 500) -> pl.DataFrame:
        p = Params()
        return self._frame("SELECT file, toInt64(line) AS line, reason, raw, ingested_at FROM rejects FINAL "
                           f"ORDER BY ingested_at DESC, file, line LIMIT {p.add(limit, 'UInt64')}", p)

    def runs_view(self, f: RunFilter, *, page: int = 1, size: int = 50,
                  order: Literal["newest", "oldest"] = "newest") -> RunsView:
        rows = self.page(f, page=page, size=size, order=order)
        by_status = self.status_counts(f)
        statuses = [s for s in f.statuses if s in STATUSES]
        total = sum(by_status[s] for s in statuses) if statuses else sum(by_status.values())
        q = f.q.strip()
        exact = q if q and self.find_exact(q) else None
        ids = rows["id"].to_list()
        rejected_lines, store_runs = self._rows(
            f"SELECT (SELECT count() FROM rejects FINAL) + (SELECT sum(rejects_not_kept) FROM files FINAL), "
            f"(SELECT count() FROM {RUNS})")[0]
        return RunsView(rows, total, by_status, exact, self.comment_counts(ids), self.latest_retriggers(ids),
                        int(rejected_lines), int(store_runs), self.marks(ids))

    # -- the Overview and the Workflows page (overview.py) --------------------------------------------------

    def overview(self, w: Window, *, exact_max: int | None = None) -> OverviewView:
        """exact_max: up to this many runs, every figure from the runs (default fourgent.overview.EXACT_MAX)."""
        return overview.overview_view(self, w, exact_max=EXACT_MAX if exact_max is None else exact_max)

    def workflow_health(self, now: datetime | None = None, zone: str = UTC_ZONE) -> pl.DataFrame:
        return overview.workflow_health(self, now, zone)

    def unresolved_count(self, f: RunFilter) -> int:
        """How many unresolved failed runs match the Runs page's filter (what its bulk re-trigger takes)."""
        selection = f.bulk_selection()
        return 0 if selection is None else self.count(selection)

    def rollups_current(self) -> bool:
        return rollup.is_current(self)

    def refresh_rollups(self) -> int:
        """Recompute the rollups of the days marked changed; how many days."""
        with self._write_lock:
            return rollup.refresh(self)

    # -- copying an embedded store in ------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Rows per table (runs: their latest snapshots)."""
        def source(t: str) -> str:
            return RUNS if t == "runs" else t if t in APPEND_ONLY else f"{t} FINAL"
        return {t: int(self._rows(f"SELECT count() FROM {source(t)}")[0][0]) for t in TABLES}

    def bytes_on_disk(self) -> int:
        """What this database's live parts take on disk (parts a merge replaced are deleted minutes later)."""
        return int(self._rows("SELECT sum(bytes_on_disk) FROM system.parts WHERE database = currentDatabase() "
                              "AND active")[0][0] or 0)

    def load(self, tables: Iterable[tuple[str, pa.RecordBatchReader]]) -> dict[str, int]:
        """Insert each table's Arrow batches (an embedded store's `dump`): rows inserted per table. Refuses a
        database that already holds runs (a second copy would double the comments and rejected lines)."""
        held = {t: n for t, n in self.counts().items() if n}
        if held:
            rows = ", ".join(f"{n:,} {t}" for t, n in held.items())
            raise ValueError(f"the ClickHouse database already holds {rows}: migrate copies into an empty one")
        inserted: dict[str, int] = {}
        for table, reader in tables:
            if table not in TABLES:
                raise ValueError(f"unknown table {table!r}")
            inserted[table] = 0
            for batch in reader:
                if batch.num_rows:
                    rows = pa.Table.from_batches([batch])
                    if "search" in rows.column_names:  # this engine makes it (schema.RUNS_DDL)
                        rows = rows.drop_columns(["search"])
                    self.client.insert_arrow(table, rows)
                    inserted[table] += batch.num_rows
        self.merge()
        rollup.mark_all(self)
        self.refresh_rollups()
        return inserted

    def merge(self) -> None:
        """Merge each table's parts into one per partition. A copy arrives as many parts, and FINAL collapses
        whatever is not merged yet (a first page took 110 ms at 1M runs before this, 20 ms after; the merge
        itself 4.9 s); on merged parts it does nothing."""
        for table in TABLES:
            if table not in APPEND_ONLY:
                self.client.command(f"OPTIMIZE TABLE {table} FINAL")
