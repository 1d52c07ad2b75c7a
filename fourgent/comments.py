"""Notes people add to runs: stored only in the store, so re-reading logs never touches them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import duckdb

from .store import Store

MAX_BODY = 10_000
MAX_AUTHOR = 100


class CommentRejected(ValueError):
    """A comment that cannot be stored; the message says why."""


@dataclass(frozen=True)
class Comment:
    run_id: str
    author: str
    body: str
    created_at: datetime


def add(store: Store, run_id: str, author: str, body: str) -> Comment:
    author, body = author.strip(), body.strip()
    if not author:
        raise CommentRejected("Say who you are: the author name is empty.")
    if len(author) > MAX_AUTHOR:
        raise CommentRejected(f"The author name is over {MAX_AUTHOR} characters.")
    if not body:
        raise CommentRejected("The comment is empty.")
    if len(body) > MAX_BODY:
        raise CommentRejected(f"The comment is {len(body):,} characters; the limit is {MAX_BODY:,}.")
    with store.transaction() as cur:
        if not cur.execute("SELECT count(*) FROM fg.runs WHERE id = ?", [run_id]).fetchall()[0][0]:
            raise CommentRejected("There is no run with that ID.")
        row = cur.execute(
            "INSERT INTO fg.comments VALUES (?, ?, ?, now()) RETURNING run_id, author, body, created_at",
            [run_id, author, body],
        ).fetchall()[0]
    return Comment(*row)


def for_run(store: Store, run_id: str) -> list[Comment]:
    """Newest first."""
    rows = store.cursor().execute(
        "SELECT run_id, author, body, created_at FROM comments WHERE run_id = ? ORDER BY created_at DESC",
        [run_id],
    ).fetchall()
    return [Comment(*r) for r in rows]


def counts(cur: duckdb.DuckDBPyConnection, run_ids: Iterable[str]) -> dict[str, int]:
    """Comment counts for a page of runs, in one query."""
    ids = list(run_ids)
    if not ids:
        return {}
    rows = cur.execute(
        "SELECT run_id, count(*) FROM comments WHERE run_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY run_id",
        [ids],
    ).fetchall()
    return dict(rows)
