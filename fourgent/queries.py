"""The Runs page's queries over the `runs` view: one filter, bound parameters, one page at a time."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

import duckdb
import polars as pl

from .comments import counts as comment_counts
from .spec import STATUSES

PAGE_SIZES = (25, 50, 100)
# The `runs` view plus the internal `search` column; same rows, same names.
SOURCE = "fg.run_rows"
TABLE_COLUMNS = ("id, reference, workflow, workflow_id, status, started_at, finished_at, duration_ms, error_message, "
                 "retrigger_of")


# An error message with the parts that vary from run to run taken out, so alike failures group:
# quoted values become …, and any word holding a digit (IDs, amounts, status codes, durations) becomes #.
ERROR_PATTERN_SQL = (
    "regexp_replace(regexp_replace(error_message, '''[^'']*''|\"[^\"]*\"', '…', 'g'), "
    "'[A-Za-z0-9_.-]*[0-9][A-Za-z0-9_.-]*', '#', 'g')"
)

@dataclass(frozen=True)
class RunFilter:
    """What the Runs page narrows to; every field maps to a URL query parameter."""

    q: str = ""  # case-insensitive substring of reference or ID
    statuses: tuple[str, ...] = ()
    workflows: tuple[str, ...] = ()  # workflow ids
    start: datetime | None = None  # started_at >= start
    end: datetime | None = None  # started_at < end
    unresolved: bool = False  # only failed originals whose latest re-trigger did not finish
    kinds: tuple[str, ...] = ()  # error kinds (auth, validation, …): failed runs of these kinds
    apps: tuple[str, ...] = ()  # failed runs whose failed step called one of these apps (runs.failed_app)
    error: str = ""  # failed runs whose error message has this pattern (ERROR_PATTERN_SQL), as the Overview groups

    def where(self) -> tuple[str, list[Any]]:
        """A WHERE clause (or "") and its parameters; user text only ever travels as a parameter."""
        parts: list[str] = []
        params: list[Any] = []
        q = self.q.strip()
        if q:
            # `search` is lower(reference || chr(31) || id), kept at ingest: one column to scan, no wildcards.
            parts.append("contains(search, lower(?))")
            params.append(q)
        statuses = [s for s in self.statuses if s in STATUSES]
        if statuses:
            parts.append("status IN (SELECT unnest(?::VARCHAR[]))" if len(statuses) > 1 else "status = ?")
            params.append(statuses if len(statuses) > 1 else statuses[0])
        if self.workflows:
            wf = list(self.workflows)
            parts.append("workflow_id IN (SELECT unnest(?::VARCHAR[]))" if len(wf) > 1 else "workflow_id = ?")
            params.append(wf if len(wf) > 1 else wf[0])
        if self.start is not None:
            parts.append("started_at >= ?")
            params.append(self.start)
        if self.end is not None:
            parts.append("started_at < ?")
            params.append(self.end)
        if self.unresolved:
            parts.append(f"({UNRESOLVED_WHERE})")
        if self.error:
            # The pattern is worked out once per distinct message, not once per failed run.
            parts.append(f"status = 'failed' AND error_message IN (SELECT error_message FROM (SELECT DISTINCT "
                         f"error_message FROM fg.runs WHERE status = 'failed') WHERE {ERROR_PATTERN_SQL} = ?)")
            params.append(self.error)
        for column, values in (("error_kind", self.kinds), ("failed_app", self.apps)):
            if values:
                parts.append(f"{column} IN (SELECT unnest(?::VARCHAR[]))")
                params.append(list(values))
        return (" WHERE " + " AND ".join(parts) if parts else ""), params


def frame(cur: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
    return cur.sql(sql, params=params or None).pl()


def page(cur: duckdb.DuckDBPyConnection, f: RunFilter, *, page: int = 1, size: int = 50,
         order: Literal["newest", "oldest"] = "newest", columns: str = TABLE_COLUMNS) -> pl.DataFrame:
    """One page of runs, newest (or oldest) first; ties broken by ID so pages never overlap."""
    where, params = f.where()
    direction = "DESC" if order == "newest" else "ASC"
    sql = (f"SELECT {columns} FROM {SOURCE}{where} ORDER BY started_at {direction}, id {direction} "
           "LIMIT ? OFFSET ?")
    return frame(cur, sql, [*params, size, max(page - 1, 0) * size])


run_page = page  # `page` is also a parameter name below


def count(cur: duckdb.DuckDBPyConnection, f: RunFilter) -> int:
    where, params = f.where()
    return cur.execute(f"SELECT count(*) FROM {SOURCE}{where}", params).fetchall()[0][0]


def status_counts(cur: duckdb.DuckDBPyConnection, f: RunFilter) -> dict[str, int]:
    """Runs per status under the filter's other conditions (so each status count stays clickable)."""
    where, params = replace(f, statuses=()).where()
    rows = cur.execute(f"SELECT status, count(*) FROM {SOURCE}{where} GROUP BY status", params).fetchall()
    found = dict(rows)
    return {s: found.get(s, 0) for s in STATUSES}


