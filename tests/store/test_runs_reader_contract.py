"""The Runs page's reads, on every engine that has them: the embedded store, and ClickHouse (the real engine,
in this process through chDB) holding a copy of it made as `python -m fourgent migrate --to` makes one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from copies import AWKWARD_RUNS, SAMPLE_REJECTED, embedded_copy_source
from fourgent.filters import RunFilter
from fourgent.overview import Window
from fourgent.spec import STATUSES
from fourgent.store.duckdb import DuckDBStore

FILTERS = [
    RunFilter(), RunFilter(statuses=("failed",)), RunFilter(statuses=("failed", "skipped")),
    RunFilter(workflows=("stripe-payment-xero-invoice",)), RunFilter(q="acme"), RunFilter(q="ACME"),
    RunFilter(q="50%_off\\"), RunFilter(start=datetime(2026, 10, 1, tzinfo=UTC)),
    RunFilter(end=datetime(2026, 10, 15, 12, 30, 0, 250_000, tzinfo=UTC)), RunFilter(unresolved=True),
    RunFilter(kinds=("auth",)), RunFilter(apps=("QuickBooks",)), RunFilter(originals=True),
    RunFilter(resolved=True), RunFilter(kinds=("cancelled",), unresolved=True),
    RunFilter(statuses=("failed",), workflows=("hubspot-closed-won-quickbooks-invoice",), q="deal"),
]


def test_the_runs_view_counts_pages_and_orders_alike(reader):
    view = reader.runs_view(RunFilter(), page=1, size=25)
    assert view.total == view.store_runs == AWKWARD_RUNS and view.rejected_lines == SAMPLE_REJECTED
    assert sum(view.by_status.values()) == AWKWARD_RUNS and set(view.by_status) == set(STATUSES)
    newest = view.rows["started_at"].to_list()
    assert newest == sorted(newest, reverse=True) and len(newest) == 25
    every = [i for p in range(1, 16) for i in reader.page(RunFilter(), page=p, size=25)["id"].to_list()]
    assert len(every) == len(set(every)) == AWKWARD_RUNS  # pages never overlap
    assert reader.select_ids(RunFilter(), limit=10) == every[:10]
    oldest = reader.page(RunFilter(), size=AWKWARD_RUNS, order="oldest")["id"].to_list()
    assert oldest == every[::-1]
    failed = RunFilter(statuses=("failed",))
    assert reader.count(failed) == reader.status_counts(RunFilter())["failed"] == len(reader.select_ids(failed))
    assert reader.daily_counts(RunFilter())["runs"].sum() == AWKWARD_RUNS


def test_an_exact_id_is_found_and_text_is_only_ever_a_parameter(reader):
    some = reader.select_ids(RunFilter(), limit=1)[0]
    assert reader.find_exact(some) and reader.runs_view(RunFilter(q=some)).exact_id == some
    assert reader.count(RunFilter(q=some.upper())) == 1  # the search ignores case
    # Texts that would match every run were they SQL or LIKE wildcards; taken literally, none.
    for text in ("'; DROP TABLE runs; --", "{p0:String}", "run%0", "r_n_", "%%", "\\\\"):
        assert reader.count(RunFilter(q=text)) == 0, text
    for text in ("50%_off\\", "%_O", "\\", "%", "_off", "ΟΔΟΣ-7", "οδοσ", "İSTANBUL"):  # literally, any case
        assert reader.select_ids(RunFilter(q=text)) == [{"ο": "run_awk_2", "Ο": "run_awk_2", "İ": "run_awk_2"}.get(
            text[0], "run_awk_1")], text
    assert reader.run_count() == AWKWARD_RUNS


def test_a_page_carries_its_comments_re_triggers_and_marks(reader):
    failed = reader.select_ids(RunFilter(statuses=("failed",)), limit=3)
    view = reader.runs_view(RunFilter(statuses=("failed",)), size=3)
    assert view.rows["id"].to_list() == failed
    assert view.comment_counts == {failed[0]: 1}
    assert view.marks.get(failed[1]) == "handled"
    latest = reader.latest_retriggers(reader.select_ids(RunFilter(), limit=1000))
    assert latest and set(latest.values()) <= set(STATUSES)  # the samples hold re-triggered originals
    original = sorted(latest)[0]
    assert reader.runs_view(RunFilter(q=original)).retriggers == {original: latest[original]}


def test_a_handled_failure_leaves_the_unresolved_and_counts_as_settled(reader):
    handled = reader.select_ids(RunFilter(statuses=("failed",)), limit=2)[1]
    assert handled not in reader.select_ids(RunFilter(unresolved=True))
    assert handled in reader.select_ids(RunFilter(resolved=True))
    failed, unresolved, settled = (reader.count(RunFilter(statuses=("failed",), originals=True)),
                                   reader.count(RunFilter(unresolved=True)), reader.count(RunFilter(resolved=True)))
    assert unresolved + settled == failed


def test_every_filter_reads_the_same_on_clickhouse_as_on_the_embedded_store(both):
    embedded, copy = both
    for f in FILTERS:
        assert copy.count(f) == embedded.count(f), f
        assert copy.status_counts(f) == embedded.status_counts(f), f
        assert copy.page(f, size=40)["id"].to_list() == embedded.page(f, size=40)["id"].to_list(), f
        assert copy.page(f, page=2, size=40, order="oldest")["id"].to_list() == \
            embedded.page(f, page=2, size=40, order="oldest")["id"].to_list(), f
    assert sum(copy.count(RunFilter(workflows=(w,))) for w, _ in copy.workflows()) == AWKWARD_RUNS
    assert copy.workflows() == embedded.workflows()
    assert copy.rejected()["reason"].to_list() == embedded.rejected()["reason"].to_list()


def test_a_page_and_the_day_counts_are_the_same_frames_on_both(both):
    """Every column and type, not only the IDs: durations and days from microsecond instants included."""
    embedded, copy = both
    for f in (RunFilter(), RunFilter(statuses=("failed",)), RunFilter(q="run_awk")):
        mine, theirs = embedded.page(f, size=400), copy.page(f, size=400)
        assert theirs.schema == mine.schema, f
        assert theirs.equals(mine), f
        assert copy.daily_counts(f).equals(embedded.daily_counts(f)), f
    ids = embedded.select_ids(RunFilter(), limit=1000)
    assert copy.latest_retriggers(ids) == embedded.latest_retriggers(ids)
    assert copy.comment_counts(ids) == embedded.comment_counts(ids)
    mine_view, their_view = embedded.runs_view(RunFilter(statuses=("failed",)), size=100), \
        copy.runs_view(RunFilter(statuses=("failed",)), size=100)
    assert (their_view.total, their_view.by_status, their_view.marks, their_view.rejected_lines) == \
        (mine_view.total, mine_view.by_status, mine_view.marks, mine_view.rejected_lines)


def test_an_error_pattern_of_the_overview_opens_the_same_failures_on_both(both):
    embedded, copy = both
    patterns = embedded.overview(Window(datetime(2026, 1, 1, tzinfo=UTC),
                                        datetime(2027, 1, 1, tzinfo=UTC))).top_errors["pattern"].to_list()
    assert len(patterns) >= 3
    for pattern in patterns:
        n = embedded.count(RunFilter(error=pattern))
        assert n > 0 and copy.count(RunFilter(error=pattern)) == n, pattern


def test_a_copy_holds_every_row_and_a_second_copy_is_refused(both, tmp_path):
    embedded, copy = both
    assert copy.counts() == embedded.table_counts()
    assert copy.counts()["runs"] == AWKWARD_RUNS and copy.counts()["rejects"] == SAMPLE_REJECTED
    with pytest.raises(ValueError, match="already holds 359 runs"):
        copy.load(embedded.dump())
    assert copy.counts()["comments"] == 1


def test_a_copy_carries_pauses_claims_connections_still_encrypted_the_audit_and_alert_state(both):
    embedded, copy = both
    assert copy.paused() == embedded.paused() and list(copy.paused()) == ["stripe-payment-xero-invoice"]
    rows = copy.connection_rows()
    assert rows == embedded.connection_rows() and [r.refused for r in rows] == [True, False]
    assert copy.connection("QuickBooks") == embedded.connection("QuickBooks")
    assert rows[0].token_encrypted and "qb-secret-token" not in rows[0].token_encrypted  # never decrypted on the way
    assert copy.connection("Nowhere") is None
    claims = dict(embedded.db.cursor().execute("SELECT run_id, owner FROM fg.retrigger_claims").fetchall())
    assert copy.claimed() == claims and len(claims) == 1
    for filters in ({}, {"actor": "ANA"}, {"action": "pause"}, {"outcome": "ok"},
                    {"since": datetime(2026, 11, 1, 9, 1, 0, 123_456, tzinfo=UTC)}, {"limit": 1}):
        assert copy.audit_entries(**filters) == embedded.audit_entries(**filters), filters
    assert [e.detail for e in copy.audit_entries()] == [{"n": 2, "why": "ΟΔΟΣ"}, {"n": 1, "why": "ΟΔΟΣ"},
                                                        {"n": 0, "why": "ΟΔΟΣ"}]
    assert copy.alert_rules() == embedded.alert_rules() and [r.name for r in copy.alert_rules()] == ["auth", "quiet"]
    assert copy.alert_destinations() == embedded.alert_destinations()
    assert copy.alert_destination("ops") == embedded.alert_destination("ops") is not None
    assert copy.alert_history() == embedded.alert_history() and len(copy.alert_history()) == 3
    assert copy.open_alert_episodes() == embedded.open_alert_episodes()
    assert copy.pending_alerts() == embedded.pending_alerts() and len(copy.pending_alerts()) == 2
    some = embedded.select_ids(RunFilter(statuses=("failed",)), limit=1)[0]
    assert copy.comments(some) == embedded.comments(some) and len(copy.comments(some)) == 1


def test_a_later_snapshot_inserted_after_the_copy_replaces_the_earlier_one(both):
    """The ReplacingMergeTree keeps the latest snapshot by `seq`, whichever part it arrived in."""
    import pyarrow as pa
    import pyarrow.compute as pc

    embedded, copy = both
    some = copy.select_ids(RunFilter(statuses=("failed",)), limit=1)[0]
    table, reader = next(embedded.dump())
    assert table == "runs"
    runs = pa.Table.from_batches(list(reader))
    row = runs.filter(pc.equal(runs["id"], some))
    later = row.set_column(row.schema.get_field_index("status"), "status", pa.array(["finished"]))
    later = later.set_column(later.schema.get_field_index("seq"), "seq",
                             pa.array([row["seq"][0].as_py() + 10_000], pa.uint64()))
    copy.client.insert_arrow("runs", later)
    assert copy.run_count() == AWKWARD_RUNS
    assert some not in copy.select_ids(RunFilter(statuses=("failed",)))
    assert some in copy.select_ids(RunFilter(statuses=("finished",)))
    copy.client.insert_arrow("runs", row)  # an earlier snapshot arriving late changes nothing
    assert some in copy.select_ids(RunFilter(statuses=("finished",)))


def test_the_side_by_side_bench_times_every_read_on_both_engines_over_oneclickhouse_copy(tmp_path, samples, capsys):
    from fourgent.store.clickhouse.bench import side_by_side, suite

    embedded_copy_source(tmp_path, samples).close()
    summary = side_by_side(tmp_path, repeat=1)
    queries = summary["queries"]
    assert isinstance(queries, list)
    embedded = DuckDBStore(tmp_path / "store.duckdb", read_only=True)
    try:
        assert [q["query"] for q in queries] == list(suite(embedded))
    finally:
        embedded.close()
    assert all(q["duckdb_ms"] > 0 and q["clickhouse_ms"] > 0 for q in queries)
    assert summary["runs"] == AWKWARD_RUNS and summary["copy_runs_per_s"]
    again = side_by_side(tmp_path, repeat=1)  # the copy is kept: a second run only times
    assert again["copy_s"] is None
    import clickhouse_connect

    raw = clickhouse_connect.get_client(dsn=f"chdb://{tmp_path / 'clickhouse'}")
    raw.command("INSERT INTO fourgent.meta (key, value) VALUES ('schema_version', '0')")
    raw.close()
    assert side_by_side(tmp_path, repeat=1)["copy_s"]  # a copy of another schema version is made again
    assert "Copying 359 runs" in capsys.readouterr().out


def test_the_side_by_side_bench_ingests_the_same_logs_into_clickhouse_and_checks_the_counts(tmp_path, samples, capsys):
    import shutil

    from fourgent.store.clickhouse.bench import side_by_side

    logs = tmp_path / "logs-356"
    shutil.copytree(samples, logs)
    embedded = DuckDBStore(tmp_path / "store.duckdb")
    embedded.ingest([logs], logs_dir=logs)
    embedded.close()
    summary = side_by_side(tmp_path, repeat=1)
    assert isinstance(summary["ingest_runs_per_s"], int) and summary["ingest_runs_per_s"] > 0
    assert summary["copy_s"] and not (tmp_path / "clickhouse-ingest").exists()  # one chDB folder at a time
    assert "Ingest: 369 lines in" in capsys.readouterr().out


def test_the_scaled_bench_grows_a_copy_to_n_times_each_status_lineage_and_unresolved_failure(tmp_path, samples, capsys):
    from fourgent.store.clickhouse import ClickHouseStore
    from fourgent.store.clickhouse.bench import scaled, side_by_side

    embedded_copy_source(tmp_path, samples).close()
    side_by_side(tmp_path, repeat=1)
    summary = scaled(tmp_path, 3, repeat=1)
    assert summary["runs"] == 3 * AWKWARD_RUNS and summary["grow_s"]
    queries = summary["queries"]
    assert isinstance(queries, list) and queries and all(q["clickhouse_ms"] > 0 for q in queries)
    assert all(q["recorded_ms"] for q in queries)  # beside the side-by-side run's figures for the copy as it is
    assert scaled(tmp_path, 3, repeat=1)["grow_s"] is None  # a grown copy of that size is timed, not grown again
    embedded = DuckDBStore(tmp_path / "store.duckdb", read_only=True)
    grown = ClickHouseStore(f"chdb://{tmp_path / 'clickhouse-x3'}")
    try:
        assert grown.status_counts(RunFilter()) == {s: 3 * n for s, n in embedded.status_counts(RunFilter()).items()}
        # Lineage is kept within each copy (its re-triggers and their ledger rows suffixed alike), so a copy's
        # failure is resolved exactly when its original is.
        unresolved = embedded.count(RunFilter(unresolved=True))
        assert unresolved and grown.count(RunFilter(unresolved=True)) == 3 * unresolved
        first = embedded.page(RunFilter(), size=1, order="oldest")["started_at"][0]
        last = embedded.page(RunFilter(), size=1)["started_at"][0]
        everything = Window(first - timedelta(days=1), last + timedelta(days=1))
        assert grown.rollups_current()
        want, got = embedded.overview(everything).now, grown.overview(everything).now
        assert (got.runs, got.failed, got.ended, got.unresolved, got.retriggers) == (
            3 * want.runs, 3 * want.failed, 3 * want.ended, 3 * want.unresolved, 3 * want.retriggers)
        assert want.retriggers and got.median_ms == want.median_ms  # a copy's durations are its original's
    finally:
        grown.close()
        embedded.close()
    assert "Grown in" in capsys.readouterr().out
