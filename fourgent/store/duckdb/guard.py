"""Ad-hoc SQL over the documented surface, with a guard no query can escape.

The dashboard's one DuckDB instance also ingests logs, so it cannot be locked down with
`enable_external_access=false` (that would stop no COPY into the logs folder anyway: DuckDB
allows COPY into an allowed directory). The guard therefore reads each query before it runs, with DuckDB's own
parser (`json_serialize_sql`), and lets through only what it can prove reads the documented
views: one SELECT (or WITH, EXPLAIN, DESCRIBE, SHOW, SUMMARIZE of them), whose every table is
`runs`, `steps`, `rejected_lines`, `comments` or one of its own CTEs, whose only table functions
make numbers (`range`, `generate_series`, `unnest`), and which calls no function in another
schema or that reads settings. Anything the parser cannot serialise is refused, not guessed at.
A timer interrupts the query at its time limit; only the first rows are kept.
"""

from __future__ import annotations

import json
import re
from typing import Any

import duckdb

from ..errors import QueryRefused
from ..records import SURFACE
from .database import Cursor

ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
# Scalar functions that show state outside the surface (settings, the catalog, the session), change
# state (sequences, the random seed, the log), or hand SQL to DuckDB: refused wherever they appear.
# pg_catalog macros and any built-in macro that reads the catalog are added at first use.
REFUSED_FUNCTIONS = frozenset({
    "current_setting", "getvariable", "getenv", "current_schemas", "current_schema", "current_database",
    "current_catalog", "current_query", "current_query_id", "current_connection_id", "current_transaction_id",
    "in_search_path", "get_block_size", "stats", "write_log", "setseed", "nextval", "currval", "setval",
    "json_serialize_sql", "json_deserialize_sql", "json_serialize_plan", "json_execute_serialized_sql",
    "duckdb_api", "parse_duckdb_log_message", "txid_current", "version",
    # Looks a table and index up by name (a string): its errors list fg's tables and indexes.
    "index_key",
    # Trusts length fields inside a blob: 37 crafted bytes asked for gigabytes.
    "variant_bytes_to_variant", "st_geomfromwkb",
    # A scalar range builds its whole list before DuckDB looks at the time limit (26 s past a 1 s limit).
    "range", "generate_series",
    # Cost grows with the product of the two strings' lengths, in one uninterruptible call.
    "levenshtein", "damerau_levenshtein", "editdist3", "jaccard", "jaro_similarity", "jaro_winkler_similarity",
})
# Session facts written without parentheses (`SELECT current_catalog`): a column name to the parser.
REFUSED_KEYWORDS = frozenset({"current_catalog", "current_schema", "current_database", "current_user", "current_role",
                              "session_user", "user", "current_query"})
# Functions whose output can be many times their input. DuckDB folds constant expressions while it plans,
# before any time limit can stop it, so each is bounded where it is written: counts are constants of at
# most SIZE_MAX, what is repeated or put in is a short constant, and none is nested inside another.
AMPLIFIERS = frozenset({"repeat", "lpad", "rpad", "list_resize", "array_resize", "bitstring", "replace",
                        "regexp_replace", "printf", "format"})
COUNT_ARG = {"repeat": 1, "lpad": 1, "rpad": 1, "list_resize": 1, "array_resize": 1, "bitstring": 1}
SIZE_MAX = 10_000
PIECE_MAX = 100  # characters of a constant that is repeated
REPLACEMENT_MAX = 16  # characters replace() may put in for each match: output at most 16x its input
MAX_SQL_CHARS = 100_000
# What a plan may scan: the tables behind the four views, and generated rows.
ALLOWED_SCANS = frozenset({"fg.runs", "fg.rejects", "fg.files", "fg.comments", "fg.handled"})
ALLOWED_LEAVES = frozenset({"SEQ_SCAN", "RANGE", "UNNEST", "DUMMY_SCAN", "COLUMN_DATA_SCAN", "EMPTY_RESULT",
                            "CTE_SCAN", "DELIM_SCAN", "CHUNK_SCAN"})
_EXPLAIN = re.compile(r"^\s*EXPLAIN(\s+ANALYZE)?\s+", re.IGNORECASE)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CATALOG_WORDS = re.compile(r"duckdb_|pragma_|pg_|information_schema|current_|getvariable|read_|glob|query",
                            re.IGNORECASE)
_refused_functions: frozenset[str] | None = None
_view_column_names: frozenset[str] | None = None



