"""Ad-hoc SQL over the documented surface: one read-only statement at a time."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb


class QueryRefused(ValueError):
    """A statement the read-only surface does not run; the message says why, in plain words."""


@dataclass
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse anything but one SELECT-like statement (DuckDB's own parser decides what it is)."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefused(str(exc)) from None
    if not statements:
        raise QueryRefused("The query is empty.")
    if len(statements) > 1:
        raise QueryRefused("One statement at a time: remove everything after the first ';'.")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise QueryRefused(f"Only queries that read are allowed here; this is a {kind.name} statement.")


def run(con: duckdb.DuckDBPyConnection, sql: str, *, max_rows: int | None = None) -> Result:
    check_read_only(con, sql)
    cur = con.execute(sql)
    columns = [d[0] for d in cur.description]
    rows = cur.fetchmany(max_rows) if max_rows else cur.fetchall()
    return Result(columns, rows)


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
