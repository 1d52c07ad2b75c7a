"""An ad-hoc query's answer as the CLI prints it (table, CSV, JSON), and the views' columns as docs/schema.md tells."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from . import export
from .config import SQL_MAX_ROWS as MAX_ROWS
from .config import SQL_TIME_LIMIT_S as TIME_LIMIT_S
from .store.records import SqlResult

__all__ = ["MAX_ROWS", "TIME_LIMIT_S", "as_csv", "as_json", "as_table", "in_zone", "schema_docs"]


def in_zone(frame: pl.DataFrame, zone: str) -> pl.DataFrame:
    """The frame with its zoned timestamps told in `zone` (the same instants, as the other pages show them);
    timestamps without a zone and every other column as they are."""
    return frame.with_columns(pl.col(name).dt.convert_time_zone(zone) for name, dtype in frame.schema.items()
                              if isinstance(dtype, pl.Datetime) and dtype.time_zone)


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


def as_json(result: SqlResult) -> str:
    rows = [dict(zip(result.columns, map(_plain, row), strict=True)) for row in result.rows]
    return json.dumps(rows, ensure_ascii=False)


def as_csv(result: SqlResult) -> str:
    """Formula cells neutralised, as the page's download: the CLI's CSV is opened in spreadsheets too."""
    return export.frame_csv(result.frame).decode("utf-8")


def as_table(result: SqlResult, width: int = 48) -> str:
    def clip(s: str) -> str:
        s = s.replace("\n", " ")
        return s if len(s) <= width else s[: width - 1] + "…"

    cells = [[clip(_cell(v)) for v in row] for row in result.rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(result.columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(result.columns, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    count = f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})"
    return "\n".join([line, rule, *body, count])
