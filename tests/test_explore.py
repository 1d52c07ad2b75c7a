"""The Explore guard, tested as an attacker would: nothing but reads of the documented views ever runs.

Each refused query leaves the store and the data folder exactly as they were, never reaches DuckDB
as a query (only DuckDB's parser sees it), and says why in plain words.
"""

from __future__ import annotations

import json
import threading
import time

import duckdb
import pytest

from fourgent import export, results
from fourgent.connections import Connections
from fourgent.filters import RunFilter
from fourgent.store import errors
from fourgent.store.duckdb import adhoc, examples, guard
from fourgent.store.duckdb import runs as runs_sql
from helpers import load_demo

SECRET = "tok-live-very-secret-4242"
CANARY = "canary-file-content-7731"


@pytest.fixture
def world(store, samples, data_paths, tmp_path, monkeypatch):
    monkeypatch.delenv("FOURGENT_SECRET_KEY", raising=False)
    store.ingest([samples])
    Connections(store, data_paths.data_dir / "secret.key").save("QuickBooks", "http://q", SECRET)
    canary = tmp_path / "canary.txt"
    canary.write_text(CANARY)
    return store, data_paths, tmp_path, canary


class Spy:
    """A connection that records what would have run: the guard may only ask DuckDB's parser."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con, self.ran = con, []

    def extract_statements(self, sql):
        return self.con.extract_statements(sql)

    def execute(self, sql, params=None):
        if sql != "SELECT json_serialize_sql(?)" and "FROM duckdb_functions()" not in sql \
                and "FROM duckdb_columns()" not in sql:
            self.ran.append(sql)  # EXPLAIN counts: binding a query can already read a file
        return self.con.execute(sql, params)

    def sql(self, sql, *args, **kwargs):
        self.ran.append(sql)
        return self.con.sql(sql, *args, **kwargs)

    def interrupt(self):
        self.con.interrupt()


def fingerprint(store, data_dir) -> tuple:
    cur = store.db.cursor()
    state = cur.execute("""SELECT (SELECT count(*) FROM fg.runs), (SELECT sum(hash(id || status)) FROM fg.runs),
                                  (SELECT count(*) FROM fg.comments), (SELECT count(*) FROM fg.connections),
                                  (SELECT string_agg(key || '=' || value, ',' ORDER BY key) FROM fg.meta),
                                  (SELECT string_agg(table_name, ',' ORDER BY table_name) FROM duckdb_tables()),
                                  (SELECT string_agg(database_name, ',') FROM duckdb_databases())""").fetchall()[0]
    settings = cur.execute("SELECT value FROM duckdb_settings() WHERE name IN ('threads', 'memory_limit', "
                           "'enable_external_access', 'search_path') ORDER BY name").fetchall()
    files = sorted((str(p.relative_to(data_dir)), p.stat().st_size) for p in data_dir.rglob("*")
                   if p.is_file() and not p.name.endswith(".wal"))
    return state, tuple(settings), tuple(files)


REFUSED = [
    "INSERT INTO fg.comments VALUES ('run_01000000000', 'x', 'y', now())",
    "UPDATE fg.runs SET status = 'finished'",
    "DELETE FROM fg.runs",
    "CREATE TABLE t AS SELECT 1",
    "CREATE VIEW v AS SELECT 1",
    "DROP VIEW runs",
    "ALTER TABLE fg.runs ADD COLUMN x INTEGER",
    "COPY (SELECT * FROM runs) TO '{logs}/evil.jsonl'",
    "COPY fg.runs FROM '{canary}'",
    "ATTACH '{tmp}/other.duckdb' AS other",
    "DETACH fourgent",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET threads = 1",
    "RESET threads",
    "SET search_path = 'fg'",
    "USE fg",
    "PRAGMA database_size",
    "EXPORT DATABASE '{tmp}/export'",
    "IMPORT DATABASE '{tmp}/export'",
    "CALL pragma_version()",
    "CHECKPOINT",
    "VACUUM",
    "PREPARE q AS SELECT 1",
    "SELECT 1; DELETE FROM fg.runs",
    "SELECT 1 -- ;\n; DROP TABLE fg.runs",
    "/* a comment */ delete from fg.runs",
    "SELECT * FROM read_text('{canary}')",
    "SELECT * FROM read_blob('{canary}')",
    "SELECT * FROM read_csv('{canary}')",
    "SELECT * FROM read_json('{canary}')",
    "SELECT * FROM read_parquet('{canary}')",
    "SELECT * FROM sniff_csv('{canary}')",
    "SELECT * FROM glob('{tmp}/*')",
    "SELECT * FROM '{canary}'",
    "SELECT * FROM 'https://example.com/runs.csv'",
    "SELECT * FROM fg.connections",
    "SELECT * FROM fg.runs",
    "SELECT * FROM fourgent.main.runs",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM pragma_table_info('fg.connections')",
    "SELECT * FROM query('SELECT * FROM fg.connections')",
    "SHOW TABLES",
    "SHOW ALL TABLES",
    "DESCRIBE fg.connections",
    "SUMMARIZE fg.connections",
    "WITH x AS (SELECT * FROM fg.connections) SELECT * FROM x",
    "SELECT * FROM runs WHERE id IN (SELECT token_encrypted FROM fg.connections)",
    "SELECT (SELECT max(token_hint) FROM fg.connections) AS t",
    "SELECT current_setting('temp_directory')",
    "SELECT fg.ts(1)",
    "EXPLAIN SELECT * FROM read_text('{canary}')",
    "EXPLAIN ANALYZE SELECT * FROM fg.connections",
    "EXPLAIN COPY (SELECT 1) TO '{logs}/evil.jsonl'",
    "SELECT * FROM (PIVOT runs ON status USING count(*))",  # cannot be checked, so not run
    # Found by an independent red-team review (all were accepted before it):
    # a CTE name trusted outside its scope, resolved by DuckDB as a file (glob class makes it ".csv") ...
    "SELECT * FROM (WITH \"{canary_glob}\" AS (SELECT 1) SELECT 1) x, '{canary_glob}'",
    "SELECT * FROM (WITH \"{tmp}/*\" AS (SELECT 1) SELECT 1) x, '{tmp}/*'",
    # ... or as a system view, from a sibling CTE, or from a scalar subquery
    "SELECT name, sql FROM (WITH sqlite_master AS (SELECT 1) SELECT 1) x, sqlite_master",
    "SELECT name, setting FROM (WITH pg_settings AS (SELECT 1) SELECT 1) x, pg_settings",
    "WITH a AS (SELECT * FROM duckdb_databases), duckdb_databases AS (SELECT 1) SELECT path FROM a",
    "SELECT (SELECT max(path) FROM duckdb_databases) FROM (WITH duckdb_databases AS (SELECT 1) SELECT 1) y",
    "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
    # SHOW forms naming things outside the views
    "SHOW TABLES FROM fg",
    "SHOW __show_tables_expanded",
    "SHOW \"\"\"fg\"\".\"\"connections\"\"\"",
    # built-in macros and metadata functions that read the catalog or change state
    "SELECT pg_get_viewdef(i) d FROM range(0, 2000) t(i) WHERE d IS NOT NULL",
    "SELECT pg_get_constraintdef(i) FROM range(0, 10) t(i)",
    "SELECT get_block_size('fourgent')",
    "SELECT in_search_path('fourgent', 'fg')",
    "SELECT current_schemas(true)",
    "SELECT stats(status) FROM runs",
    "SELECT write_log('x')",
    "SELECT setseed(0.5)",
    # work that ignores the time and memory limits
    "SELECT len(range(1000000000))",
    "SELECT len(list_sort(generate_series(200000000), 'DESC'))",
    "SELECT [repeat('x', 1000000) FOR x IN [1, 2]]",
    "SELECT repeat(repeat('x', 10000), 10000)",
    "SELECT repeat('x', length(id) * 100000) FROM runs",
    # round two of the red team: a table named in a string, a binary decoder, constants folded while planning
    "SELECT index_key({{'table': 'connectionz', 'schema': 'fg'}}, 'x', 'k')",
    "SELECT variant_bytes_to_variant('\\x11\\x00\\x02\\x00\\xff'::BLOB)::VARCHAR",
    "SELECT length(printf('%01500000000d', 1))",
    "SELECT printf('%*d', 1000000000, 1)",
    "SELECT format('{{:>1000000000}}', 1)",
    "SELECT format('{{:{{}}}}', 1, 1000000000)",
    "SELECT format(status, 1) FROM runs",
    "SELECT length(bitstring('1', 1000000000))",
    "SELECT levenshtein(repeat('a', 1000), repeat('b', 1000))",
    "SELECT length(replace(repeat('x', 10000), 'x', repeat('y', 10000)))",
    "SELECT replace(error_message, 'a', error_message) FROM runs",
    "SELECT regexp_replace(error_message, '.', error_message, 'g') FROM runs",
    "SELECT repeat(error_message, 10000) FROM runs",
    "SELECT list_resize([], 10000, error_message) FROM runs",
    "SELECT current_catalog",
    "SELECT user, current_schema",
    "SELECT " + "+".join(["1"] * 400),
    "SELECT 1" + " " * 100_000,
    # round three: chains through aliases and CTEs, a binder that copies aliased expressions
    "SELECT length(a3) AS n FROM (SELECT 'x' AS a0, a0 || a0 AS a1, a1 || a1 AS a2, a2 || a2 AS a3)",
    "SELECT length(c) FROM (SELECT repeat('x', 10000) AS a, replace(a, 'x', 'yy') AS b)",
    "WITH a AS (SELECT repeat('x', 10000) AS s) SELECT length(replace(s, 'x', 'yy')) FROM a",
    "SELECT len(list_transform(list_resize([1], 10000, 1), lambda x: list_resize([1], 10000, 1)))",
    "SELECT replace(error_message, 'a', repeat('b', 17)) FROM runs",
    "SELECT replace(error_message, 'a', 'bbbbbbbbbbbbbbbbb') FROM runs",
    "",
    "   ;  ",
]


@pytest.mark.parametrize("template", REFUSED)
def test_refused_and_nothing_changed_read_or_written(world, template):
    store, paths, tmp, canary = world
    canary_glob = str(canary)[:-1] + f"[.csv?{str(canary)[-1]}]"  # matches the canary, looks like a CSV
    sql = template.format(logs=paths.logs_dir, canary=canary, tmp=tmp, canary_glob=canary_glob)
    before = fingerprint(store, paths.data_dir)
    spy = Spy(store.db.cursor())
    with pytest.raises(errors.QueryRefused) as refused:
        adhoc.run(spy, sql)
    assert spy.ran == []  # only DuckDB's parser saw it
    message = str(refused.value)
    assert message and CANARY not in message and SECRET not in message and "Traceback" not in message
    assert fingerprint(store, paths.data_dir) == before
    assert not (paths.logs_dir / "evil.jsonl").exists() and not (tmp / "other.duckdb").exists()


@pytest.mark.parametrize("sql, rows", [
    ("SELECT count(*) AS n FROM runs", 1),
    ("FROM comments", 0),
    ("WITH f AS (SELECT * FROM runs WHERE status = 'failed') SELECT workflow, count(*) FROM f GROUP BY ALL", 6),
    ("SELECT r.id, s.name FROM runs r JOIN steps s ON s.run_id = r.id LIMIT 5", 5),
    ("DESCRIBE runs", None),
    ("SUMMARIZE steps", None),
    ("EXPLAIN SELECT * FROM runs", None),
    ("SELECT * FROM range(3)", 3),
    ("SELECT * FROM rejected_lines", 8),
    ("VALUES (1, 'a'), (2, 'b')", 2),
])
def test_reads_of_the_documented_views_run(world, sql, rows):
    store = world[0]
    result = adhoc.run(store.db.cursor(), sql)
    assert rows is None and result.total > 0 or result.total == rows


def test_kept_rows_stop_at_a_byte_cap_too(world):
    result = adhoc.run(world[0].db.cursor(), "SELECT repeat('x', 10000) AS s FROM range(10000)")
    assert result.total == 10_000 and result.capped
    assert result.frame.estimated_size() <= adhoc.MAX_BYTES + (10_000 * 2_048)  # at most one batch past the cap


def test_a_query_past_its_time_limit_is_stopped_with_a_plain_message(world):
    store = world[0]
    cur = store.db.cursor()
    started = time.perf_counter()
    with pytest.raises(errors.QueryStopped, match="time limit of 0.5 s"):
        adhoc.run(cur, "SELECT count(*) FROM range(1000000000000)", time_limit=0.5)
    assert time.perf_counter() - started < 5
    assert adhoc.run(cur, "SELECT count(*) FROM runs").rows == [(356,)]  # the cursor still works


def test_rows_beyond_the_cap_are_counted_not_kept(world):
    result = adhoc.run(world[0].db.cursor(), "SELECT * FROM range(25000)", max_rows=1000)
    assert result.frame.height == 1000 and result.total == 25000 and result.capped


def test_a_bad_query_gives_duckdbs_own_error(world):
    with pytest.raises(errors.QueryError, match='Binder Error: Referenced column "nope" not found'):
        adhoc.run(world[0].db.cursor(), "SELECT nope FROM runs")


def test_intervals_come_back_as_text(world):
    result = adhoc.run(world[0].db.cursor(), "SELECT INTERVAL 90 MINUTE AS a, INTERVAL 2 DAY AS b")
    assert result.rows == [("01:30:00", "2 days 00:00:00")]


def test_results_of_any_type_come_back_readable_in_every_output(world):
    result = adhoc.run(world[0].db.cursor(), """
        SELECT r.id, s.run_id AS id, [INTERVAL 1 DAY] AS l, {'a': INTERVAL 1 DAY} AS st, MAP {1: INTERVAL 1 DAY} AS m,
               union_value(k := 1) AS u, 'infinity'::TIMESTAMP AS t, '-infinity'::DATE AS d,
               'infinity'::TIMESTAMPTZ AS tz, 'ab'::BLOB AS b, '101'::BIT AS bits, TIMETZ '12:00:00+02' AS tt,
               TIME '12:30' AS tm, [r.started_at] AS times, [1, 2] AS nums, {'n': 1} AS rec
        FROM runs r JOIN steps s ON s.run_id = r.id ORDER BY r.id LIMIT 2""")
    assert result.columns[:2] == ["id", "id (2)"] and result.frame.height == 2
    row = dict(zip(result.columns, result.rows[0], strict=True))
    assert (row["t"], row["d"], row["tz"], row["b"], row["bits"]) == ("infinity", "-infinity", "infinity", "ab", "101")
    assert row["l"] == "[1 day]" and row["u"] == "1" and row["nums"] == [1, 2] and row["rec"] == {"n": 1}
    assert row["tm"].isoformat() == "12:30:00"
    as_json = json.loads(results.as_json(result))
    assert as_json[0]["tm"] == "12:30:00" and as_json[0]["t"] == "infinity"
    assert "infinity" in results.as_table(result) and "infinity" in results.as_csv(result)


@pytest.mark.parametrize("sql", ["SELECT MAP {[1]: 2} AS m", "SELECT MAP {{'x': 1}: 2} AS m",
                                 "SELECT MAP {1.5::DECIMAL(4,1): 2} AS m", "SELECT {} AS s", "SELECT [{}] AS l",
                                 "SELECT 1 AS a, 2 AS \"a (2)\", 3 AS a"])
def test_awkward_results_are_readable_in_every_output_and_the_parquet_download(world, sql):
    import io

    result = adhoc.run(world[0].db.cursor(), sql)
    assert len(set(result.columns)) == len(result.columns)
    json.loads(results.as_json(result))
    assert results.as_table(result) and results.as_csv(result) and export.frame_csv(result.frame)
    result.frame.write_parquet(io.BytesIO())


def test_an_alias_reused_where_a_view_has_that_column_still_runs(world):
    result = adhoc.run(world[0].db.cursor(), "SELECT upper(status) AS status, status AS s FROM runs LIMIT 1")
    assert result.rows[0][0] == result.rows[0][1].upper()


def test_the_time_limit_covers_the_check_too(world, monkeypatch):
    slow_check = guard.check

    def check(con, sql, leaves=None):
        time.sleep(0.6)  # as planning a heavy constant would
        slow_check(con, sql, leaves)

    monkeypatch.setattr(guard, "check", check)
    with pytest.raises(errors.QueryStopped):
        adhoc.run(world[0].db.cursor(), "SELECT 1", time_limit=0.5)


def test_cli_csv_neutralises_formulas_like_the_download(world):
    result = adhoc.run(world[0].db.cursor(), "SELECT '=HYPERLINK(\"http://x\")' AS \"=cmd\", '-2+3' AS n")
    assert results.as_csv(result).splitlines() == ["'=cmd,n", "\"'=HYPERLINK(\"\"http://x\"\")\",'-2+3"]


def test_every_example_runs_and_returns_rows_on_the_demo_data(store, tmp_path):
    load_demo(store, tmp_path / "logs", 3000)
    for title, sql in examples.EXAMPLES.items():
        assert adhoc.run(store.db.cursor(), sql).total > 0, title


def test_the_csv_download_neutralises_formulas_and_keeps_nested_values_as_json():
    import polars as pl

    frame = pl.DataFrame({"=cmd": ["=HYPERLINK(\"x\")", "+1", "ok"], "n": [1, 2, 3],
                          "j": [[1, 2], [3], []]})
    text = export.frame_csv(frame).decode()
    assert text.splitlines()[0] == "'=cmd,n,j"
    assert "'=HYPERLINK" in text and "'+1" in text and '"[1, 2]"' in text


def test_the_schema_browser_reads_every_view_from_the_docs():
    from helpers import ROOT

    docs = results.schema_docs(ROOT / "docs" / "schema.md")
    assert set(docs) == {"runs", "steps", "rejected_lines", "comments", "retriggers", "handled", "audit", "alerts"}
    assert docs["runs"][8][:2] == ("status", "VARCHAR") and all(meaning for _, _, meaning in docs["runs"])


def test_a_long_query_does_not_hold_up_other_queries(world):
    store = world[0]
    stopped = []

    def long() -> None:
        try:
            adhoc.run(store.db.cursor(), "SELECT count(*) FROM range(1000000000000)", time_limit=4)
        except errors.QueryStopped:
            stopped.append(True)

    worker = threading.Thread(target=long)
    worker.start()
    time.sleep(0.3)

    started = time.perf_counter()
    view = runs_sql.runs_view(store.db.cursor(), RunFilter(statuses=("failed",)))
    assert view.total == 28 and time.perf_counter() - started < 2
    worker.join()
    assert stopped == [True]


def test_a_query_over_the_memory_limit_fails_with_duckdbs_message_and_the_store_serves_on(tmp_path, samples):
    from fourgent.store.duckdb import DuckDBStore

    store = DuckDBStore(tmp_path / "small.duckdb", memory_limit="64MB")
    store.ingest([samples])
    with pytest.raises(errors.QueryError, match="Out of Memory Error"):
        adhoc.run(store.db.cursor(), "SELECT list(i) FROM range(200000000) t(i)")
    assert adhoc.run(store.db.cursor(), "SELECT count(*) FROM runs").rows == [(356,)]
    store.close()
