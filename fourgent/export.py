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
                  "error_kind", "error_message", "retrigger_of")
# The Runs table's Re-trigger column, in words: how the run's latest re-trigger went, or that it is one.
RETRIGGER_STATES = {"finished": "resolved", "failed": "failed again", "running": "replay running",
                    "pending": "replay pending", "skipped": "replay skipped"}
CSV_HEADER = (*EXPORT_COLUMNS, "retrigger_state")
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


def retrigger_state(retrigger_of: str | None, latest: str | None) -> str:
    if latest:
        return RETRIGGER_STATES.get(latest, f"replay {latest}")
    return "replay" if retrigger_of else ""


def csv_chunks(store: Store, f: RunFilter, cap: int = EXPORT_CAP, *, oldest: bool = False) -> Iterator[str]:
    """The runs in the page's order (`oldest`: oldest first), with the Runs table's re-trigger state."""
    reader = store.export_batches(f, (*EXPORT_COLUMNS, "latest_retrigger"), cap, "oldest" if oldest else "newest")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for record_batch in reader:
        columns = [record_batch.column(i).to_pylist() for i in range(record_batch.num_columns)]
        for *row, latest in zip(*columns, strict=True):
            cells = [*row, retrigger_state(row[-1], latest)]
            writer.writerow([neutralise(v.isoformat() if hasattr(v, "isoformat") else v) for v in cells])
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    rest = out.getvalue()
    if rest:
        yield rest


def csv_bytes(store: Store, f: RunFilter, cap: int = EXPORT_CAP, *, oldest: bool = False) -> bytes:
    return "".join(csv_chunks(store, f, cap, oldest=oldest)).encode("utf-8")


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
