"""Paused workflows: a paused workflow is not re-triggered. The switch is kept in the store, with who and when."""

from __future__ import annotations

from datetime import datetime

from .access import Action, Actor
from .audit import perform
from .filters import RunFilter
from .store import Store


def paused(store: Store) -> dict[str, tuple[datetime, str]]:
    """Paused workflow IDs, each with when and by whom it was paused."""
    return store.paused()


def set_paused(store: Store, actor: Actor, workflow_id: str, pause: bool) -> None:
    """Pause or resume a workflow as `actor` (an operator's action), recorded with who."""
    perform(store, actor, Action.PAUSE if pause else Action.UNPAUSE, workflow_id,
            lambda: store.set_paused(workflow_id, pause, actor.who))


def without_paused(store: Store, f: RunFilter) -> tuple[RunFilter | None, list[str]]:
    """The filter narrowed to workflows that are not paused (None when none is left), and the paused ones
    it held: a bulk re-trigger counts and takes only runs it may replay."""
    stopped = store.paused()
    if not stopped:
        return f, []
    every = [wf for wf, _ in store.workflows()] if not f.workflows else []
    return f.without_workflows(list(stopped), every)