def check(con: Cursor, sql: str, leaves: frozenset[str] | None = None) -> None:
    """Refuse, with a plain reason, anything but one statement that reads the documented surface.

    Three layers: the statement's type (DuckDB's parser), its syntax tree (every table, table function
    and function it names, with CTE names resolved by scope), and its plan (every scan in it). `leaves`: what
    a plan may read besides the tables behind the views (the worker's views read the snapshot's files).
    """
    if len(sql) > MAX_SQL_CHARS:
        raise QueryRefused(f"The query is longer than {MAX_SQL_CHARS:,} characters.")
    statements = con.extract_statements(sql)  # a syntax error is DuckDB's to explain: it propagates
    if not statements:
        raise QueryRefused("The query is empty.")
    if len(statements) > 1:
        raise QueryRefused("One statement at a time: remove everything after the first ';'.")
    kind = statements[0].type
    inner = sql
    if kind == duckdb.StatementType.EXPLAIN:
        inner = _EXPLAIN.sub("", sql, count=1)
        if inner == sql or con.extract_statements(inner)[0].type != duckdb.StatementType.SELECT:
            raise QueryRefused("Only EXPLAIN of a query that reads is allowed here.")
    elif kind != duckdb.StatementType.SELECT:
        raise QueryRefused(f"Only queries that read are allowed here; this is a {kind.name} statement.")
    try:
        tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [inner]).fetchall()[0][0])
        if tree.get("error"):
            raise QueryRefused("This query cannot be checked, so it is not run: "
                               + str(tree.get("error_message", "unsupported")))
        _Walk(_refused(con), _view_columns(con)).visit(tree, frozenset())
        _check_plan(con, inner, ALLOWED_LEAVES if leaves is None else leaves)
    except RecursionError:
        raise QueryRefused("This query is nested too deeply to be checked, so it is not run.") from None


def _refused(con: Cursor) -> frozenset[str]:
    """REFUSED_FUNCTIONS, plus pg_catalog's functions and the built-in macros that read the catalog."""
    global _refused_functions
    if _refused_functions is None:
        rows = con.execute("SELECT DISTINCT function_name, schema_name, coalesce(macro_definition, '') "
                           "FROM duckdb_functions() WHERE NOT internal OR function_type LIKE '%macro%' "
                           "OR schema_name = 'pg_catalog'").fetchall()
        extra = {name.lower() for name, schema, body in rows
                 if schema == "pg_catalog" or (body and _CATALOG_WORDS.search(body))}
        _refused_functions = REFUSED_FUNCTIONS | extra
    return _refused_functions


