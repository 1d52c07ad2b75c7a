"""Notes people add to runs: stored only in the store, so re-reading logs never touches them."""

from __future__ import annotations

from .store import Comment, RunNotFound, Store

MAX_BODY = 10_000
MAX_AUTHOR = 100


class CommentRejected(ValueError):
    """A comment that cannot be stored; the message says why."""


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
    try:
        return store.add_comment(run_id, author, body)
    except RunNotFound as exc:
        raise CommentRejected(str(exc)) from None


def for_run(store: Store, run_id: str) -> list[Comment]:
    """Newest first."""
    return store.comments(run_id)
