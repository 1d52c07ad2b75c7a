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
from collections.abc import Iterator
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
ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
# Scalar functions that would show what is outside the surface (settings hold paths and the like).
REFUSED_FUNCTIONS = frozenset({"current_setting", "getenv", "getvariable", "json_serialize_sql",
                               "json_deserialize_sql", "json_serialize_plan", "duckdb_api"})
_EXPLAIN = re.compile(r"^\s*EXPLAIN(\s+ANALYZE)?\s+", re.IGNORECASE)


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
    """Refuse, with a plain reason, anything but one statement that reads the documented surface."""
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
    ctes = {name for node in _walk(tree) if isinstance(node, dict) and "cte_map" in node
            for name in (entry["key"] for entry in node["cte_map"].get("map", []))}
    for node in _walk(tree):
        if isinstance(node, dict):
            _check_node(node, ctes)


def _walk(value: Any) -> Iterator[Any]:
    stack = [value]
    while stack:
        item = stack.pop()
        yield item
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _check_node(node: dict[str, Any], ctes: set[str]) -> None:
    kind = node.get("type")
    if kind == "BASE_TABLE":
        name, schema, catalog = node.get("table_name", ""), node.get("schema_name", ""), node.get("catalog_name", "")
        surface = name.lower() in SURFACE and schema.lower() in ("", "main") and not catalog
        own = name in ctes and not schema and not catalog
        if not (surface or own):
            where = ".".join(p for p in (catalog, schema, name) if p)
            raise QueryRefused(f"Only the views {', '.join(SURFACE)} can be read here, not {where}.")
    elif kind == "TABLE_FUNCTION":
        function = node.get("function") or {}
        name = str(function.get("function_name", "")).lower()
        if name not in ALLOWED_TABLE_FUNCTIONS or function.get("schema"):
            raise QueryRefused(f"The table function {name}() is not allowed here: queries read the views "
                               "only (no files, URLs or system tables).")
    elif kind == "SHOW_REF" and node.get("show_type") == "SHOW_SPECIAL":
        raise QueryRefused("SHOW TABLES is not available here: the views are runs, steps, rejected_lines "
                           "and comments (DESCRIBE one of them).")
    elif node.get("class") == "FUNCTION":
        name = str(node.get("function_name", "")).lower()
        if node.get("schema") or node.get("catalog"):
            raise QueryRefused(f"Functions from another schema are not allowed here ({node.get('schema')}.{name}).")
        if name in REFUSED_FUNCTIONS:
            raise QueryRefused(f"The function {name}() is not allowed here.")


def run(con: duckdb.DuckDBPyConnection, sql: str, *, max_rows: int = MAX_ROWS,
        time_limit: float = TIME_LIMIT_S) -> Result:
    """Check, then run, `sql`: stopped after `time_limit` s, the first `max_rows` rows kept and the rest counted."""
    check(con, sql)
    started = time.perf_counter()
    timer = threading.Timer(time_limit, con.interrupt)
    timer.daemon = True
    timer.start()
    try:
        reader = con.sql(sql).to_arrow_reader(min(max_rows, 65_536) or 1)
        kept: list[pa.RecordBatch] = []
        total = 0
        for batch in reader:  # the first rows kept, the rest only counted
            if total < max_rows:
                kept.append(batch.slice(0, max_rows - total))
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
