"""Paused workflows: a paused workflow is not re-triggered. The switch is kept in the store, with who and when."""

from __future__ import annotations

from datetime import datetime

from .filters import RunFilter
from .store import Store


def paused(store: Store) -> dict[str, tuple[datetime, str]]:
    """Paused workflow IDs, each with when and by whom it was paused."""
    return store.paused()


def set_paused(store: Store, workflow_id: str, pause: bool, who: str = "") -> None:
    store.set_paused(workflow_id, pause, who)


def without_paused(store: Store, f: RunFilter) -> tuple[RunFilter | None, list[str]]:
    """The filter narrowed to workflows that are not paused (None when none is left), and the paused ones
    it held: a bulk re-trigger counts and takes only runs it may replay."""
    stopped = store.paused()
    if not stopped:
        return f, []
    every = [wf for wf, _ in store.workflows()] if not f.workflows else []
    return f.without_workflows(list(stopped), every)
