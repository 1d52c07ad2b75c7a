"""docs/schema.md and the views agree, column by column, so the documented surface cannot drift."""

from __future__ import annotations

import re

from fourgent.store.records import SURFACE
from helpers import ROOT


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
        actual = store.db.cursor().execute(f"DESCRIBE {view}").fetchall()
        described = [(name, _short(kind)) for name, kind, *_ in actual]
        assert described == docs[view], view


def _short(kind: str) -> str:
    return {"TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ"}.get(kind, kind.split("(")[0].split("[")[0])


def test_a_store_from_before_failed_app_gets_it_filled_on_open(data_paths, write_log, tmp_path):
    from fourgent.store.duckdb import DuckDBStore
    from helpers import run_line

    steps = [{"name": "Fetch", "app": "HubSpot", "status": "finished"},
             {"name": "Create", "app": "QuickBooks", "status": "failed", "error": "401"}]
    s = DuckDBStore(data_paths.db_path)
    s.ingest([write_log(tmp_path / "a.jsonl", run_line("f1", status="failed", steps=steps,
                                                         error={"message": "401", "step": 1, "kind": "auth"}),
                         run_line("f2", status="failed", error={"message": "x", "kind": "logic"}),
                         run_line("ok"))])
    # Make it look like a version 1 store: no failed_app column.
    s.db.con.execute("DROP VIEW main.runs; DROP VIEW fg.run_rows; ALTER TABLE fg.runs DROP COLUMN failed_app")
    s.db.con.execute("UPDATE fg.meta SET value = '1' WHERE key = 'schema_version'")
    s.close()
    s = DuckDBStore(data_paths.db_path)
    got = dict(s.db.cursor().execute("SELECT id, failed_app FROM runs").fetchall())
    assert got == {"f1": "QuickBooks", "f2": "QuickBooks", "ok": None}  # f2: no step named, the destination app
    s.close()


def test_a_store_from_before_the_re_trigger_ledger_keeps_its_own_re_triggers_and_demotes_the_rest(
        data_paths, write_log, tmp_path):
    from fourgent.filters import RunFilter
    from fourgent.store.duckdb import DuckDBStore
    from helpers import run_line

    err = {"message": "401", "step": 0, "kind": "auth"}
    s = DuckDBStore(data_paths.db_path)
    s.ingest([write_log(tmp_path / "a.jsonl",
                        run_line("mine", status="failed", error=err),
                        run_line("theirs", status="failed", error=err),
                        # written by our executor before the ledger existed: it carries who and when
                        run_line("mine_rt", retrigger_of="mine", retriggered_by="ana",
                                 retriggered_at="2026-11-20T15:00:00Z", started_at="2026-11-20T15:00:00Z"),
                        run_line("forged", retrigger_of="theirs", started_at="2026-11-20T15:00:00Z"))])
    # Make it look like a version 6 store: lineage straight from the lines, no ledger.
    s.db.con.execute("DROP VIEW main.retriggers; DROP VIEW main.runs; DROP VIEW fg.run_rows; "
                     "DROP VIEW fg.snapshot_rows; UPDATE fg.runs SET retrigger_of = retrigger_claim; "
                     "ALTER TABLE fg.runs DROP COLUMN retrigger_claim; DROP TABLE fg.retriggers; "
                     "UPDATE fg.meta SET value = '6' WHERE key = 'schema_version'")
    s.close()
    s = DuckDBStore(data_paths.db_path)
    cur = s.db.cursor()
    assert cur.execute("SELECT run_id, retrigger_of, retriggered_by FROM retriggers").fetchall() == [
        ("mine_rt", "mine", "ana")]
    lineage = {r[0]: r[1:] for r in cur.execute("SELECT id, retrigger_of, retrigger_claim FROM runs").fetchall()}
    assert lineage["mine_rt"] == ("mine", None) and lineage["forged"] == (None, "theirs")
    assert s.select_ids(RunFilter(unresolved=True)) == ["theirs"]
    s.close()