def daily_counts(cur: duckdb.DuckDBPyConnection, f: RunFilter) -> pl.DataFrame:
    where, params = f.where()
    # Whole UTC days by integer division: 3x faster than date_trunc on TIMESTAMPTZ at 10M rows.
    return frame(
        cur,
        f"SELECT to_timestamp(d * 86400) AS day, status, runs FROM ("
        f"SELECT epoch_ms(started_at) // 86400000 AS d, status, count(*) AS runs FROM {SOURCE}{where} "
        "GROUP BY ALL) ORDER BY day, status",
        params,
    )


# An unresolved failure: a failed run that was not itself a re-trigger and whose latest
# re-trigger (if any) did not finish. Written as a predicate on the row against the small set of
# resolved originals: a semi-join of every run against the failed ones took 400 ms at 10M runs.
RESOLVED_SQL = (f"SELECT retrigger_of FROM {SOURCE} WHERE retrigger_of IS NOT NULL "
                "GROUP BY retrigger_of HAVING arg_max(status, started_at) = 'finished'")
UNRESOLVED_WHERE = f"status = 'failed' AND retrigger_of IS NULL AND id NOT IN ({RESOLVED_SQL})"
UNRESOLVED_SQL = f"SELECT id FROM {SOURCE} WHERE {UNRESOLVED_WHERE}"


def bulk_selection(f: RunFilter) -> RunFilter | None:
    """What "re-trigger the failed runs matching these filters" takes: the unresolved failures among them."""
    if f.statuses and "failed" not in f.statuses:
        return None
    return replace(f, statuses=("failed",), unresolved=True)


def latest_retriggers(cur: duckdb.DuckDBPyConnection, ids: list[str]) -> dict[str, str]:
    """The status of the latest re-trigger of each of these runs (those re-triggered): one query per page."""
    if not ids:
        return {}
    rows = cur.execute(
        f"SELECT retrigger_of, arg_max(status, started_at) FROM {SOURCE} "
        "WHERE retrigger_of IN (SELECT unnest(?::VARCHAR[])) GROUP BY 1", [ids]).fetchall()
    return dict(rows)


def select_ids(cur: duckdb.DuckDBPyConnection, f: RunFilter, *, limit: int = 100_000) -> list[str]:
    """Run IDs under a filter (newest first), for bulk actions."""
    where, params = f.where()
    sql = f"SELECT id FROM {SOURCE}{where} ORDER BY started_at DESC, id DESC LIMIT ?"
    return [r[0] for r in cur.execute(sql, [*params, limit]).fetchall()]


def auth_failures_by_app(cur: duckdb.DuckDBPyConnection, days: int = 7) -> dict[str, tuple[int, datetime]]:
    """Failed runs of the last `days` days with kind `auth`, by the app of the step that failed: (count, latest)."""
    rows = cur.execute(
        "SELECT failed_app, count(*), max(started_at) "
        "FROM fg.runs WHERE status = 'failed' AND error_kind = 'auth' AND started_at >= now() - to_days(?) "
        "GROUP BY ALL", [days]).fetchall()
    return {app: (n, last) for app, n, last in rows if app}


def find_exact(cur: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    return cur.execute(f"SELECT count(*) FROM {SOURCE} WHERE id = ?", [run_id]).fetchall()[0][0] > 0


def workflows(cur: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(workflow_id, display name) of every integration with runs."""
    # Grouped on the stored columns, then joined: building `workflow` for every row took 130 ms at 10M runs.
    return cur.execute(
        "SELECT workflow_id, any_value(source) || ' → ' || any_value(destination) AS name FROM fg.runs "
        "GROUP BY workflow_id ORDER BY name"
    ).fetchall()


@dataclass
class RunsView:
    """Everything one render of the Runs page shows, from one call (the benchmark times this)."""

    rows: pl.DataFrame
    total: int  # runs matching the filter
    by_status: dict[str, int]  # per status under the other filters
    exact_id: str | None  # the search text is exactly a run's ID
    comment_counts: dict[str, int]
    retriggers: dict[str, str]  # run on the page -> status of its latest re-trigger
    rejected_lines: int
    store_runs: int  # runs in the store at all (for the empty state)


def runs_view(cur: duckdb.DuckDBPyConnection, f: RunFilter, *, page: int = 1, size: int = 50,
              order: Literal["newest", "oldest"] = "newest") -> RunsView:
    rows = run_page(cur, f, page=page, size=size, order=order)
    by_status = status_counts(cur, f)
    statuses = [s for s in f.statuses if s in STATUSES]
    total = sum(by_status[s] for s in statuses) if statuses else sum(by_status.values())
    q = f.q.strip()
    exact = q if q and find_exact(cur, q) else None
    ids = rows["id"].to_list()
    comments = comment_counts(cur, ids)
    retriggers = latest_retriggers(cur, ids)
    rejected, store_runs = cur.execute(
        f"SELECT (SELECT count(*) FROM fg.rejects), (SELECT count(*) FROM {SOURCE})").fetchall()[0]
    return RunsView(rows, total, by_status, exact, comments, retriggers, rejected, store_runs)
