"""Paused workflows: a paused workflow is not re-triggered. The switch is kept in the store, with who and when."""

from __future__ import annotations

from datetime import datetime

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
