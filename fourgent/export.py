"""CSV export of every run matching a filter, read from the store in batches, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import polars as pl

from .filters import RunFilter

if TYPE_CHECKING:  # the store is handed in; importing it here would tie export and the store in a circle
    from .store import Store

EXPORT_CAP = 250_000  # Streamlit's download button holds the whole file in memory
EXPORT_COLUMNS = ("id", "reference", "workflow", "status", "started_at", "finished_at", "duration_ms",
                  "error_kind", "error_message")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Spreadsheets skip leading white space (and line breaks) before reading a formula: " =1+1" and "\n=1+1" run.
_LEADING_SPACE = " \t\r\n\v\f\u00a0\u3000"


def neutralise(value: object) -> object:
    """A cell a spreadsheet would run as a formula gets a leading apostrophe (OWASP's advice), also when the
    formula follows white space or a line break."""
    if isinstance(value, str) and (value.startswith(_FORMULA_START)
                                   or value.lstrip(_LEADING_SPACE).startswith(_FORMULA_START)):
        return "'" + value
    return value


def csv_chunks(store: Store, f: RunFilter, cap: int = EXPORT_CAP) -> Iterator[str]:
    reader = store.export_batches(f, EXPORT_COLUMNS, cap)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for record_batch in reader:
        columns = [record_batch.column(i).to_pylist() for i in range(record_batch.num_columns)]
        for row in zip(*columns, strict=True):
            writer.writerow([neutralise(v.isoformat() if hasattr(v, "isoformat") else v) for v in row])
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    rest = out.getvalue()
    if rest:
        yield rest


def csv_bytes(store: Store, f: RunFilter, cap: int = EXPORT_CAP) -> bytes:
    return "".join(csv_chunks(store, f, cap)).encode("utf-8")


def frame_csv(frame: pl.DataFrame) -> bytes:
    """Any result as CSV, formula cells neutralised and nested values as JSON (the Explore page's download)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([neutralise(c) for c in frame.columns])
    for row in frame.iter_rows():
        writer.writerow([neutralise(_cell(v)) for v in row])
    return out.getvalue().encode("utf-8")


def json_text(value: object) -> str:
    """A JSON value as one line of text ("" for none), for a table cell or a CSV."""
    return "" if value is None else json.dumps(value, ensure_ascii=False, default=str)


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value.isoformat() if hasattr(value, "isoformat") else value
