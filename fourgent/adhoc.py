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

import csv
import io
import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

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
    # A scalar range builds its whole list before DuckDB looks at the time limit (26 s past a 1 s limit).
    "range", "generate_series",
})
# Functions whose output grows with a count argument: the count must be a constant of at most SIZE_MAX,
# and they may not be nested (repeat(repeat(...)) multiplies).
SIZED_FUNCTIONS = frozenset({"repeat", "lpad", "rpad", "list_resize", "array_resize"})
SIZE_MAX = 10_000
# What a plan may scan: the tables behind the four views, and generated rows.
ALLOWED_SCANS = frozenset({"fg.runs", "fg.rejects", "fg.files", "fg.comments"})
ALLOWED_LEAVES = frozenset({"SEQ_SCAN", "RANGE", "UNNEST", "DUMMY_SCAN", "COLUMN_DATA_SCAN", "EMPTY_RESULT",
                            "CTE_SCAN", "DELIM_SCAN", "CHUNK_SCAN"})
_EXPLAIN = re.compile(r"^\s*EXPLAIN(\s+ANALYZE)?\s+", re.IGNORECASE)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CATALOG_WORDS = re.compile(r"duckdb_|pragma_|pg_|information_schema|current_|getvariable|read_|glob|query",
                            re.IGNORECASE)
_refused_functions: frozenset[str] | None = None


class QueryRefused(ValueError):
    """A statement the guard does not run; the message says why, in plain words."""


class QueryStopped(RuntimeError):
    """The query ran past its time limit and was interrupted."""


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
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [inner]).fetchall()[0][0])
    if tree.get("error"):
        raise QueryRefused("This query cannot be checked, so it is not run: "
                           + str(tree.get("error_message", "unsupported")))
    _Walk(_refused(con)).visit(tree, frozenset())
    _check_plan(con, inner)


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

    def __init__(self, refused: frozenset[str]) -> None:
        self.refused = refused

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
        for key, value in node.items():
            if key != "cte_map":
                self.visit(value, scope, sized)

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
        if name in SIZED_FUNCTIONS:
            args = [a.get("expression", a) for a in node.get("arguments") or node.get("children") or []]
            count = args[1] if len(args) > 1 else None
            literal = (count or {}).get("literal") or {}
            try:
                constant = count is not None and count.get("class") == "CONSTANT" and int(literal.get("text")) <= SIZE_MAX
            except (TypeError, ValueError):
                constant = False
            if sized or not constant:
                raise QueryRefused(f"{name}() needs a constant length of at most {SIZE_MAX:,}, not nested in another "
                                   "such call.")
            return True
        return sized


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
    check(con, sql)
    started = time.perf_counter()
    timer = threading.Timer(time_limit, con.interrupt)
    timer.daemon = True
    timer.start()
    try:
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
    except duckdb.InterruptException:
        raise QueryStopped(f"The query was stopped after its time limit of {time_limit:g} s. "
                           "Narrow it (a WHERE on started_at, a LIMIT) and run it again.") from None
    finally:
        timer.cancel()
    return Result(pl.from_arrow(_readable(table)), total, time.perf_counter() - started)


def _readable(table: pa.Table) -> pa.Table:
    """Intervals (e.g. now() - started_at) as text: polars cannot take Arrow's month-day-nano intervals."""
    for i, f in enumerate(table.schema):
        if pa.types.is_interval(f.type):
            text = pa.array([None if v is None else _interval(v) for v in table.column(i).to_pylist()], pa.string())
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
    if isinstance(value, datetime | date):
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
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(result.columns)
    writer.writerows([_cell(v) for v in row] for row in result.rows)
    return out.getvalue()


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
