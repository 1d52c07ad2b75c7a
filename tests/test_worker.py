"""Ad-hoc SQL in its worker: what an attacker tried against the old in-process guard now touches nothing real,
a crash costs one query, a runaway is killed on time, memory stops at the cap — and the store serves on."""

from __future__ import annotations

import hashlib
import time

import pytest

from fourgent.filters import RunFilter
from fourgent.store import QueryError, QueryFailed, QueryRefused, QueryStopped
from fourgent.store.duckdb import DuckDBStore, worker


@pytest.fixture
def world(store, samples, data_paths):
    store.ingest([samples])
    return store


def digest(store: DuckDBStore) -> str:
    store.db.con.execute("CHECKPOINT")
    return hashlib.sha256(store.path.read_bytes()).hexdigest()


@pytest.mark.parametrize("sql", [
    "WITH x AS (INSERT INTO fg.paused VALUES ('all', now(), 'attacker') RETURNING *) SELECT * FROM x",
    "WITH x AS (INSERT INTO comments VALUES ('r', 'a', 'b', now()) RETURNING *) SELECT * FROM x",
    "EXPLAIN ANALYZE WITH x AS (INSERT INTO fg.retrigger_claims VALUES ('r', now()) RETURNING *) SELECT * FROM x",
    "WITH x AS (DELETE FROM runs RETURNING *) SELECT count(*) FROM x",
    "SELECT * FROM read_text('/etc/passwd')",
    "COPY (SELECT 1) TO '/tmp/evil.jsonl'",
])
def test_a_write_or_a_file_read_in_the_worker_touches_nothing_real(world, sql):
    before, runs = digest(world), world.run_count()
    with pytest.raises((QueryRefused, QueryError, QueryFailed)):
        world.run_sql(sql, max_rows=10, time_limit=5)
    assert digest(world) == before and world.run_count() == runs and world.paused() == {}


def test_a_query_that_crashes_the_engine_costs_that_query_only(world):
    crash = ("SELECT json_contains((SELECT string_agg('[', '') FROM range(200000)) || "
             "(SELECT string_agg(']', '') FROM range(200000)), '1') AS v")
    with pytest.raises(QueryFailed, match="crashed the SQL engine"):
        world.run_sql(crash, max_rows=10, time_limit=5)
    assert world.runs_view(RunFilter()).total == 356  # the dashboard's own database serves on
    assert world.run_sql("SELECT count(*) FROM runs", max_rows=10, time_limit=5).rows == [(356,)]


def test_a_runaway_is_killed_at_its_limit_even_if_it_ignores_the_interrupt(world):
    started = time.perf_counter()
    with pytest.raises(QueryStopped, match="time limit of 1 s"):
        worker.run(world.db.snapshot_dir, "SELECT count(*) FROM range(10000000000000)", time_limit=1,
                   interrupt=False)
    overshoot = time.perf_counter() - started - 1
    assert overshoot <= worker.STARTUP_S + worker.KILL_GRACE_S + 0.5, overshoot


def test_the_time_limit_stops_a_long_query_in_words(world):
    with pytest.raises(QueryStopped, match="time limit of 0.5 s"):
        world.run_sql("SELECT count(*) FROM range(10000000000000)", max_rows=10, time_limit=0.5)


def test_memory_stops_at_the_workers_cap_in_words(world):
    amplify = ("SELECT max(length(s || s || s || s || s || s)) FROM "
               "(SELECT repeat('abcdefghij', 10000) || r::VARCHAR AS s FROM range(3000000) t(r))")
    with pytest.raises((QueryError, QueryFailed), match="(?i)memory"):
        worker.run(world.db.snapshot_dir, amplify, time_limit=20, memory=2 << 30)
    assert world.run_count() == 356


def test_the_snapshot_holds_what_the_views_hold_and_follows_each_ingest(world, tmp_path, write_log):
    from helpers import run_line

    for view in ("runs", "steps", "rejected_lines", "comments"):
        ours = world.db.cursor().execute(f"SELECT count(*) FROM {view}").fetchall()[0][0]
        assert world.run_sql(f"SELECT count(*) FROM {view}", max_rows=10, time_limit=5).rows == [(ours,)], view
    world.ingest([write_log(tmp_path / "more.jsonl", run_line(
        "brand_new_run", status="failed", error={"message": "boom", "step": 0, "kind": "logic"}))])
    assert world.run_sql("SELECT status FROM runs WHERE id = 'brand_new_run'", max_rows=10,
                         time_limit=5).rows == [("failed",)]
    run_id = world.select_ids(RunFilter(), limit=1)[0]
    world.add_comment(run_id, "Ana", "seen")
    assert world.run_sql("SELECT author FROM comments", max_rows=10, time_limit=5).rows == [("Ana",)]


def test_a_store_from_before_snapshots_gets_one_on_open(tmp_path, samples):
    import shutil

    first = DuckDBStore(tmp_path / "s.duckdb")
    first.ingest([samples])
    first.close()
    shutil.rmtree(tmp_path / "s.snapshot")
    again = DuckDBStore(tmp_path / "s.duckdb")
    assert again.run_sql("SELECT count(*) FROM runs", max_rows=10, time_limit=5).rows == [(356,)]
    again.close()


def test_a_missing_snapshot_is_said_in_words(tmp_path):
    with pytest.raises(QueryFailed, match="not written yet"):
        worker.run(tmp_path / "nowhere.snapshot", "SELECT 1", time_limit=5)


@pytest.mark.parametrize("sql", [
    # pattern matching over long generated strings: ran 136 s against a 2 s limit in the old process
    "SELECT count(*) FROM (SELECT repeat('a', 5000) || r::VARCHAR AS s FROM range(1000000) t(r)) "
    "WHERE s LIKE '%a_a_a_a_a_a_a_a_a_a_b%'",
    "SELECT count(*) FROM (SELECT repeat('a', 5000) || r::VARCHAR AS s FROM range(1000000) t(r)) "
    "WHERE s GLOB '*a*a*a*a*a*a*a*a*b'",
    "SELECT count(*) FROM (SELECT repeat('a', 5000) || r::VARCHAR AS s FROM range(1000000) t(r)) "
    "WHERE regexp_matches(s, '(a|aa)*b')",
])
def test_pattern_matching_is_stopped_at_the_limit_while_the_dashboard_serves_another_session(world, sql):
    import threading

    served: list[int] = []
    stop = threading.Event()

    def another_session() -> None:
        while not stop.is_set():
            served.append(world.runs_view(RunFilter(statuses=("failed",))).total)

    reader = threading.Thread(target=another_session)
    reader.start()
    started = time.perf_counter()
    try:
        with pytest.raises(QueryStopped, match="time limit of 1 s"):
            world.run_sql(sql, max_rows=10, time_limit=1)
    finally:
        stop.set()
        reader.join()
    assert time.perf_counter() - started <= 1 + worker.STARTUP_S + worker.KILL_GRACE_S + 0.5
    assert len(served) >= 3 and len(set(served)) == 1  # pages kept answering, the same answer


def test_the_audit_is_read_only_by_an_admins_query(world):
    from fourgent.access import SINGLE_USER
    from fourgent.audit import sign_in

    sign_in(world, SINGLE_USER)
    with pytest.raises(QueryError, match="The audit is for admins"):
        world.run_sql("SELECT count(*) FROM audit", max_rows=10, time_limit=5)
    assert world.run_sql("SELECT count(*) FROM audit", max_rows=10, time_limit=5, with_audit=True).rows == [(1,)]
    assert world.run_sql("SELECT count(*) FROM runs", max_rows=10, time_limit=5).rows == [(356,)]
