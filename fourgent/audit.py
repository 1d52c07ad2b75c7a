"""The one way an action runs: the actor's role is checked, the action done, and the attempt recorded.

Every action that changes something (re-trigger, pause, comment, connection, …) calls `perform`; so a new
action gets the role check and its audit entry by construction. Refused and failed attempts are recorded
too. Entries are only ever added: nothing in the store updates or deletes one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from .access import Action, Actor, Forbidden, require
from .store import AuditEntry, Store

T = TypeVar("T")
MESSAGE_CHARS = 500


def perform(store: Store, actor: Actor, action: Action, target: str | None, do: Callable[[], T], *,
            detail: Mapping[str, Any] | None = None,
            outcome: Callable[[T], Mapping[str, Any]] | None = None) -> T:
    """Check, do, record. `detail` says what was asked (never a secret); `outcome` adds what came of it."""
    asked = dict(detail or {})

    def record(result: str, message: str | None = None, extra: Mapping[str, Any] | None = None) -> None:
        store.record_audit(AuditEntry(datetime.now(UTC), actor.name, actor.role.label, actor.via, action.value,
                                      target, {**asked, **(extra or {})} or None, result,
                                      message[:MESSAGE_CHARS] if message else None))

    try:
        require(actor, action)
    except Forbidden as exc:
        record("refused", str(exc))
        raise
    try:
        done = do()
    except Exception as exc:
        record("failed", f"{type(exc).__name__}: {exc}")
        raise
    record("ok", extra=outcome(done) if outcome else None)
    return done


def sign_in(store: Store, actor: Actor, *, issued: object = None) -> None:
    """`issued`: the ID token's `iat`, which tells this sign-in from the user's others."""
    perform(store, actor, Action.SIGN_IN, None, lambda: None, detail={"issued": issued} if issued else None)


def refused_sign_in(store: Store, name: str) -> None:
    """Someone the provider signed in who has no role here (roles.others = "refuse")."""
    store.record_audit(AuditEntry(datetime.now(UTC), name, "none", "web", Action.SIGN_IN.value, None, None,
                                  "refused", "no role on this dashboard"))
