"""Ad-hoc SQL on ClickHouse (Explore, `python -m fourgent sql`): the limits are the engine's own, on a session of its
own that cannot change them.

A query's text is first given to the server as a bound value (`formatQuerySingleLine`): one statement back, or a
refusal, never a text of several. It runs on a separate session whose current database holds only the documented
views (`<database>_sql`), set `readonly = 1` after its limits (`max_execution_time`, `max_memory_usage`,
`max_result_rows` with `result_overflow_mode = 'break'`), so neither a statement nor a SETTINGS clause can write or
lift them. Before it runs, the server's own parser (`EXPLAIN AST`) says what the statement names: one SELECT whose
tables are unqualified (a view of that database, or the query's own CTE), no table function (`file`, `url`, `merge`,
`numbers`…), and no function that reads outside the views (`file`, dictionaries, Join tables). chDB (one process, no
users) is guarded by that check and those settings; a server adds the read-only user docs/clickhouse.md gives.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import polars as pl

from ..errors import QueryError, QueryRefused, QueryStopped
from ..records import SURFACE, SqlResult
from .ledger import DETAIL_SQL, EPISODES_SQL, STEP_COLUMNS, STEPS_FROM
from .sql import RUNS, live_runs

ADMIN_ONLY = ("audit",)
MEMORY_BYTES = 2 << 30  # a query's memory, past which ClickHouse stops it with its own message
# Functions that read outside the views: files, models, dictionaries, Join tables, the server's configuration.
READS_OUTSIDE = frozenset({"file", "catboostevaluate", "joinget", "joingetornull", "dictget", "dictgetordefault",
                           "dictgetornull", "dicthas", "dictgethierarchy", "dictisin", "dictgetchildren",
                           "dictgetdescendants", "getmacro", "getserversetting", "getmergetreesetting",
                           "filesystemavailable", "filesystemcapacity", "filesystemunreserved", "getsetting"})
FUNCTION = re.compile(r"^( *)Function (\S+)")
TABLE = re.compile(r"^ *TableIdentifier (.+?)(?: \(alias .*\))?$")
# What a statement of ad-hoc SQL may begin with, after white space and comments: this engine's parser reads a text
# such as "DELETE FROM runs" as a SELECT of a column named DELETE, so the AST alone would let it by (harmless, it
# reads, but the person asked for a write and is owed the words that say it is not done here).
LEADING_COMMENTS = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.S)
READ_START = re.compile(r"(?:SELECT|WITH)\b|\(", re.I)
EXAMPLES = {
    "Failures per workflow, last 7 days": (
        "SELECT workflow, count() AS failed FROM runs\n"
        "WHERE status = 'failed' AND started_at >= now() - INTERVAL 7 DAY\nGROUP BY workflow ORDER BY failed DESC"),
    "Slowest steps": ("SELECT name, app, quantile(0.95)(duration_ms) AS p95_ms, count() AS steps FROM steps\n"
                      "GROUP BY name, app ORDER BY p95_ms DESC LIMIT 20"),
    "Most common errors": ("SELECT error_message, count() AS n FROM runs WHERE status = 'failed'\n"
                           "GROUP BY error_message ORDER BY n DESC LIMIT 20"),
}


def sql_database(database: str) -> str:
    """The database that holds the documented views only: ad-hoc SQL's current database."""
    return f"{database}_sql"


def views(database: str) -> list[str]:
    """The documented views, in sql_database(database), over the tables of `database` (their latest versions)."""
    d, v = f"`{database}`", f"`{sql_database(database)}`"
    return [
        f"CREATE OR REPLACE VIEW {v}.runs AS SELECT * EXCEPT (source_file, source_line) FROM ({DETAIL_SQL})"
        .replace(RUNS, live_runs(database)),
        f"CREATE OR REPLACE VIEW {v}.steps AS SELECT id AS run_id, {STEP_COLUMNS} FROM {live_runs(database)} "
        f"{STEPS_FROM}",
        f"CREATE OR REPLACE VIEW {v}.rejected_lines AS SELECT file, line, reason, raw, ingested_at "
        f"FROM {d}.rejects FINAL",
        f"CREATE OR REPLACE VIEW {v}.comments AS SELECT run_id, author, body, created_at FROM {d}.comments",
        f"""CREATE OR REPLACE VIEW {v}.retriggers AS SELECT run_id, retrigger_of, retriggered_by, retriggered_at, mode,
            from_step, payload_diff FROM {d}.retriggers FINAL""",
        f"CREATE OR REPLACE VIEW {v}.handled AS SELECT run_id, handled_by, handled_at, reason FROM {d}.handled FINAL",
        f"""CREATE OR REPLACE VIEW {v}.audit AS SELECT entry, acted_at, actor, role, via, action, target, detail,
            outcome, message FROM {d}.audit""",
        f"""CREATE OR REPLACE VIEW {v}.alerts AS SELECT episode, rule_id, rule_name AS rule, kind, fired_at,
            resolved_at,
            if(resolved_at IS NULL, 'firing', 'resolved') AS state, summary, runs, query, fired_by, checked_at,
            nullIf(destination, '') AS destination, nullIf(fired_delivery, '') AS fired_delivery,
            nullIf(resolved_delivery, '') AS resolved_delivery
            FROM ({EPISODES_SQL.replace("alert_episodes", f"{d}.alert_episodes")
                   .replace("alert_deliveries", f"{d}.alert_deliveries")})""",
    ]


