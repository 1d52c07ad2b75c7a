"""Explore on ClickHouse, tested as an attacker would: only reads of the documented views run, under limits the
engine enforces itself, and nothing outside the views (the connections, any file, URL, other table or database, any
system table) is ever read, not even into an error message."""

from __future__ import annotations

import pytest

from fourgent.store import QueryError, QueryRefused, QueryStopped

CANARY = "canary-file-content-5519"

REFUSED = [
    "INSERT INTO runs SELECT * FROM runs",
    "INSERT INTO fourgent.comments VALUES ('r', 'a', 'b', now64())",
    "ALTER TABLE fourgent.runs DELETE WHERE 1",
    "DELETE FROM fourgent.runs WHERE 1",
    "TRUNCATE TABLE fourgent.runs",
    "DROP TABLE fourgent.runs",
    "CREATE TABLE t (a Int32) ENGINE = Memory",
    "CREATE VIEW v AS SELECT * FROM fourgent.connections",
    "OPTIMIZE TABLE fourgent.runs FINAL",
    "SYSTEM DROP MARK CACHE",
    "KILL QUERY WHERE 1",
    "SET readonly = 0",
    "SET max_execution_time = 0",
    "USE fourgent",
    "SHOW TABLES FROM fourgent",
    "DESCRIBE TABLE fourgent.connections",
    "EXISTS TABLE fourgent.connections",
    "EXPLAIN SELECT * FROM fourgent.connections",
    "SELECT * FROM fourgent.connections",
    "SELECT * FROM `fourgent`.`connections`",
    "SELECT * FROM fourgent.runs",
    "SELECT * FROM runs WHERE id IN (SELECT token_encrypted FROM fourgent.connections)",
    "SELECT (SELECT max(token_encrypted) FROM fourgent.connections) AS t",
    "WITH x AS (SELECT * FROM fourgent.connections) SELECT * FROM x",
    "SELECT * FROM system.tables",
    "SELECT * FROM system.one",
    "SELECT * FROM INFORMATION_SCHEMA.tables",
    "SELECT * FROM information_schema.columns",
    "SELECT 1; SELECT token_encrypted FROM fourgent.connections",
    "SELECT 1 -- ;\n; SELECT token_encrypted FROM fourgent.connections",
    "SELECT file('{canary}')",
    "SELECT * FROM file('{canary}', 'LineAsString')",
    "SELECT * FROM url('http://127.0.0.1:9/x', 'LineAsString')",
    "SELECT * FROM s3('http://127.0.0.1:9/b/x.csv')",
    "SELECT * FROM remote('127.0.0.1', fourgent.connections)",
    "SELECT * FROM merge('fourgent', 'conn')",
    "SELECT * FROM merge(REGEXP('four'), 'conn')",
    "SELECT * FROM view(SELECT * FROM fourgent.connections)",
    "SELECT * FROM numbers(10)",
    "SELECT * FROM generateRandom('a String') LIMIT 1",
    "SELECT * FROM executable('cat {canary}', 'LineAsString', 'a String')",
    "SELECT * FROM input('a String')",
    "SELECT * FROM runs, file('{canary}', 'LineAsString')",
    "SELECT dictGet('d', 'x', 1)",
    "SELECT joinGet('fourgent.connections', 'token_encrypted', 'QuickBooks')",
    "SELECT getSetting('max_execution_time')",
    "SELECT * FROM audit",  # an admin's only
    "SELECT count() FROM runs SETTINGS max_execution_time = 0",
    "",
    "  ;  ",
]


@pytest.fixture
def explored(both, tmp_path):
    embedded, copy = both
    canary = tmp_path / "canary.txt"
    canary.write_text(CANARY)
    token = copy.connection("QuickBooks")[1]
    return embedded, copy, canary, token


@pytest.mark.parametrize("template", REFUSED)
def test_refused_and_nothing_outside_the_views_read_or_anything_written(explored, template):
    embedded, copy, canary, token = explored
    before = copy.counts()
    with pytest.raises((QueryRefused, QueryError)) as refused:
        copy.run_sql(template.format(canary=canary), max_rows=100, time_limit=5.0)
    said = str(refused.value)
    assert said and token not in said and CANARY not in said, said
    assert copy.counts() == before


@pytest.mark.parametrize("view", ["runs", "steps", "rejected_lines", "comments", "retriggers", "handled", "alerts"])
def test_each_view_reads_as_many_rows_as_on_the_embedded_store(explored, view):
    embedded, copy, _, _ = explored
    theirs = copy.run_sql(f"SELECT count() AS n FROM {view}", max_rows=10, time_limit=10.0)
    mine = embedded.run_sql(f"SELECT count(*) AS n FROM {view}", max_rows=10, time_limit=10.0)
    assert theirs.frame["n"][0] == mine.frame["n"][0] and (view in ("handled", "comments") or mine.frame["n"][0] > 0)
    assert [c for c, _ in copy.describe(view)] == [c for c, _ in embedded.describe(view)]


def test_the_audit_is_read_by_an_admins_query_only(explored):
    _, copy, _, _ = explored
    assert copy.run_sql("SELECT action FROM audit", max_rows=10, time_limit=5.0, with_audit=True).frame.height == 3


def test_the_engine_stops_a_query_past_its_time_limit_and_over_its_memory(explored):
    _, copy, _, _ = explored
    with pytest.raises(QueryStopped, match="time limit of 1 s"):
        copy.run_sql("SELECT count() FROM runs a, runs b, runs c, runs d", max_rows=10, time_limit=1.0)
    with pytest.raises(QueryError, match="memory limit"):
        copy.run_sql("SELECT groupArray(repeat(id, 100000)) FROM runs a, runs b", max_rows=10, time_limit=20.0)
    assert copy.run_sql("SELECT count() AS n FROM runs", max_rows=10, time_limit=5.0).frame["n"][0] > 0  # serves on


def test_rows_past_the_cap_are_not_kept(explored):
    _, copy, _, _ = explored
    result = copy.run_sql("SELECT id FROM runs ORDER BY id", max_rows=25, time_limit=5.0)
    assert result.frame.height == 25 and result.total > 25
    assert result.frame["id"].to_list() == sorted(result.frame["id"].to_list())


def test_a_cte_a_union_and_a_join_of_views_run(explored):
    _, copy, _, _ = explored
    sql = ("WITH failed AS (SELECT id FROM runs WHERE status = 'failed') "
           "SELECT count() AS n FROM failed f JOIN steps s ON s.run_id = f.id UNION ALL SELECT count() FROM comments")
    assert copy.run_sql(sql, max_rows=10, time_limit=10.0).frame.height == 2
    with pytest.raises(QueryError, match="Syntax error"):
        copy.run_sql("SELEC 1", max_rows=10, time_limit=5.0)
