"""Paused workflows: a paused workflow is not re-triggered. The switch is kept in the store, with who and when."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from . import queries as Q
from .store import Store


def paused(store: Store) -> dict[str, tuple[datetime, str]]:
    """Paused workflow IDs, each with when and by whom it was paused."""
    rows = store.cursor().execute("SELECT workflow_id, paused_at, paused_by FROM fg.paused").fetchall()
    return {wf: (at, by) for wf, at, by in rows}


def set_paused(store: Store, workflow_id: str, pause: bool, who: str = "") -> None:
    with store.transaction() as cur:
        if pause:
            cur.execute("INSERT INTO fg.paused VALUES (?, now(), ?) ON CONFLICT DO NOTHING", [workflow_id, who])
        else:
            cur.execute("DELETE FROM fg.paused WHERE workflow_id = ?", [workflow_id])


def without_paused(store: Store, f: Q.RunFilter) -> tuple[Q.RunFilter | None, list[str]]:
    """The filter narrowed to workflows that are not paused (None when none is left), and the paused ones
    it held: a bulk re-trigger counts and takes only runs it may replay."""
    stopped = paused(store)
    if not stopped:
        return f, []
    scope = f.workflows or tuple(wf for wf, _ in Q.workflows(store.cursor()))
    held = [wf for wf in scope if wf in stopped]
    active = tuple(wf for wf in scope if wf not in stopped)
    return (replace(f, workflows=active) if active else None), held
