"""Failure alerts: rules over the runs, each episode fired once and resolved once, its messages sent through Apprise.

A rule's condition is a Runs page query (filters.RunsQuery) and a count the store gives for it (`count`,
`unresolved_count`, `page`), so the link an alert carries opens exactly the runs it counted. An episode opens
when the condition starts holding and closes when it stops; the store opens one only when none is open and
the rule's cooldown has passed, in one transaction under its write lock, and queues the episode's message in
that same transaction ("pending"). Senders then deliver what is pending, off the page's thread, retried
(tenacity), and record "delivered" or "undelivered". The dashboard checks on a background tick (`start_ticker`),
so alerts come while nobody watches; `python -m fourgent alerts check` checks and sends when nothing holds the
store, and otherwise reports what the dashboard found without sending (the dashboard sends).

Apprise delivers: one well-kept library for Slack, Teams, Discord, email, generic JSON webhooks and some hundred
other services, each named by a URL (json://host/path, mailto://user:pass@host, slack://…), so no client is
written here. Those URLs often hold tokens and passwords: they are stored encrypted (Fernet, the key outside the
store, as connections are), shown only masked, and never put in the audit, a message or a log.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import apprise
from cryptography.fernet import Fernet, InvalidToken
from tenacity import Retrying, retry_if_exception_type, retry_if_result, stop_after_attempt, wait_exponential

from .access import Action, Actor
from .audit import perform
from .config import Paths
from .connections import load_key
from .filters import FIRST_DAY, MAX_APP, RunFilter, RunsQuery, runs_query
from .spec import ENDED_STATUSES, ERROR_KINDS
from .store import AlertDelivery, AlertEpisode, AlertRule, Store, is_open, snapshot_sql

if TYPE_CHECKING:
    from .workspace import Workspace

KINDS: Mapping[str, str] = {
    "failure_rate": "Failure rate of a workflow above a threshold",
    "consecutive": "Consecutive failures of a workflow",
    "error_kind": "Any failure of an error kind",
    "app": "Any failure at an app",
    "stuck": "A run running or pending too long",
    "unresolved": "Unresolved failures above a number",
}
NEEDS_WORKFLOW = frozenset({"failure_rate", "consecutive"})  # "of a workflow": one workflow each
WINDOWED = frozenset({"failure_rate", "error_kind", "app"})
PUBLIC_URL_ENV = "FOURGENT_PUBLIC_URL"  # the dashboard's address as people reach it, for the links in messages
TICK_ENV = "FOURGENT_ALERT_TICK"  # seconds between the dashboard's checks; 0 turns them off
TICK_S = 15.0
ATTEMPTS = 3  # per message, before it is recorded as undelivered
RETRY_WAIT_S = 1.0  # the first wait between attempts; doubling
CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 3.0, 5.0  # per attempt: a slow receiver costs a sender thread this, never a page
SENDERS = 4  # threads delivering at once
MAX_NAME = 100
MAX_WINDOW_MINUTES = 30 * 24 * 60
MAX_COOLDOWN_MINUTES = 7 * 24 * 60
MAX_COUNT = 100_000
# Services whose URL's host is a server's name (shown masked), not a token as in slack://T/B/C or discord://ID/TOKEN.
HOSTED_SCHEMES = frozenset({"json", "jsons", "form", "forms", "xml", "xmls", "mailto", "mailtos"})
STREAK_SPANS = (timedelta(hours=1), timedelta(days=1))
SINCE_EVER = datetime.combine(FIRST_DAY, time.min, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")

log = logging.getLogger(__name__)
# Apprise's own log lines can quote a destination's URL (its token, its password): they go nowhere.
_apprise_log = logging.getLogger("apprise")
_apprise_log.addHandler(logging.NullHandler())
_apprise_log.propagate = False


class RuleRejected(ValueError):
    """A rule that cannot be saved, in words."""


class DestinationRejected(ValueError):
    """A destination that cannot be saved or read, in words; the message never contains its URL."""


# ---------------------------------------------------------------- conditions

@dataclass(frozen=True)
class Condition:
    """A rule's condition at one moment: whether it holds, the runs behind it and their count, in words."""

    holds: bool
    runs: int  # how many runs `query` opens
    summary: str
    query: RunsQuery


