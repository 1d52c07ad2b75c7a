"""What bulk actions read of the runs on ClickHouse: the IDs a bulk takes, what it leaves out, exports, auth errors."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import pyarrow as pa

from ...filters import RunFilter
from ...spec import MISSING_FIELD_PATTERN
from .schema import epoch_ms
from .sql import RUNS, Params, instant, run_where

# The columns an export may name, as the embedded store's `runs` view names them.
EXPORTABLE = {
    "id": "id", "reference": "reference", "workflow": "source || ' → ' || destination", "workflow_id": "workflow_id",
    "status": "toString(status)", "started_at": "started_at", "finished_at": "finished_at",
    "duration_ms": f"{epoch_ms('finished_at')} - {epoch_ms('started_at')}", "error_kind": "toNullable(toString("
    "error_kind))", "error_message": "error_message", "retrigger_of": "retrigger_of", "failed_app": "failed_app",
}


class Reads(Protocol):
    client: Any

    def _rows(self, sql: str, p: Params | None = None,
              settings: dict[str, Any] | None = None) -> list[tuple[Any, ...]]: ...


def waiting_sql(apps: Sequence[str], p: Params) -> str:
    """An auth failure at one of `apps` (their connection is still refused): a replay would fail the same way."""
    return f"ifNull(error_kind = 'auth' AND failed_app IN {p.among(list(apps), 'String')}, 0)"


def unfixable_sql(p: Params) -> str:
    """A validation failure whose payload lacks the field its error names (missing, null or ""), as the embedded
    store's UNFIXABLE_SQL: a replay sends the same payload."""
    field = f"extract(ifNull(error_message, ''), {p.add(MISSING_FIELD_PATTERN, 'String')})"
    return (f"if(error_kind = 'validation' AND {field} <> '', "
            f"ifNull(JSONExtractRaw(trigger_payload, {field}), '') IN ('', 'null', '\"\"'), 0)")


class BulkReads:
    """The RunsReader's reads for bulk actions, exports and the connections' warnings."""

    def select_ids(self: Reads, f: RunFilter, *, limit: int = 100_000, waiting_apps: Sequence[str] = (),
                   unfixable: bool = False) -> list[str]:
        """Newest first; leaving out the auth failures of `waiting_apps` and, with `unfixable`, validation
        failures whose payload lacks the field their error names."""
        p = Params()
        where = run_where(f, p)
        left_out = ([f"NOT {waiting_sql(waiting_apps, p)}"] if waiting_apps else []) + \
            ([f"NOT {unfixable_sql(p)}"] if unfixable else [])
        if left_out:
            where = (where + " AND " if where else " WHERE ") + " AND ".join(left_out)
        return [r[0] for r in self._rows(f"SELECT id FROM {RUNS}{where} ORDER BY started_at DESC, id DESC "
                                         f"LIMIT {p.add(limit, 'UInt64')}", p)]

    def futile_split(self: Reads, f: RunFilter, waiting_apps: Sequence[str]) -> tuple[dict[str, int], int]:
        """Of the runs under `f`: auth failures per app of `waiting_apps`, and the unfixable validation ones."""
        p = Params()
        where = run_where(f, p) or " WHERE 1"
        waiting, unfixable = waiting_sql(waiting_apps, p), unfixable_sql(p)
        rows = self._rows(f"SELECT if({waiting}, failed_app, NULL) AS app, count() FROM {RUNS}{where} "
                          f"AND ({waiting} OR {unfixable}) GROUP BY app", p)
        return {app: int(n) for app, n in rows if app is not None}, sum(int(n) for app, n in rows if app is None)

    def auth_failures_by_app(self: Reads, days: int = 7) -> dict[str, tuple[int, datetime]]:
        """Failed runs of the last `days` days with kind `auth`, by the app of the step that failed."""
        p = Params()
        since = instant(datetime.now(UTC) - timedelta(days=days), p)
        return {app: (int(n), last) for app, n, last in self._rows(
            f"SELECT failed_app, count(), max(started_at) FROM {RUNS} WHERE status = 'failed' AND error_kind = 'auth' "
            f"AND started_at >= {since} GROUP BY failed_app", p) if app}

    def export_batches(self: Reads, f: RunFilter, columns: Sequence[str], cap: int,
                       order: Literal["newest", "oldest"] = "newest") -> Iterator[pa.RecordBatch]:
        """The matching runs in the page's order, as Arrow batches of `columns` (at most `cap` rows);
        `latest_retrigger` is the status of each run's latest re-trigger."""
        unknown = [c for c in columns if c not in EXPORTABLE and c != "latest_retrigger"]
        if unknown:
            raise ValueError(f"not a column of the runs view: {', '.join(unknown)}")
        p = Params()
        direction = "DESC" if order == "newest" else "ASC"
        select = ", ".join("l.latest AS latest_retrigger" if c == "latest_retrigger" else f"r.{c} AS {c}"
                           for c in columns)
        inner = ", ".join(f"{expr} AS {name}" for name, expr in EXPORTABLE.items())
        page = (f"SELECT {inner} FROM {RUNS}{run_where(f, p)} ORDER BY started_at {direction}, id {direction} "
                f"LIMIT {p.add(cap, 'UInt64')}")
        latest = (f"SELECT assumeNotNull(retrigger_of) AS of, toNullable(toString(argMax(status, started_at))) "
                  f"AS latest FROM {RUNS} WHERE retrigger_of IS NOT NULL GROUP BY retrigger_of")
        sql = (f"SELECT {select} FROM ({page}) r LEFT JOIN ({latest}) l ON l.of = r.id "
               f"ORDER BY r.started_at {direction}, r.id {direction} SETTINGS join_use_nulls = 1")
        with self.client.query_arrow_stream(sql, parameters=p.values) as stream:
            yield from stream