class _Walk:
    """Walks DuckDB's syntax tree, knowing which CTE names are visible where."""

    def __init__(self, refused: frozenset[str], view_columns: frozenset[str]) -> None:
        self.refused = refused
        self.view_columns = view_columns
        self.amplifiers = 0

    def visit(self, node: Any, scope: frozenset[str], sized: bool = False) -> None:
        if isinstance(node, list):
            for item in node:
                self.visit(item, scope, sized)
            return
        if not isinstance(node, dict):
            return
        ctes = (node.get("cte_map") or {}).get("map", [])
        if ctes:
            # A CTE's body sees the CTEs before it (not itself: no recursive CTEs); the query sees them all.
            for entry in ctes:
                self.visit(entry.get("value"), scope, sized)
                scope = scope | {str(entry.get("key", ""))}
        if isinstance(node.get("select_list"), list):
            self._alias_reuse(node["select_list"])
        kind = node.get("type")
        if kind == "BASE_TABLE":
            self._table(node, scope)
        elif kind == "SHOW_REF":
            if node.get("query") is None:  # SHOW TABLES, SHOW <name>: names outside the query's reach
                raise QueryRefused("Only DESCRIBE or SUMMARIZE of a query or of the views runs, steps, "
                                   "rejected_lines and comments is allowed here.")
        elif kind == "TABLE_FUNCTION":
            function = node.get("function") or {}
            name = str(function.get("function_name", "")).lower()
            if name not in ALLOWED_TABLE_FUNCTIONS or function.get("schema") or function.get("catalog"):
                raise QueryRefused(f"The table function {name}() is not allowed here: queries read the views "
                                   "only (no files, URLs or system tables).")
            for key, value in node.items():
                if key != "function":
                    self.visit(value, scope, sized)
            self.visit(function.get("children") or function.get("arguments"), scope, sized)
            return
        elif node.get("class") == "FUNCTION":
            sized = self._function(node, sized)
        elif kind == "COLUMN_REF" and [str(n).lower() for n in node.get("column_names") or []] in (
                [k] for k in REFUSED_KEYWORDS):
            raise QueryRefused(f"{node['column_names'][0]} is not allowed here.")
        for key, value in node.items():
            if key != "cte_map":
                self.visit(value, scope, sized)

    def _alias_reuse(self, select_list: list[Any]) -> None:
        """DuckDB lets a SELECT list use its own aliases, and binds each use by copying the expression:
        a chain of 21 aliases, each doubling the last, took 35 s to plan, deaf to the time limit."""
        aliases = [str(e.get("alias") or "").lower() if isinstance(e, dict) else "" for e in select_list]
        for i, expression in enumerate(select_list):
            others = {a for j, a in enumerate(aliases) if a and j != i} - self.view_columns
            if others and _column_refs(expression) & others:
                raise QueryRefused("A column alias cannot be used again in the same SELECT list here: "
                                   "compute it in a subquery or CTE first.")

    def _table(self, node: dict[str, Any], scope: frozenset[str]) -> None:
        name, schema, catalog = (str(node.get(k) or "") for k in ("table_name", "schema_name", "catalog_name"))
        surface = name.lower() in SURFACE and schema.lower() in ("", "main") and not catalog
        own = name in scope and not schema and not catalog
        if not _IDENTIFIER.match(name) or not (surface or own):
            where = ".".join(p for p in (catalog, schema, name) if p)
            raise QueryRefused(f"Only the views {', '.join(SURFACE)} (and the query's own CTEs) can be read "
                               f"here, not {where}.")

    def _function(self, node: dict[str, Any], sized: bool) -> bool:
        name = str(node.get("function_name", "")).lower()
        if node.get("schema") or node.get("catalog"):
            raise QueryRefused(f"Functions from another schema are not allowed here ({node.get('schema')}.{name}).")
        if name in self.refused:
            raise QueryRefused(f"The function {name}() is not allowed here.")
        if name not in AMPLIFIERS:
            return sized
        if sized:
            raise QueryRefused(f"{name}() cannot be nested inside repeat(), lpad(), replace(), printf() or the like "
                               "here: together they multiply sizes.")
        args = [a.get("expression", a) for a in node.get("arguments") or node.get("children") or []]

        def constant(i: int) -> str | None:
            arg = args[i] if len(args) > i else None
            text = (arg.get("literal") or {}).get("text") if arg and arg.get("class") == "CONSTANT" else None
            return None if text is None else str(text)

        if name in COUNT_ARG:
            count = constant(COUNT_ARG[name])
            if count is None or not count.lstrip("-").isdigit() or int(count) > SIZE_MAX:
                raise QueryRefused(f"{name}() needs a constant length of at most {SIZE_MAX:,} here.")
        self.amplifiers += 1
        if self.amplifiers > 1:  # through an alias or a CTE, one's output can be another's input
            raise QueryRefused("One call of repeat(), lpad(), replace(), printf() or the like per query here: "
                               "chained, they multiply sizes.")
        piece = {"repeat": 0, "list_resize": 2, "array_resize": 2}.get(name)
        if piece is not None and len(args) > piece:
            repeated = constant(piece)
            if repeated is None or len(repeated) > PIECE_MAX:
                raise QueryRefused(f"{name}() here takes a constant of at most {PIECE_MAX} characters as what it "
                                   "repeats.")
        if name in ("replace", "regexp_replace") and len(args) > 2:
            replacement = constant(2)
            if replacement is None or len(replacement) > REPLACEMENT_MAX:
                raise QueryRefused(f"{name}() here takes a constant of at most {REPLACEMENT_MAX} characters as "
                                   "what it puts in.")
        if name in ("printf", "format"):
            pattern = constant(0)
            widths = [int(n) for n in re.findall(r"\d+", pattern or "")]
            nested = pattern is not None and re.search(r"\{[^}]*\{", pattern)
            if pattern is None or "*" in pattern or nested or any(w > SIZE_MAX for w in widths):
                raise QueryRefused(f"{name}() needs a constant format with widths of at most {SIZE_MAX:,} here.")
        return True


def _column_refs(node: Any) -> set[str]:
    """Unqualified column names used in an expression (not inside its subqueries)."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict) and item.get("class") != "SUBQUERY":
            names = item.get("column_names") if item.get("class") == "COLUMN_REF" else None
            if isinstance(names, list) and len(names) == 1:
                found.add(str(names[0]).lower())
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
    return found


def _view_columns(con: Cursor) -> frozenset[str]:
    global _view_column_names
    if _view_column_names is None:
        rows = con.execute("SELECT DISTINCT lower(column_name) FROM duckdb_columns() "
                           "WHERE schema_name = 'main' AND table_name IN (SELECT unnest(?::VARCHAR[]))",
                           [list(SURFACE)]).fetchall()
        _view_column_names = frozenset(r[0] for r in rows)
    return _view_column_names


def _check_plan(con: Cursor, sql: str, leaves: frozenset[str]) -> None:
    """What the plan scans: only the tables behind the views and generated rows (catches what binding adds)."""
    plan = json.loads(con.execute("EXPLAIN (FORMAT json) " + sql).fetchall()[0][1])
    stack = list(plan)
    while stack:
        node = stack.pop()
        children = node.get("children") or []
        stack.extend(children)
        name = str(node.get("name", ""))
        extra = node.get("extra_info") if isinstance(node.get("extra_info"), dict) else {}
        if name == "SEQ_SCAN":
            table = ".".join(p.strip('"') for p in str(extra.get("Table", "")).split(".")[-2:])
            if table not in ALLOWED_SCANS:
                raise QueryRefused(f"The query would read {table}, which is not part of the views.")
        elif not children and name not in leaves:
            raise QueryRefused(f"The query would read {name.lower()}, which is not part of the views.")

