"""The Runs page's queries: each filter narrows as the page promises, pages never overlap."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fourgent.filters import RunFilter
from fourgent.store.duckdb import runs as runs_sql
from helpers import record_as_ours, run_line


@pytest.fixture
def loaded(store, samples):
    store.ingest([samples])
    return store.db.cursor()


def ids(frame):
    return frame["id"].to_list()


def test_reference_or_id_search_is_case_insensitive_over_both(store, tmp_path, write_log):
    write_log(tmp_path / "a.jsonl", run_line("run_ABC", reference="Müller GmbH – Deal 50%_off"),
              run_line("run_xyz", reference="Other"), run_line("run_none", reference=None))
    store.ingest([tmp_path / "a.jsonl"])
    cur = store.db.cursor()
    assert ids(runs_sql.page(cur, RunFilter(q="müller"))) == ["run_ABC"]
    assert ids(runs_sql.page(cur, RunFilter(q="MÜLLER gmbh"))) == ["run_ABC"]
    assert ids(runs_sql.page(cur, RunFilter(q="abc"))) == ["run_ABC"]  # the ID, in another case
    assert ids(runs_sql.page(cur, RunFilter(q="50%_"))) == ["run_ABC"]  # % and _ are text, not wildcards
    assert ids(runs_sql.page(cur, RunFilter(q="5_%"))) == []
    assert ids(runs_sql.page(cur, RunFilter(q="'; DROP TABLE x; --"))) == []
    assert sorted(ids(runs_sql.page(cur, RunFilter(q="run_")))) == ["run_ABC", "run_none", "run_xyz"]


def test_status_workflow_and_range_filters_match_an_independent_count(loaded):
    f = RunFilter(statuses=("failed", "skipped"), workflows=("stripe-payment-xero-invoice",),
                    start=datetime(2026, 8, 1, tzinfo=UTC), end=datetime(2026, 10, 1, tzinfo=UTC))
    expected = loaded.execute(
        "SELECT count(*) FROM runs WHERE status IN ('failed', 'skipped') AND workflow_id = "
        "'stripe-payment-xero-invoice' AND started_at >= '2026-08-01T00:00:00Z' AND started_at < '2026-10-01T00:00:00Z'"
    ).fetchall()[0][0]
    assert expected > 0
    assert runs_sql.count(loaded, f) == expected
    frame = runs_sql.page(loaded, f, size=100)
    assert frame.height == expected
    assert set(frame["status"]) <= {"failed", "skipped"}


def test_pages_are_disjoint_and_ordered(loaded):
    f = RunFilter()
    first, second = runs_sql.page(loaded, f, page=1, size=25), runs_sql.page(loaded, f, page=2, size=25)
    assert not set(ids(first)) & set(ids(second))
    started = first["started_at"].to_list() + second["started_at"].to_list()
    assert started == sorted(started, reverse=True)
    oldest = runs_sql.page(loaded, f, size=5, order="oldest")["started_at"].to_list()
    assert oldest == sorted(oldest)
    all_pages = [i for p in range(1, 9) for i in ids(runs_sql.page(loaded, f, page=p, size=50))]
    assert len(all_pages) == len(set(all_pages)) == 356


def test_status_counts_ignore_the_status_filter_itself(loaded):
    counts = runs_sql.status_counts(loaded, RunFilter(statuses=("failed",)))
    assert counts == {"finished": 291, "failed": 28, "running": 4, "pending": 3, "skipped": 30}
    assert sum(counts.values()) == 356


def test_unknown_status_values_are_ignored_not_sent_to_sql(loaded):
    assert runs_sql.count(loaded, RunFilter(statuses=("failed", "bogus"))) == 28


def test_unresolved_failures_are_failed_originals_whose_latest_retrigger_did_not_finish(store, tmp_path, write_log):
    err = {"message": "boom", "step": 0, "kind": "logic"}
    lines = (run_line("never", status="failed", error=err),
             run_line("fixed", status="failed", error=err),
             run_line("fixed_rt", status="finished", retrigger_of="fixed", started_at="2026-11-21T10:00:00Z"),
             run_line("again", status="failed", error=err),
             run_line("again_rt1", status="finished", retrigger_of="again", started_at="2026-11-21T10:00:00Z"),
             run_line("again_rt2", status="failed", error=err, retrigger_of="again",
                      started_at="2026-11-22T10:00:00Z"),
             run_line("ok", status="finished"))
    record_as_ours(store, *lines)
    store.ingest([write_log(tmp_path / "a.jsonl", *lines)])
    found = runs_sql.select_ids(store.db.cursor(), RunFilter(unresolved=True))
    assert sorted(found) == ["again", "never"]  # "again": its latest re-trigger failed
    assert runs_sql.status_counts(store.db.cursor(), RunFilter(unresolved=True))["failed"] == 2