def check(ast: str, *, with_audit: bool) -> None:
    """Refuse, in words, what the parsed statement (EXPLAIN AST's text) names beyond the views."""
    lines = ast.splitlines()
    if not lines or not lines[0].startswith("SelectWithUnionQuery"):
        raise QueryRefused("Only a SELECT (or WITH … SELECT) over the documented views runs here.")
    for i, line in enumerate(lines):
        if line.strip() == "Set":
            raise QueryRefused("A query cannot change its settings here: the limits are fixed.")
        if (m := TABLE.match(line)) is not None:
            name = m.group(1)
            if "." in name:
                raise QueryRefused(f"Only the documented views can be read ({', '.join(SURFACE)}), not {name}.")
            if name in ADMIN_ONLY and not with_audit:
                raise QueryRefused("The audit view is for admins.")
        if (f := FUNCTION.match(line)) is not None:
            indent, name = f.groups()
            if name.lower() in READS_OUTSIDE:
                raise QueryRefused(f"{name}() reads outside the documented views: it does not run here.")
            if i and lines[i - 1].strip().startswith("TableExpression") and len(indent) > \
                    len(lines[i - 1]) - len(lines[i - 1].lstrip()):
                raise QueryRefused(f"Table functions ({name}) do not run here: read the documented views.")


class Explorer:
    """The read-only sessions ad-hoc SQL runs on, one per set of limits, made once each."""

    def __init__(self, connect: Any, database: str) -> None:
        self._connect = connect  # a function: a new client on `database`
        self.database = database
        self._sessions: dict[tuple[int, float], Any] = {}
        self._lock = threading.Lock()
        # A server runs one query of a session at a time: queries of one set of limits take turns.
        self._turns: dict[tuple[int, float], threading.Lock] = {}

    def _session(self, max_rows: int, time_limit: float) -> Any:
        key = (max_rows, time_limit)
        with self._lock:
            if key not in self._sessions:
                client = self._connect(self.database)
                for name, value in (("max_execution_time", time_limit), ("max_memory_usage", MEMORY_BYTES),
                                    ("max_result_rows", max_rows + 1), ("result_overflow_mode", "'break'"),
                                    ("readonly", 1)):  # readonly last: after it nothing can be set
                    client.command(f"SET {name} = {value}")
                self._sessions[key] = client
                self._turns[key] = threading.Lock()
            return self._sessions[key]

    def run(self, sql: str, *, max_rows: int, time_limit: float, with_audit: bool = False) -> SqlResult:
        client = self._session(max_rows, time_limit)
        with self._turns[(max_rows, time_limit)]:
            return self._run(client, sql, max_rows=max_rows, time_limit=time_limit, with_audit=with_audit)

    def _run(self, client: Any, sql: str, *, max_rows: int, time_limit: float, with_audit: bool) -> SqlResult:
        started = time.perf_counter()
        if not sql.strip().rstrip(";").strip():
            raise QueryRefused("There is no statement to run.")
        try:
            # The text goes to the server as a bound value, never as a statement: chDB runs every statement of a
            # text sent to it, so "SELECT 1; SELECT … FROM connections" must never be sent. formatQuery parses
            # exactly one statement (or says why not) and gives it back in canonical form, comments gone: that
            # form is what is checked and what runs.
            asked = sql
            sql = client.query("SELECT formatQuerySingleLine({q:String})", parameters={"q": sql}).result_rows[0][0]
            ast = client.query("EXPLAIN AST " + sql).result_rows
        except Exception as exc:  # noqa: BLE001 - the parser's words: a syntax error, several statements
            if "Multi-statements are not allowed" in str(exc):
                raise QueryRefused("One statement at a time: run each on its own.") from None
            raise QueryError(_words(exc)) from None
        if not READ_START.match(asked, LEADING_COMMENTS.match(asked).end()):  # type: ignore[union-attr]
            raise QueryRefused("Only a SELECT (or WITH … SELECT) over the documented views runs here.")
        check("\n".join(r[0] for r in ast), with_audit=with_audit)
        try:
            table = client.query_arrow(sql)
        except Exception as exc:  # noqa: BLE001 - ClickHouse's own words, never a traceback
            if "TIMEOUT_EXCEEDED" in str(exc):
                raise QueryStopped(f"The query was stopped after its time limit of {time_limit:g} s. "
                                   "Narrow it (a WHERE on started_at, a LIMIT) and run it again.") from None
            raise QueryError(_words(exc)) from None
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return SqlResult(frame.head(max_rows), frame.height, time.perf_counter() - started)

    def describe(self, view: str) -> list[tuple[str, str]]:
        if view not in SURFACE:
            raise ValueError(f"{view} is not one of the documented views")
        client = self._session(1000, 5.0)
        with self._turns[(1000, 5.0)]:
            return [(r[0], r[1]) for r in client.query(f"DESCRIBE TABLE {view}").result_rows]

    def close(self) -> None:
        for client in self._sessions.values():
            client.close()
        self._sessions.clear()


def _words(exc: Exception) -> str:
    """ClickHouse's message without the driver's wrapping or the server's stack trace."""
    text = str(exc)
    found = re.search(r"(Code: \d+\. DB::Exception: .*?)(?: \(version|\n|$)", text, flags=re.S)
    return (found.group(1) if found else text.splitlines()[0] if text else type(exc).__name__)[:500]