def _span(minutes: float) -> str:
    m = int(minutes)
    if m % 1440 == 0:
        return f"{m // 1440} d"
    if m % 60 == 0:
        return f"{m // 60} h"
    return f"{m} min"


def _runs(n: int) -> str:
    return f"{n:,} run{'s' if n != 1 else ''}"


def condition(store: Store, rule: AlertRule, now: datetime, names: Mapping[str, str] | None = None) -> Condition:
    """Evaluate one rule at `now`. Every count is the store's count of the query the alert links to."""
    names = names or {}
    wf = (rule.workflow_id,) if rule.workflow_id else ()
    of = f" of {names.get(rule.workflow_id, rule.workflow_id)}" if rule.workflow_id else ""
    since = now - timedelta(minutes=rule.window_minutes)
    window = _span(rule.window_minutes)

    def counted(query: RunsQuery) -> int:
        return store.count(query.filter(now, UTC_ZONE))

    if rule.kind == "failure_rate":
        query = runs_query(since, now, statuses=("failed",), workflows=wf)
        failed = counted(query)
        ended = counted(replace(query, statuses=ENDED_STATUSES))
        rate = failed / ended if ended else 0.0
        holds = ended > 0 and ended >= rule.min_runs and rate > rule.threshold
        return Condition(holds, failed, f"Failure rate{of} over the last {window}: {rate:.0%} ({failed:,} of "
                         f"{_runs(ended)} that ended failed; fires above {rule.threshold:.0%} with at least "
                         f"{rule.min_runs:,} ended)", query)
    if rule.kind == "consecutive":
        n = int(rule.threshold)
        # The last n ended runs lie in the last hour or day when that many ended there: a narrower read first
        # (148 ms for all of a workflow's runs at 1M; docs/performance.md).
        for span in (*STREAK_SPANS, None):
            latest = store.page(RunFilter(workflows=wf, statuses=ENDED_STATUSES,
                                          start=now - span if span else None), size=n)
            if latest.height >= n:
                break
        streak = 0
        for status in latest["status"].to_list():
            if status != "failed":
                break
            streak += 1
        if streak >= n:
            starts = latest["started_at"].to_list()
            query = runs_query(min(starts), max(starts) + timedelta(microseconds=1), statuses=("failed",),
                               workflows=wf)
            return Condition(True, counted(query), f"The last {_runs(n)}{of} that ended all failed", query)
        return Condition(False, 0, f"{streak:,} of the last {_runs(n)}{of} that ended failed in a row",
                         RunsQuery(statuses=("failed",), workflows=wf))
    if rule.kind in ("error_kind", "app"):
        subject = rule.subject or ""
        narrowed = {"kinds": (subject,)} if rule.kind == "error_kind" else {"apps": (subject,)}
        query = runs_query(since, now, statuses=("failed",), workflows=wf, **narrowed)
        n = counted(query)
        what = f"with error kind {subject}" if rule.kind == "error_kind" else f"whose failed step called {subject}"
        return Condition(n >= max(1, int(rule.threshold)), n, f"{_runs(n)}{of} failed {what} in the last {window}",
                         query)
    if rule.kind == "stuck":
        query = runs_query(SINCE_EVER, now - timedelta(minutes=rule.threshold), statuses=("running", "pending"),
                           workflows=wf)
        n = counted(query)
        return Condition(n > 0, n, f"{_runs(n)}{of} running or pending for longer than {_span(rule.threshold)}",
                         query)
    if rule.kind == "unresolved":
        query = RunsQuery(statuses=("failed",), unresolved=True, workflows=wf)
        n = store.unresolved_count(query.filter(now, UTC_ZONE))
        return Condition(n > rule.threshold, n, f"{n:,} unresolved failed run{'s' if n != 1 else ''}{of} "
                         f"(fires above {int(rule.threshold):,})", query)
    raise RuleRejected(f"Unknown kind of rule {rule.kind!r}")


def _least(threshold: float) -> str:
    n = int(threshold)
    return "Any failure" if n <= 1 else f"At least {n:,} failures"


