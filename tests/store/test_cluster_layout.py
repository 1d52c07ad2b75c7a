"""The cluster layout of docs/clickhouse.md is the one the code makes, and every statement of it parses."""

from __future__ import annotations

import re

from fourgent.store.clickhouse import rollup
from fourgent.store.clickhouse.cluster import cluster_ddl
from fourgent.store.clickhouse.schema import TABLES
from helpers import ROOT


def test_the_documented_cluster_ddl_is_what_the_code_makes():
    text = (ROOT / "docs" / "clickhouse.md").read_text(encoding="utf-8")
    [block] = re.findall(r"```sql\n(.*?)```", text, flags=re.S)
    assert block.strip() == ";\n\n".join(cluster_ddl()) + ";"


def test_every_table_is_replicated_and_the_sharded_ones_have_a_distributed_table():
    statements = cluster_ddl(cluster="prod", database="runs_db")
    made = {m.group(1): s for s in statements if (m := re.match(r"CREATE TABLE IF NOT EXISTS runs_db\.(\w+)", s))}
    for table in (*TABLES, *rollup.TABLES):
        local = made.get(f"{table}_local") or made[table]
        assert "ON CLUSTER prod" in local and re.search(r"ENGINE = Replicated\w*MergeTree\('/clickhouse/tables/", local)
    assert "Distributed(prod, runs_db, runs_local, cityHash64(coalesce(retrigger_of, retrigger_claim, id)))" in \
        made["runs"]
    assert "{shard}" in made["runs_local"] and "{shard}" not in made["comments"]  # small tables: on every node
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/all/runs_db/paused', '{replica}', changed_at, deleted)" \
        in made["paused"]


def test_every_statement_of_the_layout_parses_in_the_real_engine():
    import chdb

    for statement in cluster_ddl():
        assert "CreateQuery" in str(chdb.query(f"EXPLAIN AST {statement}", "CSV")), statement
