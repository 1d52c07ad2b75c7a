"""The store's tables on a ClickHouse cluster: Replicated engines, and Distributed tables over the sharded ones.

Made from the same DDL as the single-server tables (schema.py, rollup.py), so the two cannot drift; docs/clickhouse.md
prints it and a test checks the two agree and that every statement parses. The layout:

- `runs` is sharded by the run's lineage root (the original it re-triggers, else itself): every snapshot of a run,
  and every re-trigger of an original, land on one shard, so FINAL and the "resolved by a later re-trigger" rule
  hold shard by shard. Each shard keeps replicas of its part (ReplicatedReplacingMergeTree), and `runs` is the
  Distributed table over `runs_local`.
- The rollups are sharded alike and computed by each shard from its own runs (their refresh runs per shard).
- Everything else (comments, handled marks, re-triggers, claims, pauses, connections, the audit, alerts, rejected
  lines) is small and is replicated to every node, not sharded, so a shard's query reads it locally.

Reads through the Distributed tables need `distributed_product_mode = 'local'` in the users' profile: a subquery
over `runs` (the re-triggers of the runs on a page) then reads the shard's own `runs_local`, which holds them.
"""

from __future__ import annotations

import re

from . import prune, rollup
from .schema import TABLES

# The sharding key of each sharded table; re-triggers carry their original in `retrigger_of` (the ledger's
# lineage) or in `retrigger_claim` (a line's word), and every snapshot of a run carries the same.
SHARDED = {"runs": "cityHash64(coalesce(retrigger_of, retrigger_claim, id))",
           **{table: "rand()" for table in rollup.TABLES}}
ENGINE = re.compile(r"ENGINE = (\w*MergeTree)(?:\(([^)]*)\))?")
CREATE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+) \(")


def _replicated(ddl: str, table: str, local: str, database: str, cluster: str, sharded: bool) -> str:
    path = (f"/clickhouse/tables/{{shard}}/{database}/{local}" if sharded
            else f"/clickhouse/tables/all/{database}/{table}")

    def engine(m: re.Match[str]) -> str:
        args = ", ".join(a for a in (f"'{path}'", "'{replica}'", m.group(2)) if a)
        return f"ENGINE = Replicated{m.group(1)}({args})"

    ddl = CREATE.sub(f"CREATE TABLE IF NOT EXISTS {database}.{local} ON CLUSTER {cluster} (", ddl.strip(), count=1)
    return ENGINE.sub(engine, ddl, count=1)


def cluster_ddl(cluster: str = "fourgent", database: str = "fourgent") -> list[str]:
    """The statements that make the store on `cluster`, in order."""
    statements = [f"CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {cluster}"]
    for table, ddl in (*TABLES.items(), *rollup.TABLES.items(), ("meta", prune.META_DDL)):
        sharded = table in SHARDED
        local = f"{table}_local" if sharded else table
        statements.append(_replicated(ddl, table, local, database, cluster, sharded))
        if sharded:
            statements.append(f"CREATE TABLE IF NOT EXISTS {database}.{table} ON CLUSTER {cluster} AS "
                              f"{database}.{local} ENGINE = Distributed({cluster}, {database}, {local}, "
                              f"{SHARDED[table]})")
    return statements