def describe_rule(rule: AlertRule, names: Mapping[str, str] | None = None) -> str:
    """The rule's condition in words, e.g. "Failure rate of X over 1 h above 20% (at least 10 ended runs)"."""
    names = names or {}
    of = f" of {names.get(rule.workflow_id, rule.workflow_id)}" if rule.workflow_id else " of any workflow"
    window = _span(rule.window_minutes)
    return {
        "failure_rate": f"Failure rate{of} over {window} above {rule.threshold:.0%} "
                        f"(at least {rule.min_runs:,} ended runs)",
        "consecutive": f"{int(rule.threshold):,} consecutive failures{of}",
        "error_kind": f"{_least(rule.threshold)} with error kind {rule.subject}{of} in {window}",
        "app": f"{_least(rule.threshold)} at {rule.subject}{of} in {window}",
        "stuck": f"A run{of} running or pending longer than {_span(rule.threshold)}",
        "unresolved": f"More than {int(rule.threshold):,} unresolved failed runs{of}",
    }.get(rule.kind, rule.kind)


def validated(rule: AlertRule, destinations: Sequence[str]) -> AlertRule:
    """The rule with its text trimmed, or RuleRejected saying what is wrong."""
    name = rule.name.strip()
    if not name or len(name) > MAX_NAME:
        raise RuleRejected(f"A rule needs a name of 1 to {MAX_NAME} characters.")
    if rule.kind not in KINDS:
        raise RuleRejected(f"Unknown kind of rule {rule.kind!r}: one of {', '.join(KINDS)}.")
    workflow = (rule.workflow_id or "").strip() or None
    if rule.kind in NEEDS_WORKFLOW and not workflow:
        raise RuleRejected(f"“{KINDS[rule.kind]}” watches one workflow: choose it.")
    subject = (rule.subject or "").strip() or None
    if rule.kind == "error_kind" and subject not in ERROR_KINDS:
        raise RuleRejected(f"The error kind must be one of {', '.join(ERROR_KINDS)}.")
    if rule.kind == "app" and (not subject or len(subject) > MAX_APP):
        raise RuleRejected("Name the app whose failures fire this rule.")
    t = rule.threshold
    if rule.kind == "failure_rate" and not 0 < t < 1:
        raise RuleRejected("The failure rate threshold must be between 0% and 100%, both left out.")
    if rule.kind in ("consecutive", "error_kind", "app") and not 1 <= t <= MAX_COUNT:
        raise RuleRejected(f"The number of failures must be 1 to {MAX_COUNT:,}.")
    if rule.kind == "stuck" and not 1 <= t <= MAX_WINDOW_MINUTES:
        raise RuleRejected(f"“Longer than” must be 1 to {MAX_WINDOW_MINUTES:,} minutes.")
    if rule.kind == "unresolved" and not 0 <= t <= MAX_COUNT:
        raise RuleRejected(f"The number of unresolved failures must be 0 to {MAX_COUNT:,}.")
    if rule.kind == "failure_rate" and not 1 <= rule.min_runs <= MAX_COUNT:
        raise RuleRejected(f"The minimum of ended runs must be 1 to {MAX_COUNT:,}.")
    if rule.kind in WINDOWED and not 1 <= rule.window_minutes <= MAX_WINDOW_MINUTES:
        raise RuleRejected(f"The window must be 1 to {MAX_WINDOW_MINUTES:,} minutes.")
    if not 0 <= rule.cooldown_minutes <= MAX_COOLDOWN_MINUTES:
        raise RuleRejected(f"The cooldown must be 0 to {MAX_COOLDOWN_MINUTES:,} minutes.")
    if rule.destination and rule.destination not in destinations:
        raise RuleRejected("There is no destination of that name: an admin adds destinations first.")
    return replace(rule, name=name, workflow_id=workflow, subject=subject, destination=rule.destination or None)


# ---------------------------------------------------------------- checking

@dataclass(frozen=True)
class Check:
    """What one check found: episodes it opened and closed, and every episode firing after it."""

    fired: list[AlertEpisode] = field(default_factory=list)
    resolved: list[AlertEpisode] = field(default_factory=list)
    firing: list[AlertEpisode] = field(default_factory=list)


