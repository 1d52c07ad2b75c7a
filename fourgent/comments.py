"""Notes people add to runs: stored only in the store, so re-reading logs never touches them."""

from __future__ import annotations

from .access import Action, Actor
from .audit import perform
from .store import Comment, RunNotFound, Store

MAX_BODY = 10_000


class CommentRejected(ValueError):
    """A comment that cannot be stored; the message says why."""


def add(store: Store, actor: Actor, run_id: str, body: str) -> Comment:
    """A note on a run, its author the acting user (never a typed name); an operator's action."""
    body = body.strip()
    if not body:
        raise CommentRejected("The comment is empty.")
    if len(body) > MAX_BODY:
        raise CommentRejected(f"The comment is {len(body):,} characters; the limit is {MAX_BODY:,}.")

    def do() -> Comment:
        try:
            return store.add_comment(run_id, actor.who, body)
        except RunNotFound as exc:
            raise CommentRejected(str(exc)) from None

    return perform(store, actor, Action.COMMENT, run_id, do, detail={"characters": len(body)})


def for_run(store: Store, run_id: str) -> list[Comment]:
    """Newest first."""
    return store.comments(run_id)
