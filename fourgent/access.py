"""Who may do what: roles, the actions they allow, the acting user, and the mapping of signed-in users to roles.

Every action that changes something goes through `audit.perform`, which checks the actor's role here and
records the attempt, whatever its outcome: the dashboard, the CLI and any later API obey the same rules.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Literal


class Role(IntEnum):
    """Each role may do what the ones below it may."""

    VIEWER = 1  # read every page, Explore, export
    OPERATOR = 2  # also comment, re-trigger, pause and unpause, alert rules (later: edited replay, re-run, cancel)
    ADMIN = 3  # also connections, alert destinations (later: workflow definitions, retention, roles)

    @property
    def label(self) -> str:
        return self.name.lower()


class Action(StrEnum):
    SIGN_IN = "sign-in"
    COMMENT = "comment"
    RETRIGGER = "re-trigger"
    RETRIGGER_BULK = "bulk re-trigger"
    PAUSE = "pause"
    UNPAUSE = "unpause"
    CONNECTION_REPLACE = "connection replaced"
    CONNECTION_TEST = "connection tested"
    DEMO_LOADED = "demo loaded"
    CANCEL = "cancel"
    CANCEL_BULK = "bulk cancel"
    HANDLED = "marked handled"
    UNHANDLED = "unmarked handled"
    ALERT_RULE_SAVE = "alert rule saved"
    ALERT_RULE_DELETE = "alert rule deleted"
    ALERT_DESTINATION_SAVE = "alert destination saved"
    ALERT_DESTINATION_DELETE = "alert destination deleted"
    ALERT_DESTINATION_TEST = "alert destination tested"
    PRUNE = "prune"
    MIGRATE = "migrate"


# The least role each action needs; an action added later gets its line here, and audit.perform does the rest.
MIN_ROLE: Mapping[Action, Role] = {
    Action.SIGN_IN: Role.VIEWER,
    Action.COMMENT: Role.OPERATOR,
    Action.RETRIGGER: Role.OPERATOR,
    Action.RETRIGGER_BULK: Role.OPERATOR,
    Action.PAUSE: Role.OPERATOR,
    Action.UNPAUSE: Role.OPERATOR,
    Action.CONNECTION_REPLACE: Role.ADMIN,
    Action.CONNECTION_TEST: Role.ADMIN,
    Action.DEMO_LOADED: Role.ADMIN,
    Action.CANCEL: Role.OPERATOR,
    Action.CANCEL_BULK: Role.OPERATOR,
    Action.HANDLED: Role.OPERATOR,
    Action.UNHANDLED: Role.OPERATOR,
    # Rules hold no secret and only choose among the destinations an admin set up: the operators who answer
    # the alerts tune them. Destinations hold tokens and passwords, like connections: admins.
    Action.ALERT_RULE_SAVE: Role.OPERATOR,
    Action.ALERT_RULE_DELETE: Role.OPERATOR,
    Action.ALERT_DESTINATION_SAVE: Role.ADMIN,
    Action.ALERT_DESTINATION_DELETE: Role.ADMIN,
    Action.ALERT_DESTINATION_TEST: Role.ADMIN,
    Action.PRUNE: Role.ADMIN,
    Action.MIGRATE: Role.ADMIN,  # it copies every run, comment and ledger row to another server
}

Via = Literal["web", "cli", "single-user", "dashboard"]  # dashboard: the dashboard itself (its retention policy)


@dataclass(frozen=True)
class Actor:
    """The one acting: a signed-in user (their email), the CLI's OS user, or the single user of a dashboard
    without login. Recorded as `who` everywhere: never a name typed into a form."""

    name: str
    role: Role
    via: Via

    @property
    def who(self) -> str:
        """What `re-triggered by`, `paused by` and a comment's author record."""
        return self.name if self.via == "web" else f"{self.name} ({self.via})"

    def may(self, action: Action) -> bool:
        return self.role >= MIN_ROLE[action]


class Forbidden(PermissionError):
    """The actor's role may not do this; the message says which role it takes."""


def require(actor: Actor, action: Action) -> None:
    if not actor.may(action):
        need = MIN_ROLE[action]
        raise Forbidden(f"{actor.who} is a {actor.role.label}: to {action.value} takes the {need.label} role.")


@dataclass(frozen=True)
class RoleMap:
    """Roles from configuration (`[roles]` in .streamlit/secrets.toml): emails, whole domains ("@example.com")
    and OIDC groups per role; the highest match wins. Anyone else signed in gets `others` (None: refused)."""

    admins: frozenset[str] = frozenset()
    operators: frozenset[str] = frozenset()
    viewers: frozenset[str] = frozenset()
    admin_groups: frozenset[str] = frozenset()
    operator_groups: frozenset[str] = frozenset()
    viewer_groups: frozenset[str] = frozenset()
    groups_claim: str = "groups"
    others: Role | None = Role.VIEWER
    problems: tuple[str, ...] = field(default=())  # what the configuration said that was not understood

    @classmethod
    def from_config(cls, config: Mapping[str, object] | None) -> RoleMap:
        config = config or {}
        problems: list[str] = []

        def names(key: str) -> frozenset[str]:
            value = config.get(key, [])
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
                problems.append(f"roles.{key} must be a list of strings")
                return frozenset()
            found = frozenset(v.strip().lower() for v in value if v.strip())
            if not key.endswith("_groups"):
                problems.extend(f'roles.{key}: "{v}" is neither an email nor a domain written "@{v}"'
                                for v in sorted(found) if "@" not in v)
            return found

        others_text = str(config.get("others", "viewer")).strip().lower()
        others: Role | None
        if others_text == "refuse":
            others = None
        elif others_text in {r.label for r in Role}:
            others = Role[others_text.upper()]
        else:
            problems.append(f'roles.others must be "viewer", "operator", "admin" or "refuse", not {others_text!r}')
            others = None  # a typo must not let strangers in
        known = {"admins", "operators", "viewers", "admin_groups", "operator_groups", "viewer_groups",
                 "groups_claim", "others"}
        problems += [f"roles.{k} is not a setting" for k in config if k not in known]
        return cls(names("admins"), names("operators"), names("viewers"), names("admin_groups"),
                   names("operator_groups"), names("viewer_groups"), str(config.get("groups_claim", "groups")),
                   others, tuple(problems))

    def role_for(self, email: str | None, groups: Iterable[str] = ()) -> Role | None:
        """The role of a signed-in user, or None when they may not use the dashboard."""
        address = (email or "").strip().lower()
        domain = "@" + address.rsplit("@", 1)[1] if "@" in address else None
        member = {g.strip().lower() for g in groups}
        for role, people, teams in ((Role.ADMIN, self.admins, self.admin_groups),
                                    (Role.OPERATOR, self.operators, self.operator_groups),
                                    (Role.VIEWER, self.viewers, self.viewer_groups)):
            if address and (address in people or (domain is not None and domain in people)):
                return role
            if member & teams:
                return role
        return self.others if address else None


def cli_actor(as_name: str | None = None) -> Actor:
    """The CLI acts as its OS user, an admin: whoever can run it can read and write the data folder anyway.
    `--as` records another name (marked as the CLI), for scripts run on someone's behalf."""
    return Actor(as_name.strip() if as_name and as_name.strip() else getpass.getuser(), Role.ADMIN, "cli")


SINGLE_USER = Actor("local user", Role.ADMIN, "single-user")
# The running dashboard applying the retention policy once a day: whoever set the policy asked for it.
RETENTION_POLICY = Actor("retention policy", Role.ADMIN, "dashboard")
