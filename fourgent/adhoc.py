"""Ad-hoc SQL over the documented surface, with a guard no query can escape.

The dashboard's one DuckDB instance also ingests logs, so it cannot be locked down with
`enable_external_access=false` (that would stop no COPY into the logs folder anyway, see
../shared/NOTES.md). The guard therefore reads each query before it runs, with DuckDB's own
parser (`json_serialize_sql`), and lets through only what it can prove reads the documented
views: one SELECT (or WITH, EXPLAIN, DESCRIBE, SHOW, SUMMARIZE of them), whose every table is
`runs`, `steps`, `rejected_lines`, `comments` or one of its own CTEs, whose only table functions
make numbers (`range`, `generate_series`, `unnest`), and which calls no function in another
schema or that reads settings. Anything the parser cannot serialise is refused, not guessed at.
A timer interrupts the query at its time limit; only the first rows are kept.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from duckdb.sqltypes import DuckDBPyType

from . import export
from .store import SURFACE

TIME_LIMIT_S = 10.0
MAX_ROWS = 10_000
MAX_BYTES = 64 << 20  # rows kept for display stop here too, whatever the row count
_BATCH_ROWS = 2_048  # small batches: one batch of wide rows never holds much memory
ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
# Scalar functions that show state outside the surface (settings, the catalog, the session), change
# state (sequences, the random seed, the log), or hand SQL to DuckDB: refused wherever they appear.
# pg_catalog macros and any built-in macro that reads the catalog are added at first use.
REFUSED_FUNCTIONS = frozenset({
    "current_setting", "getvariable", "getenv", "current_schemas", "current_schema", "current_database",
    "current_catalog", "current_query", "current_query_id", "current_connection_id", "current_transaction_id",
    "in_search_path", "get_block_size", "stats", "write_log", "setseed", "nextval", "currval", "setval",
    "json_serialize_sql", "json_deserialize_sql", "json_serialize_plan", "json_execute_serialized_sql",
    "duckdb_api", "parse_duckdb_log_message", "txid_current", "version",
    # Looks a table and index up by name (a string): its errors list fg's tables and indexes.
    "index_key",
    # Trusts length fields inside a blob: 37 crafted bytes asked for gigabytes.
    "variant_bytes_to_variant", "st_geomfromwkb",
    # A scalar range builds its whole list before DuckDB looks at the time limit (26 s past a 1 s limit).
    "range", "generate_series",
    # Cost grows with the product of the two strings' lengths, in one uninterruptible call.
    "levenshtein", "damerau_levenshtein", "editdist3", "jaccard", "jaro_similarity", "jaro_winkler_similarity",
})
# Session facts written without parentheses (`SELECT current_catalog`): a column name to the parser.
REFUSED_KEYWORDS = frozenset({"current_catalog", "current_schema", "current_database", "current_user", "current_role",
                              "session_user", "user", "current_query"})
# Functions whose output can be many times their input. DuckDB folds constant expressions while it plans,
# before any time limit can stop it, so each is bounded where it is written: counts are constants of at
# most SIZE_MAX, what is repeated or put in is a short constant, and none is nested inside another.
AMPLIFIERS = frozenset({"repeat", "lpad", "rpad", "list_resize", "array_resize", "bitstring", "replace",
                        "regexp_replace", "printf", "format"})
COUNT_ARG = {"repeat": 1, "lpad": 1, "rpad": 1, "list_resize": 1, "array_resize": 1, "bitstring": 1}
SIZE_MAX = 10_000
PIECE_MAX = 100  # characters of a constant that is repeated
REPLACEMENT_MAX = 16  # characters replace() may put in for each match: output at most 16x its input
MAX_SQL_CHARS = 100_000
# What a plan may scan: the tables behind the four views, and generated rows.
ALLOWED_SCANS = frozenset({"fg.runs", "fg.rejects", "fg.files", "fg.comments"})
ALLOWED_LEAVES = frozenset({"SEQ_SCAN", "RANGE", "UNNEST", "DUMMY_SCAN", "COLUMN_DATA_SCAN", "EMPTY_RESULT",
                            "CTE_SCAN", "DELIM_SCAN", "CHUNK_SCAN"})
_EXPLAIN = re.compile(r"^\s*EXPLAIN(\s+ANALYZE)?\s+", re.IGNORECASE)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CATALOG_WORDS = re.compile(r"duckdb_|pragma_|pg_|information_schema|current_|getvariable|read_|glob|query",
                            re.IGNORECASE)
_refused_functions: frozenset[str] | None = None
_view_column_names: frozenset[str] | None = None


class QueryRefused(ValueError):
    """A statement the guard does not run; the message says why, in plain words."""


class QueryStopped(RuntimeError):
    """The query ran past its time limit and was interrupted."""


class QueryFailed(RuntimeError):
    """The query ran but its result could not be read back; the message says so in plain words."""


@dataclass
class Result:
    frame: pl.DataFrame  # the first rows, at most the cap
    total: int = 0  # rows the query returned; more than shown when capped
    seconds: float = 0.0

    @property
    def columns(self) -> list[str]:
        return self.frame.columns

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        return self.frame.rows()

    @property
    def capped(self) -> bool:
        return self.total > self.frame.height


def check(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse, with a plain reason, anything but one statement that reads the documented surface.

    Three layers: the statement's type (DuckDB's parser), its syntax tree (every table, table function
    and function it names, with CTE names resolved by scope), and its plan (every scan in it).
    """
    if len(sql) > MAX_SQL_CHARS:
        raise QueryRefused(f"The query is longer than {MAX_SQL_CHARS:,} characters.")
    statements = con.extract_statements(sql)  # a syntax error is DuckDB's to explain: it propagates
    if not statements:
        raise QueryRefused("The query is empty.")
    if len(statements) > 1:
        raise QueryRefused("One statement at a time: remove everything after the first ';'.")
    kind = statements[0].type
    inner = sql
    if kind == duckdb.StatementType.EXPLAIN:
        inner = _EXPLAIN.sub("", sql, count=1)
        if inner == sql or con.extract_statements(inner)[0].type != duckdb.StatementType.SELECT:
            raise QueryRefused("Only EXPLAIN of a query that reads is allowed here.")
    elif kind != duckdb.StatementType.SELECT:
        raise QueryRefused(f"Only queries that read are allowed here; this is a {kind.name} statement.")
    try:
        tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [inner]).fetchall()[0][0])
        if tree.get("error"):
            raise QueryRefused("This query cannot be checked, so it is not run: "
                               + str(tree.get("error_message", "unsupported")))
        _Walk(_refused(con), _view_columns(con)).visit(tree, frozenset())
        _check_plan(con, inner)
    except RecursionError:
        raise QueryRefused("This query is nested too deeply to be checked, so it is not run.") from None


