"""Marking failures handled without a replay (a duplicate, a test record, fixed by hand in the app), and undoing it.

A handled run keeps its Failed status; it leaves the unresolved failures and the bulk re-trigger's count. Who,
when and why are kept beside the run (the `handled` view); the audit records both the mark and its undoing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .access import Action, Actor
from .audit import perform
from .store import Handled, Store

MAX_REASON = 500
BULK_CAP = 100_000  # runs one bulk mark takes; the count says when there are more
LISTED = 20  # an audit entry names the runs up to this many


class HandledRejected(ValueError):
    """A mark that cannot be made; the message says why."""


@dataclass
class HandledResult:
    requested: int
    marked: list[str] = field(default_factory=list)

    @property
    def not_marked(self) -> int:
        """Asked for but not marked: not failed (any more), a re-trigger, already handled, or not in the store."""
        return self.requested - len(self.marked)


def _detail(run_ids: Sequence[str], bulk_filter: str | None) -> dict[str, object]:
    detail: dict[str, object] = {"count": len(run_ids)}
    if bulk_filter is not None:
        detail["filter"] = bulk_filter
    if len(run_ids) <= LISTED:
        detail["runs"] = list(run_ids)
    return detail


def mark(store: Store, actor: Actor, run_ids: Sequence[str], reason: str, *,
         bulk_filter: str | None = None) -> HandledResult:
    """Mark failed runs handled as `actor` (an operator's action), with a required reason."""
    reason = " ".join(reason.split())
    if not reason:
        raise HandledRejected("Say why these need no replay (a duplicate, a test record, fixed by hand, …).")
    if len(reason) > MAX_REASON:
        raise HandledRejected(f"The reason is {len(reason):,} characters; the limit is {MAX_REASON:,}.")
    ids = list(dict.fromkeys(run_ids))
    return perform(store, actor, Action.HANDLED, bulk_filter or ", ".join(ids[:3]),
                   lambda: HandledResult(len(ids), store.mark_handled(ids, actor.who, reason)),
                   detail={**_detail(ids, bulk_filter), "reason": reason},
                   outcome=lambda r: {"marked": len(r.marked)})


def unmark(store: Store, actor: Actor, run_ids: Sequence[str]) -> list[str]:
    """Undo marks: the runs are unresolved failures again (unless a re-trigger resolved them meanwhile)."""
    ids = list(dict.fromkeys(run_ids))
    return perform(store, actor, Action.UNHANDLED, ", ".join(ids[:3]), lambda: store.unmark_handled(ids),
                   detail=_detail(ids, None), outcome=lambda r: {"unmarked": len(r)})


def of(store: Store, run_id: str) -> Handled | None:
    return store.handled([run_id]).get(run_id)