def check(store: Store, *, by: str, now: datetime | None = None) -> Check:
    """Evaluate every enabled rule once: open an episode where its condition starts holding (the store refuses a
    second), close the open one where it stopped. `by`: dashboard or cli, recorded with each episode."""
    now = now or datetime.now(UTC)
    names = dict(store.workflows())
    open_ = store.open_alert_episodes()
    result = Check()
    held: list[int] = []
    for rule in store.alert_rules():
        if not rule.enabled or rule.rule_id is None:
            continue
        found = condition(store, rule, now, names)
        episode = open_.get(rule.rule_id)
        if found.holds and episode is None:
            opened = store.fire_alert(rule, found.summary, found.runs, found.query.to_string(), by, now)
            if opened is not None:  # None: cooling down after a resolve, or another check opened it first
                result.fired.append(opened)
                result.firing.append(opened)
        elif found.holds and episode is not None:
            held.append(episode.episode)
            result.firing.append(episode)
        elif episode is not None and (closed := store.resolve_alert(episode.episode, now)) is not None:
            result.resolved.append(closed)
    store.alerts_still_firing(held, now)
    return result


def runs_link(query: str) -> str:
    """The Runs page's address for a query string: under $FOURGENT_PUBLIC_URL, else a path alone ("/?…"), which
    a reader opens on the dashboard's own address."""
    base = os.environ.get(PUBLIC_URL_ENV, "").strip().rstrip("/")
    return f"{base}/?{query}" if query else f"{base}/"


