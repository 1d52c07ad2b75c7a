"""What bulk actions, exports and the connections' warnings read, on both engines: the embedded store and its
ClickHouse copy (chDB, in this process) select, leave out and export the same runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from copies import AWKWARD_RUNS
from fourgent.export import EXPORT_COLUMNS
from fourgent.filters import RunFilter
from helpers import run_line

FAILED = RunFilter(statuses=("failed",))


def _futile() -> list[str]:
    """Validation failures whose payload has the field (5, "x", an object), lacks it, holds null or "", and auth
    failures at two apps, started an hour ago."""
    now = datetime.now(UTC) - timedelta(hours=1)
    lines = []
    for i, value in enumerate([5, "x", {"a": 1}, None, "", "MISSING"]):
        payload = {"other": 1} if value == "MISSING" else {"amount": value}
        lines.append(run_line(f"run_val_{i}", status="failed", trigger_payload=payload,
                              started_at=(now + timedelta(seconds=i)).isoformat(),
                              error={"message": "Missing required field 'amount'", "kind": "validation"}))
    for i, app in enumerate(["QuickBooks", "QuickBooks", "Xero"]):
        workflow = {**run_line()["workflow"], "destination_app": app}
        lines.append(run_line(f"run_auth_{i}", status="failed", workflow=workflow,
                              started_at=(now + timedelta(minutes=1, seconds=i)).isoformat(),
                              error={"message": "401 Unauthorized", "kind": "auth"}))
    return [json.dumps(line) for line in lines]


@pytest.fixture
def futile(both, tmp_path):
    embedded, copy = both
    logs = tmp_path / "more"
    logs.mkdir()
    (logs / "futile.jsonl").write_text("\n".join(_futile()) + "\n")
    embedded.ingest([logs])
    _, reader = next(embedded.dump())  # the new runs, copied as migrate copies them
    runs = pa.Table.from_batches(list(reader))
    new = runs.filter(pc.or_(pc.starts_with(runs["id"], "run_val_"), pc.starts_with(runs["id"], "run_auth_")))
    copy.client.insert_arrow("runs", new)
    assert copy.run_count() == embedded.run_count() == AWKWARD_RUNS + 9
    return embedded, copy


def test_a_bulk_leaves_out_what_a_replay_cannot_fix_alike(futile):
    embedded, copy = futile
    for waiting, unfixable in (((), False), (("QuickBooks",), False), ((), True), (("QuickBooks", "Xero"), True)):
        mine = embedded.select_ids(FAILED, waiting_apps=waiting, unfixable=unfixable)
        assert copy.select_ids(FAILED, waiting_apps=waiting, unfixable=unfixable) == mine, (waiting, unfixable)
        assert copy.futile_split(FAILED, waiting) == embedded.futile_split(FAILED, waiting), waiting
    left_out = set(embedded.select_ids(FAILED)) - set(copy.select_ids(FAILED, unfixable=True))
    ours = {r for r in left_out if r.startswith("run_val_")}
    assert ours == {"run_val_3", "run_val_4", "run_val_5"}  # null, "" and no field; 5, "x" and {…} are there
    assert copy.futile_split(FAILED, ("QuickBooks",)) == ({"QuickBooks": 2}, len(left_out))


def test_auth_failures_by_app_are_counted_alike(futile):
    embedded, copy = futile
    theirs = copy.auth_failures_by_app()
    assert theirs == embedded.auth_failures_by_app() and {a: n for a, (n, _) in theirs.items()} == \
        {"QuickBooks": 2, "Xero": 1}


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_an_export_is_the_same_rows_and_columns_on_both(both, order):
    embedded, copy = both
    columns = (*EXPORT_COLUMNS, "latest_retrigger")
    for f, cap in ((RunFilter(), 10_000), (FAILED, 7), (RunFilter(q="acme"), 10_000)):
        mine = pa.Table.from_batches(list(embedded.export_batches(f, columns, cap, order)))
        theirs = pa.Table.from_batches(list(copy.export_batches(f, columns, cap, order)))
        assert theirs.column_names == list(columns)
        assert theirs.to_pylist() == mine.to_pylist(), (f, cap)
    everything = pa.Table.from_batches(list(copy.export_batches(RunFilter(), columns, 10_000, order)))
    assert everything.num_rows == AWKWARD_RUNS
    assert any(v is not None for v in everything["latest_retrigger"].to_pylist())
    with pytest.raises(ValueError, match="not a column"):
        list(copy.export_batches(RunFilter(), ("id", "token_encrypted"), 10, order))
