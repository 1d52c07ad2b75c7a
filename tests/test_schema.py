"""docs/schema.md and the views agree, column by column, so the documented surface cannot drift."""

from __future__ import annotations

import re

from conftest import ROOT

from fourgent.store import SURFACE


def documented_columns() -> dict[str, list[tuple[str, str]]]:
    text = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    views: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in text.splitlines():
        heading = re.match(r"^## `(\w+)`", line)
        if heading:
            current = views.setdefault(heading.group(1), [])
            continue
        if line.startswith("## "):
            current = None
        row = re.match(r"^\| `(\w+)` \| (\w+) \|", line)
        if current is not None and row:
            current.append((row.group(1), row.group(2)))
    return views


def test_every_view_is_documented_column_by_column_with_its_type(store):
    docs = documented_columns()
    assert set(docs) == set(SURFACE)
    for view in SURFACE:
        actual = store.cursor().execute(f"DESCRIBE {view}").fetchall()
        described = [(name, _short(kind)) for name, kind, *_ in actual]
        assert described == docs[view], view


def _short(kind: str) -> str:
    return {"TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ"}.get(kind, kind.split("(")[0].split("[")[0])