def message(d: AlertDelivery, names: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(title, body) of a delivery: the rule, the condition in words with its figures, and the Runs link; never a
    payload, an error message from a log or a secret."""
    e = d.episode
    described = RunsQuery.from_string(e.query).describe(names, UTC_ZONE)
    link = runs_link(e.query)
    relative = "" if os.environ.get(PUBLIC_URL_ENV) else f" (on the dashboard's address; set {PUBLIC_URL_ENV})"
    fired = f"{e.fired_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    if d.event == "resolved":
        resolved = f"{(e.resolved_at or e.checked_at).astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        return (f"Resolved: {e.rule}",
                f"No longer holds: {e.summary}.\nFired {fired}, resolved {resolved} (alert #{e.episode}).\n"
                f"The runs that fired it — {described}: {link}{relative}")
    return (f"Alert: {e.rule}",
            f"{e.summary}.\n{_runs(e.runs)} behind it — {described}: {link}{relative}\n"
            f"Fired {fired} by the {e.fired_by} (alert #{e.episode}); a message follows when it resolves.")


# ---------------------------------------------------------------- destinations

def key(paths: Paths, store: Store) -> Fernet:
    """The key destinations are encrypted with: the connections' key (FOURGENT_SECRET_KEY or the key file)."""
    stored = len(store.alert_destinations()) + sum(1 for c in store.connection_rows() if c.token_encrypted)
    return load_key(paths.key_file, credentials_stored=stored)


def masked(url: str) -> str:
    """A destination as people see it: its service, and the server's name where that is not a token."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = ""
    if scheme in HOSTED_SCHEMES:
        try:
            host = parts.hostname or ""
        except ValueError:
            host = ""
    return f"{scheme}://{host}{'/' if host else ''}••••••••"


def _plugin(url: str) -> apprise.plugins.NotifyBase:
    found = apprise.Apprise.instantiate(url.strip())
    if found is None:
        raise DestinationRejected("Apprise does not understand that URL (e.g. json://host/path, "
                                  "mailto://user:password@host?to=someone@example.com, slack://…); it was not saved.")
    found.socket_connect_timeout = CONNECT_TIMEOUT_S
    found.socket_read_timeout = READ_TIMEOUT_S
    return found


def save_destination(store: Store, actor: Actor, fernet: Fernet, name: str, url: str) -> None:
    """Store a destination as `actor` (an admin's action), its URL encrypted; the audit sees it masked."""
    name, url = name.strip(), url.strip()
    shown = masked(url)

    def do() -> None:
        if not name or len(name) > MAX_NAME:
            raise DestinationRejected(f"A destination needs a name of 1 to {MAX_NAME} characters.")
        _plugin(url)
        store.put_alert_destination(name, fernet.encrypt(url.encode()).decode(), shown)

    perform(store, actor, Action.ALERT_DESTINATION_SAVE, name, do, detail={"destination": shown})


def delete_destination(store: Store, actor: Actor, name: str) -> bool:
    return perform(store, actor, Action.ALERT_DESTINATION_DELETE, name, lambda: store.delete_alert_destination(name))


def save_rule(store: Store, actor: Actor, rule: AlertRule) -> int:
    """Add or replace a rule as `actor` (an operator's action); a changed rule starts afresh (its open episode
    closes without a message)."""
    def do() -> int:
        chosen = validated(replace(rule, updated_by=actor.who), [d.name for d in store.alert_destinations()])
        return store.put_alert_rule(chosen)

    return perform(store, actor, Action.ALERT_RULE_SAVE, rule.name.strip()[:MAX_NAME], do,
                   detail={"kind": rule.kind, "workflow": rule.workflow_id, "subject": rule.subject,
                           "threshold": rule.threshold, "destination": rule.destination, "enabled": rule.enabled},
                   outcome=lambda rule_id: {"rule": rule_id})


def delete_rule(store: Store, actor: Actor, rule: AlertRule) -> bool:
    assert rule.rule_id is not None
    rule_id = rule.rule_id
    return perform(store, actor, Action.ALERT_RULE_DELETE, rule.name, lambda: store.delete_alert_rule(rule_id),
                   detail={"rule": rule_id})


# ---------------------------------------------------------------- delivery

def send(url: str, title: str, body: str, *, attempts: int = ATTEMPTS, wait_s: float = RETRY_WAIT_S,
         failure: bool = True) -> tuple[bool, int]:
    """Send one message through Apprise, retried with backoff; (accepted, attempts made). Never raises."""
    made = 0

    def once() -> bool:
        nonlocal made
        made += 1
        return bool(_plugin(url).notify(body=body, title=title, body_format=apprise.NotifyFormat.TEXT,
                                        notify_type=apprise.NotifyType.FAILURE if failure
                                        else apprise.NotifyType.SUCCESS))

    retrying = Retrying(stop=stop_after_attempt(attempts), wait=wait_exponential(multiplier=wait_s, max=30),
                        retry=retry_if_result(lambda ok: not ok) | retry_if_exception_type(Exception),
                        retry_error_callback=lambda _state: False, reraise=False)
    try:
        return bool(retrying(once)), made
    except DestinationRejected:
        return False, made


def deliver(store: Store, fernet: Fernet | None, d: AlertDelivery, *, names: Mapping[str, str] | None = None,
            wait_s: float = RETRY_WAIT_S) -> bool:
    """Send one pending message and record how it went ("undelivered" after its attempts, with why in words)."""
    encrypted = store.alert_destination(d.destination)
    reason = None
    url = None
    if encrypted is None:
        reason = "its destination was removed"
    elif fernet is None:
        reason = "the key that encrypts destinations cannot be loaded"
    else:
        try:
            url = fernet.decrypt(encrypted.encode()).decode()
        except InvalidToken:
            reason = "its destination cannot be read with this key (was FOURGENT_SECRET_KEY or the key file changed?)"
    ok, made = False, 0
    if url is not None:
        title, body = message(d, names if names is not None else dict(store.workflows()))
        ok, made = send(url, title, body, wait_s=wait_s, failure=d.event == "fired")
        reason = None if ok else f"not accepted after {made} attempt{'s' if made != 1 else ''}"
    store.alert_delivered(d.delivery, ok, made, reason, datetime.now(UTC))
    return ok


def deliver_all(store: Store, fernet: Fernet | None, *, wait_s: float = RETRY_WAIT_S) -> list[bool]:
    """Send every pending message and wait for them (the CLI): several at a time."""
    pending = store.pending_alerts()
    if not pending:
        return []
    names = dict(store.workflows())
    with ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="fourgent-alert") as pool:
        return list(pool.map(lambda d: deliver(store, fernet, d, names=names, wait_s=wait_s), pending))


def try_destination(store: Store, actor: Actor, fernet: Fernet, name: str) -> bool:
    """Send one test message to a destination as `actor` (an admin's action), one attempt; whether it was accepted."""
    def do() -> bool:
        encrypted = store.alert_destination(name)
        if encrypted is None:
            raise DestinationRejected("There is no destination of that name.")
        try:
            url = fernet.decrypt(encrypted.encode()).decode()
        except InvalidToken:
            raise DestinationRejected("The destination cannot be read with this key.") from None
        return send(url, "Fourgent test message", "Alerts from Fourgent Runs reach this destination.",
                    attempts=1, failure=False)[0]

    return perform(store, actor, Action.ALERT_DESTINATION_TEST, name, do, outcome=lambda ok: {"accepted": ok})


class Sender:
    """Delivers what is pending on a few threads of its own, each message once per process at a time."""

    def __init__(self, store: Store, paths: Paths, *, wait_s: float = RETRY_WAIT_S) -> None:
        self.store, self.paths, self.wait_s = store, paths, wait_s
        self.pool = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="fourgent-alert")
        self.inflight: set[int] = set()
        self.lock = threading.Lock()

    def dispatch(self) -> int:
        """Start sending every pending message not already being sent (a crashed process's too); returns how many."""
        pending = self.store.pending_alerts()
        if not pending:
            return 0
        try:
            fernet: Fernet | None = key(self.paths, self.store)
        except ValueError:  # CredentialError: recorded per message as undelivered, in words
            fernet = None
        names = dict(self.store.workflows())
        started = 0
        for d in pending:
            with self.lock:
                if d.delivery in self.inflight:
                    continue
                self.inflight.add(d.delivery)
            self.pool.submit(self._one, fernet, d, names)
            started += 1
        return started

    def _one(self, fernet: Fernet | None, d: AlertDelivery, names: Mapping[str, str]) -> None:
        try:
            deliver(self.store, fernet, d, names=names, wait_s=self.wait_s)
        except Exception:  # the store closed under it: the message stays pending for the next sender
            log.warning("An alert message could not be recorded; it stays pending.", exc_info=True)
        finally:
            with self.lock:
                self.inflight.discard(d.delivery)