def _refused(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """REFUSED_FUNCTIONS, plus pg_catalog's functions and the built-in macros that read the catalog."""
    global _refused_functions
    if _refused_functions is None:
        rows = con.execute("SELECT DISTINCT function_name, schema_name, coalesce(macro_definition, '') "
                           "FROM duckdb_functions() WHERE NOT internal OR function_type LIKE '%macro%' "
                           "OR schema_name = 'pg_catalog'").fetchall()
        extra = {name.lower() for name, schema, body in rows
                 if schema == "pg_catalog" or (body and _CATALOG_WORDS.search(body))}
        _refused_functions = REFUSED_FUNCTIONS | extra
    return _refused_functions


class _Walk:
    """Walks DuckDB's syntax tree, knowing which CTE names are visible where."""

    def __init__(self, refused: frozenset[str], view_columns: frozenset[str]) -> None:
        self.refused = refused
        self.view_columns = view_columns
        self.amplifiers = 0

    def visit(self, node: Any, scope: frozenset[str], sized: bool = False) -> None:
        if isinstance(node, list):
            for item in node:
                self.visit(item, scope, sized)
            return
        if not isinstance(node, dict):
            return
        ctes = (node.get("cte_map") or {}).get("map", [])
        if ctes:
            # A CTE's body sees the CTEs before it (not itself: no recursive CTEs); the query sees them all.
            for entry in ctes:
                self.visit(entry.get("value"), scope, sized)
                scope = scope | {str(entry.get("key", ""))}
        if isinstance(node.get("select_list"), list):
            self._alias_reuse(node["select_list"])
        kind = node.get("type")
        if kind == "BASE_TABLE":
            self._table(node, scope)
        elif kind == "SHOW_REF":
            if node.get("query") is None:  # SHOW TABLES, SHOW <name>: names outside the query's reach
                raise QueryRefused("Only DESCRIBE or SUMMARIZE of a query or of the views runs, steps, "
                                   "rejected_lines and comments is allowed here.")
        elif kind == "TABLE_FUNCTION":
            function = node.get("function") or {}
            name = str(function.get("function_name", "")).lower()
            if name not in ALLOWED_TABLE_FUNCTIONS or function.get("schema") or function.get("catalog"):
                raise QueryRefused(f"The table function {name}() is not allowed here: queries read the views "
                                   "only (no files, URLs or system tables).")
            for key, value in node.items():
                if key != "function":
                    self.visit(value, scope, sized)
            self.visit(function.get("children") or function.get("arguments"), scope, sized)
            return
        elif node.get("class") == "FUNCTION":
            sized = self._function(node, sized)
        elif kind == "COLUMN_REF" and [str(n).lower() for n in node.get("column_names") or []] in (
                [k] for k in REFUSED_KEYWORDS):
            raise QueryRefused(f"{node['column_names'][0]} is not allowed here.")
        for key, value in node.items():
            if key != "cte_map":
                self.visit(value, scope, sized)

    def _alias_reuse(self, select_list: list[Any]) -> None:
        """DuckDB lets a SELECT list use its own aliases, and binds each use by copying the expression:
        a chain of 21 aliases, each doubling the last, took 35 s to plan, deaf to the time limit."""
        aliases = [str(e.get("alias") or "").lower() if isinstance(e, dict) else "" for e in select_list]
        for i, expression in enumerate(select_list):
            others = {a for j, a in enumerate(aliases) if a and j != i} - self.view_columns
            if others and _column_refs(expression) & others:
                raise QueryRefused("A column alias cannot be used again in the same SELECT list here: "
                                   "compute it in a subquery or CTE first.")

    def _table(self, node: dict[str, Any], scope: frozenset[str]) -> None:
        name, schema, catalog = (str(node.get(k) or "") for k in ("table_name", "schema_name", "catalog_name"))
        surface = name.lower() in SURFACE and schema.lower() in ("", "main") and not catalog
        own = name in scope and not schema and not catalog
        if not _IDENTIFIER.match(name) or not (surface or own):
            where = ".".join(p for p in (catalog, schema, name) if p)
            raise QueryRefused(f"Only the views {', '.join(SURFACE)} (and the query's own CTEs) can be read "
                               f"here, not {where}.")

    def _function(self, node: dict[str, Any], sized: bool) -> bool:
        name = str(node.get("function_name", "")).lower()
        if node.get("schema") or node.get("catalog"):
            raise QueryRefused(f"Functions from another schema are not allowed here ({node.get('schema')}.{name}).")
        if name in self.refused:
            raise QueryRefused(f"The function {name}() is not allowed here.")
        if name not in AMPLIFIERS:
            return sized
        if sized:
            raise QueryRefused(f"{name}() cannot be nested inside repeat(), lpad(), replace(), printf() or the like "
                               "here: together they multiply sizes.")
        args = [a.get("expression", a) for a in node.get("arguments") or node.get("children") or []]

        def constant(i: int) -> str | None:
            arg = args[i] if len(args) > i else None
            text = (arg.get("literal") or {}).get("text") if arg and arg.get("class") == "CONSTANT" else None
            return None if text is None else str(text)

        if name in COUNT_ARG:
            count = constant(COUNT_ARG[name])
            if count is None or not count.lstrip("-").isdigit() or int(count) > SIZE_MAX:
                raise QueryRefused(f"{name}() needs a constant length of at most {SIZE_MAX:,} here.")
        self.amplifiers += 1
        if self.amplifiers > 1:  # through an alias or a CTE, one's output can be another's input
            raise QueryRefused("One call of repeat(), lpad(), replace(), printf() or the like per query here: "
                               "chained, they multiply sizes.")
        piece = {"repeat": 0, "list_resize": 2, "array_resize": 2}.get(name)
        if piece is not None and len(args) > piece and (constant(piece) is None or len(constant(piece)) > PIECE_MAX):
            raise QueryRefused(f"{name}() here takes a constant of at most {PIECE_MAX} characters as what it "
                               "repeats.")
        if name in ("replace", "regexp_replace") and len(args) > 2 and (
                constant(2) is None or len(constant(2)) > REPLACEMENT_MAX):
            raise QueryRefused(f"{name}() here takes a constant of at most {REPLACEMENT_MAX} characters as what it "
                               "puts in.")
        if name in ("printf", "format"):
            pattern = constant(0)
            widths = [int(n) for n in re.findall(r"\d+", pattern or "")]
            if pattern is None or "*" in pattern or re.search(r"\{[^}]*\{", pattern) or any(w > SIZE_MAX for w in widths):
                raise QueryRefused(f"{name}() needs a constant format with widths of at most {SIZE_MAX:,} here.")
        return True


def _column_refs(node: Any) -> set[str]:
    """Unqualified column names used in an expression (not inside its subqueries)."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict) and item.get("class") != "SUBQUERY":
            names = item.get("column_names") if item.get("class") == "COLUMN_REF" else None
            if isinstance(names, list) and len(names) == 1:
                found.add(str(names[0]).lower())
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
    return found


def _view_columns(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    global _view_column_names
    if _view_column_names is None:
        rows = con.execute("SELECT DISTINCT lower(column_name) FROM duckdb_columns() "
                           "WHERE schema_name = 'main' AND table_name IN (SELECT unnest(?::VARCHAR[]))",
                           [list(SURFACE)]).fetchall()
        _view_column_names = frozenset(r[0] for r in rows)
    return _view_column_names


def _check_plan(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """What the plan scans: only the tables behind the views and generated rows (catches what binding adds)."""
    plan = json.loads(con.execute("EXPLAIN (FORMAT json) " + sql).fetchall()[0][1])
    stack = list(plan)
    while stack:
        node = stack.pop()
        children = node.get("children") or []
        stack.extend(children)
        name = str(node.get("name", ""))
        extra = node.get("extra_info") if isinstance(node.get("extra_info"), dict) else {}
        if name == "SEQ_SCAN":
            table = ".".join(p.strip('"') for p in str(extra.get("Table", "")).split(".")[-2:])
            if table not in ALLOWED_SCANS:
                raise QueryRefused(f"The query would read {table}, which is not part of the views.")
        elif not children and name not in ALLOWED_LEAVES:
            raise QueryRefused(f"The query would read {name.lower()}, which is not part of the views.")


def run(con: duckdb.DuckDBPyConnection, sql: str, *, max_rows: int = MAX_ROWS,
        time_limit: float = TIME_LIMIT_S) -> Result:
    """Check, then run, `sql`: stopped after `time_limit` s, the first `max_rows` rows kept and the rest counted."""
    started = time.perf_counter()
    # The timer covers the check too: planning folds constant expressions, which is real work.
    timer = threading.Timer(time_limit, con.interrupt)
    timer.daemon = True
    timer.start()
    try:
        check(con, sql)
        sql, names = _displayable(con, sql)
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
    finally:
        timer.cancel()
    return Result(_frame(con, table), total, time.perf_counter() - started)


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
        if t.id == "map" and children[0][1].id not in _KEY_TYPES:  # Python dicts and JSON take simple keys only
            return False
        inner = [c[1] for c in children] if t.id in ("struct", "map") else [children[0][1]]
        return all(isinstance(c, DuckDBPyType) and _plain_type(c, False) for c in inner)
    return False


def _displayable(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[str, list[str] | None]:
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
    columns = ", ".join(n if _plain_type(t, True) else f"CAST({n} AS VARCHAR) AS {n}" for n, t in zip(names, types))
    wrapped = f"SELECT {columns} FROM (\n{body}\n) AS q({', '.join(names)})"
    check(con, wrapped)  # what runs is what was checked
    return wrapped, list(relation.columns)


def _frame(con: duckdb.DuckDBPyConnection, table: pa.Table) -> pl.DataFrame:
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
        return pl.from_arrow(table)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, pa.ArrowException) as exc:
        raise QueryFailed(f"The result could not be read back ({type(exc).__name__}); cast its unusual columns "
                          "to VARCHAR and run it again.") from None


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


def _readable(con: duckdb.DuckDBPyConnection, table: pa.Table) -> pa.Table:
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


# Questions people ask when the filters run out; each runs on the demo data and returns rows.
EXAMPLES: dict[str, str] = {
    "Failure rate by workflow per day": """SELECT to_timestamp(epoch_ms(started_at) // 86400000 * 86400) AS day, workflow,
       count(*) AS runs,
       round(100.0 * count(*) FILTER (WHERE status = 'failed') / count(*), 1) AS failed_pct
FROM runs
WHERE started_at >= now() - INTERVAL 14 DAY
GROUP BY ALL
ORDER BY day DESC, failed_pct DESC""",
    "Runs stuck in running for over an hour": """SELECT id, reference, workflow, started_at,
       date_diff('minute', started_at, now()) AS minutes_running
FROM runs
WHERE status = 'running' AND started_at < now() - INTERVAL 1 HOUR
ORDER BY started_at""",
    "Records that failed twice or more this week": """SELECT coalesce(trigger_payload ->> 'record_id', reference) AS record, workflow,
       count(*) AS failures, max(started_at) AS last_failure
FROM runs
WHERE status = 'failed' AND started_at >= now() - INTERVAL 7 DAY
GROUP BY ALL
HAVING count(*) >= 2
ORDER BY failures DESC, last_failure DESC""",
    "Slowest steps (p50 and p95)": """SELECT name, app, count(*) AS runs,
       median(duration_ms) AS p50_ms, quantile_cont(duration_ms, 0.95) AS p95_ms
FROM steps
WHERE duration_ms IS NOT NULL
GROUP BY ALL
ORDER BY p95_ms DESC
LIMIT 15""",
    "Errors by kind per app": """SELECT failed_app AS app, error_kind, count(*) AS failures, max(started_at) AS last_seen
FROM runs
WHERE status = 'failed'
GROUP BY ALL
ORDER BY failures DESC""",
    "Unresolved failures (no finished re-trigger since)": """WITH latest AS (
    SELECT retrigger_of, arg_max(status, started_at) AS latest_status
    FROM runs WHERE retrigger_of IS NOT NULL GROUP BY retrigger_of
)
SELECT r.id, r.reference, r.workflow, r.started_at, r.error_kind, r.error_message,
       l.latest_status AS latest_retrigger
FROM runs r LEFT JOIN latest l ON l.retrigger_of = r.id
WHERE r.status = 'failed' AND r.retrigger_of IS NULL
  AND coalesce(l.latest_status, '') <> 'finished'
ORDER BY r.started_at DESC""",
    "Runs per hour, last 48 hours": """SELECT to_timestamp(epoch_ms(started_at) // 3600000 * 3600) AS hour, status, count(*) AS runs
FROM runs
WHERE started_at >= now() - INTERVAL 48 HOUR
GROUP BY ALL
ORDER BY hour""",
}


def schema_docs(path: Path) -> dict[str, list[tuple[str, str, str]]]:
    """(column, type, meaning) per view, read from docs/schema.md; empty when the file is not there."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    views: dict[str, list[tuple[str, str, str]]] = {}
    current = None
    for line in text.splitlines():
        heading = re.match(r"^## `(\w+)`", line)
        if heading:
            current = views.setdefault(heading.group(1), [])
        elif line.startswith("## "):
            current = None
        elif current is not None and (row := re.match(r"^\| `(\w+)` \| (\w+) \| (.*) \|$", line)):
            current.append((row.group(1), row.group(2), row.group(3)))
    return views


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date | dtime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list | tuple):
        return json.dumps(_plain(value), ensure_ascii=False)
    return str(_plain(value))


def as_json(result: Result) -> str:
    return json.dumps([dict(zip(result.columns, map(_plain, row))) for row in result.rows], ensure_ascii=False)


def as_csv(result: Result) -> str:
    """Formula cells neutralised, as the page's download: the CLI's CSV is opened in spreadsheets too."""
    return export.frame_csv(result.frame).decode("utf-8")


def as_table(result: Result, width: int = 48) -> str:
    def clip(s: str) -> str:
        s = s.replace("\n", " ")
        return s if len(s) <= width else s[: width - 1] + "…"

    cells = [[clip(_cell(v)) for v in row] for row in result.rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(result.columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(result.columns, widths))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    count = f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})"
    return "\n".join([line, rule, *body, count])
