"""Running an ad-hoc query on DuckDB once the guard lets it through: a time limit, the first rows kept, every
type read back as something a page and a CSV can show."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from duckdb.sqltypes import DuckDBPyType

from ...config import SQL_MAX_ROWS, SQL_TIME_LIMIT_S
from ..errors import QueryError, QueryFailed, QueryStopped
from ..records import SqlResult
from . import guard
from .database import Cursor

MAX_BYTES = 64 << 20  # rows kept for display stop here too, whatever the row count
_BATCH_ROWS = 2_048  # small batches: one batch of wide rows never holds much memory


def run(con: Cursor, sql: str, *, max_rows: int = SQL_MAX_ROWS, time_limit: float = SQL_TIME_LIMIT_S,
        leaves: frozenset[str] | None = None) -> SqlResult:
    """Check, then run, `sql`: stopped after `time_limit` s, the first `max_rows` rows kept and the rest counted."""
    started = time.perf_counter()
    # The timer covers the check too: planning folds constant expressions, which is real work.
    timer = threading.Timer(time_limit, con.interrupt)
    timer.daemon = True
    timer.start()
    try:
        guard.check(con, sql, leaves)
        sql, names = _displayable(con, sql, leaves)
        if time.perf_counter() - started >= time_limit:
            raise duckdb.InterruptException("time limit")  # an interrupt between two statements is lost
        reader = con.sql(sql).to_arrow_reader(_BATCH_ROWS)
        kept: list[pa.RecordBatch] = []
        total = kept_rows = kept_bytes = 0
        for batch in reader:  # the first rows kept, the rest only counted
            if kept_rows == total and kept_rows < max_rows and kept_bytes < MAX_BYTES:
                part = batch.slice(0, max_rows - kept_rows)
                kept.append(part)
                kept_rows += part.num_rows
                kept_bytes += part.nbytes
            total += batch.num_rows
        table = pa.Table.from_batches(kept, schema=reader.schema)
        if names:
            table = table.rename_columns(names)
    except duckdb.InterruptException:
        raise QueryStopped(f"The query was stopped after its time limit of {time_limit:g} s. "
                           "Narrow it (a WHERE on started_at, a LIMIT) and run it again.") from None
    except duckdb.Error as exc:  # DuckDB's own words for a bad query; never a traceback
        raise QueryError(str(exc)) from None
    finally:
        timer.cancel()
    try:
        return SqlResult(_frame(con, table), total, time.perf_counter() - started)
    except duckdb.Error as exc:
        raise QueryError(str(exc)) from None


# Result types polars and the page take as they are; any other column (blobs, bits, unions, time with
# zone, variants, intervals or times inside lists...) is turned into DuckDB's own text for it.
_PLAIN_TYPES = frozenset({"boolean", "tinyint", "smallint", "integer", "bigint", "utinyint", "usmallint", "uinteger",
                          "ubigint", "hugeint", "float", "double", "decimal", "varchar", "uuid"})
_TEMPORAL_TYPES = frozenset({"date", "time", "timestamp", "timestamp_s", "timestamp_ms", "timestamp_ns",
                             "timestamp with time zone", "interval"})
_NESTED_TYPES = frozenset({"list", "struct", "map", "array"})
_KEY_TYPES = frozenset({"boolean", "tinyint", "smallint", "integer", "bigint", "utinyint", "usmallint", "uinteger",
                        "ubigint", "varchar"})


def _plain_type(t: DuckDBPyType, top: bool) -> bool:
    if t.id in _PLAIN_TYPES or (top and t.id in _TEMPORAL_TYPES):
        return True
    if t.id in _NESTED_TYPES:
        children = t.children
        if not children:  # an empty struct: no Parquet for it
            return False
        if t.id == "map":  # Python dicts and JSON take simple keys only
            key = children[0][1]
            if not isinstance(key, DuckDBPyType) or key.id not in _KEY_TYPES:
                return False
        inner = [c[1] for c in children] if t.id in ("struct", "map") else [children[0][1]]
        return all(isinstance(c, DuckDBPyType) and _plain_type(c, False) for c in inner)
    return False


def _displayable(con: Cursor, sql: str, leaves: frozenset[str] | None) -> tuple[str, list[str] | None]:
    """`sql`, or a projection over it that casts the columns polars cannot take to text (and its column names)."""
    statement = con.extract_statements(sql)[0]
    if statement.type != duckdb.StatementType.SELECT:
        return sql, None  # EXPLAIN: text columns
    relation = con.sql(sql)
    types = relation.types
    if all(_plain_type(t, True) for t in types):
        return sql, None
    body = re.sub(r";\s*$", "", statement.query.rstrip())
    names = [f"c{i}" for i in range(len(types))]  # generated: no name from the query enters this text
    columns = ", ".join(n if _plain_type(t, True) else f"CAST({n} AS VARCHAR) AS {n}"
                        for n, t in zip(names, types, strict=True))
    wrapped = f"SELECT {columns} FROM (\n{body}\n) AS q({', '.join(names)})"
    guard.check(con, wrapped, leaves)  # what runs is what was checked
    return wrapped, list(relation.columns)


def _frame(con: Cursor, table: pa.Table) -> pl.DataFrame:
    """The kept rows as a polars frame: unique column names, intervals and out-of-range times as text."""
    names: list[str] = []
    for name in table.column_names:
        unique, n = name, 1
        while unique in names:  # "a (2)" may be a name of the query's own
            n += 1
            unique = f"{name} ({n})"
        names.append(unique)
    table = _readable(con, table.rename_columns(names))
    try:
        frame = pl.from_arrow(table)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, pa.ArrowException) as exc:
        raise QueryFailed(f"The result could not be read back ({type(exc).__name__}); cast its unusual columns "
                          "to VARCHAR and run it again.") from None
    assert isinstance(frame, pl.DataFrame)  # a Table reads back as a frame; only an Array gives a Series
    return frame


# Python's datetime stops at year 9999; DuckDB's (and its 'infinity') go further.
_SPAN = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
_FIRST_S, _LAST_S = -62135596800, 253402300799  # 0001-01-01, 9999-12-31T23:59:59 (UTC)


def _out_of_range(column: pa.ChunkedArray) -> bool:
    if pa.types.is_timestamp(column.type):
        per_s = _SPAN[column.type.unit]
        low, high, numbers = _FIRST_S * per_s, _LAST_S * per_s, column.cast(pa.int64())
    elif pa.types.is_date32(column.type):
        low, high, numbers = _FIRST_S // 86400, _LAST_S // 86400, column.cast(pa.int32())
    else:
        return False
    bounds = pc.min_max(numbers)
    return bounds["min"].as_py() is not None and (bounds["min"].as_py() < low or bounds["max"].as_py() > high)


def _readable(con: Cursor, table: pa.Table) -> pa.Table:
    """Intervals (e.g. now() - started_at) as text: polars cannot take Arrow's month-day-nano intervals.
    Dates and times beyond Python's range (DuckDB's 'infinity') as DuckDB's text of them."""
    for i, f in enumerate(table.schema):
        if pa.types.is_interval(f.type):
            text = pa.array([None if v is None else _interval(v) for v in table.column(i).to_pylist()], pa.string())
            table = table.set_column(i, pa.field(f.name, pa.string()), text)
        elif _out_of_range(table.column(i)):
            text = con.from_arrow(pa.table({"v": table.column(i)})).project("CAST(v AS VARCHAR) AS v") \
                .to_arrow_table().column("v")
            table = table.set_column(i, pa.field(f.name, pa.string()), text)
    return table


def _interval(v: Any) -> str:
    seconds, nanos = divmod(v.nanoseconds, 1_000_000_000)
    hours, rest = divmod(seconds, 3600)
    parts = [f"{v.months} month{'s' if v.months != 1 else ''}"] if v.months else []
    parts += [f"{v.days} day{'s' if v.days != 1 else ''}"] if v.days else []
    parts.append(f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}" + (f".{nanos // 1000:06d}" if nanos else ""))
    return " ".join(parts)