# ---------------------------------------------------------------- the dashboard's tick

def tick_seconds() -> float:
    """$FOURGENT_ALERT_TICK, else 15 s; 0 or less: the dashboard does not check (cron's `alerts check` does)."""
    try:
        return float(os.environ.get(TICK_ENV, str(TICK_S)))
    except ValueError:
        return TICK_S


class Ticker:
    """The dashboard's check, on a thread of its own every `every` s: it reads new log lines, checks the rules and
    starts sending, whether or not anyone has a page open."""

    def __init__(self, ws: Workspace, every: float) -> None:
        self.ws, self.every = ws, every
        self.sender = Sender(ws.store, ws.paths)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="fourgent-alert-tick", daemon=True)
        self.registered = is_open(ws.store)  # opened by open_store: it stops once close_store forgets it

    def tick(self) -> Check | None:
        store = self.ws.store
        if not store.alert_rules() and not store.open_alert_episodes():
            self.sender.dispatch()
            return None
        self.ws.refresh()
        found = check(store, by="dashboard")
        self.sender.dispatch()
        return found

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            if self.registered and not is_open(self.ws.store):
                return  # closed (close_store): nothing left to check
            try:
                self.tick()
            except Exception:  # the next tick tries again; a page shows the same store's state meanwhile
                if self.registered and not is_open(self.ws.store):
                    return
                log.warning("The alert check failed; it runs again in %s s.", self.every, exc_info=True)


_tickers: dict[Path, Ticker] = {}
_tickers_lock = threading.Lock()


def start_ticker(ws: Workspace) -> Ticker | None:
    """The process's one ticker for this store (None when $FOURGENT_ALERT_TICK turns it off)."""
    every = tick_seconds()
    if every <= 0 or ws.store.read_only:
        return None
    with _tickers_lock:
        found = _tickers.get(ws.store.path)
        if found is None or found.ws.store is not ws.store:
            if found is not None:
                found.stop.set()
            found = _tickers[ws.store.path] = Ticker(ws, every)
            found.thread.start()
        return found


# ---------------------------------------------------------------- while the dashboard holds the store

@dataclass(frozen=True)
class Firing:
    """An episode firing as the dashboard last recorded it (read from the `alerts` view's snapshot)."""

    rule: str
    summary: str
    runs: int
    query: str
    fired_at: datetime
    checked_at: datetime


def firing_in_snapshot(db_path: Path) -> list[Firing]:
    """The episodes firing in the read-only snapshot of the `alerts` view (the CLI, while the dashboard holds the
    store: it checks, sends and keeps the snapshot current)."""
    result = snapshot_sql(db_path, "SELECT rule, summary, runs, query, fired_at, checked_at FROM alerts "
                          "WHERE state = 'firing' ORDER BY fired_at, episode", max_rows=10_000, time_limit=10)
    return [Firing(*row) for row in result.rows]
