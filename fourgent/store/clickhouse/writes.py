"""Changing the ledger in ClickHouse: alert rules, destinations, episodes and messages, comments, pauses and
connections, each change a new row.

ClickHouse has no UPDATE or DELETE for these small tables here: a change inserts the record's new version (its
latest `changed_at` wins under FINAL) and a removal inserts it with `deleted = 1` (schema.py). A check and the
write it guards (no second open episode of a rule, no second pause) hold under the store's write lock, which
covers one store object only: across processes the embedded store's write lock has no equivalent here yet.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import polars as pl

from ... import process
from ..errors import RunNotFound
from ..records import AlertEpisode, AlertRule, AuditEntry, Comment, Retrigger
from . import rollup
from .ids import fresh_id
from .ledger import LedgerReads, _episodes
from .sql import RUNS, Params, instant

NOW = "now64(6, 'UTC')"


class Writes(Protocol):
    client: Any
    _write_lock: threading.Lock

    def _rows(self, sql: str, p: Params | None = None,
              settings: dict[str, Any] | None = None) -> list[tuple[Any, ...]]: ...
    def _frame(self, sql: str, p: Params | None = None,
               settings: dict[str, Any] | None = None) -> pl.DataFrame: ...


def _command(store: Writes, sql: str, p: Params) -> None:
    store.client.command(sql, parameters=p.values)


def _revise(store: Writes, table: str, where: str, p: Params, changes: dict[str, str], *, delete: bool = False) -> None:
    """Insert the new version of the current rows of `table` matching `where`, with `changes` (column -> SQL)."""
    replaced = ", ".join([*(f"{expr} AS {col}" for col, expr in changes.items()), f"{NOW} AS changed_at",
                          f"{int(delete)} AS deleted"])
    # The rows are chosen in a subquery: ClickHouse lets a SELECT's aliases shadow columns in its own WHERE, so
    # `destination = …` would test the replaced value.
    _command(store, f"INSERT INTO {table} SELECT * REPLACE ({replaced}) FROM (SELECT * FROM {table} FINAL "
             f"WHERE {where})", p)


class AlertWrites(LedgerReads):
    """The AlertBook's writes (its reads are LedgerReads')."""

    def put_alert_rule(self: Writes, rule: AlertRule) -> int:
        """Add a rule (no rule_id) or replace the stored one; returns its id. A changed rule's open episode is
        resolved without a message: what it watched is no longer what it says."""
        with self._write_lock:
            p = Params()
            rule_id = fresh_id() if rule.rule_id is None else rule.rule_id
            if rule.rule_id is not None and not self._rows(
                    f"SELECT 1 FROM alert_rules FINAL WHERE rule_id = {p.add(rule_id, 'UInt64')}", p):
                raise KeyError(f"There is no alert rule {rule.rule_id}.")
            p = Params()
            values = ", ".join([p.add(rule_id, "UInt64"), p.add(rule.name, "String"), p.add(rule.kind, "String"),
                                p.add(rule.workflow_id, "Nullable(String)"), p.add(rule.subject, "Nullable(String)"),
                                p.add(float(rule.threshold), "Float64"), p.add(rule.min_runs, "Int32"),
                                p.add(rule.window_minutes, "Int32"), p.add(rule.cooldown_minutes, "Int32"),
                                p.add(rule.destination, "Nullable(String)"), p.add(rule.enabled, "Bool"), NOW,
                                p.add(rule.updated_by, "String")])
            _command(self, "INSERT INTO alert_rules (rule_id, name, kind, workflow_id, subject, threshold, min_runs, "
                     "window_minutes, cooldown_minutes, destination, enabled, updated_at, updated_by) "
                     f"SELECT {values}", p)
            if rule.rule_id is not None:
                _close_quietly(self, rule_id)
            return rule_id

    def delete_alert_rule(self: Writes, rule_id: int) -> bool:
        with self._write_lock:
            p = Params()
            where = f"rule_id = {p.add(rule_id, 'UInt64')}"
            if not self._rows(f"SELECT 1 FROM alert_rules FINAL WHERE {where}", p):
                return False
            _revise(self, "alert_rules", where, p, {}, delete=True)
            _close_quietly(self, rule_id)
            return True

    def put_alert_destination(self: Writes, name: str, url_encrypted: str, masked: str) -> None:
        with self._write_lock:
            p = Params()
            _command(self, "INSERT INTO alert_destinations (name, url_encrypted, masked, updated_at) SELECT "
                     f"{p.add(name, 'String')}, {p.add(url_encrypted, 'String')}, {p.add(masked, 'String')}, {NOW}", p)

    def delete_alert_destination(self: Writes, name: str) -> bool:
        """Rules that sent there keep their history and send nowhere until given another."""
        with self._write_lock:
            p = Params()
            named = p.add(name, "String")
            if not self._rows(f"SELECT 1 FROM alert_destinations FINAL WHERE name = {named}", p):
                return False
            _revise(self, "alert_destinations", f"name = {named}", p, {}, delete=True)
            _revise(self, "alert_rules", f"destination = {named}", p, {"destination": "NULL"})
            return True

    def fire_alert(self: Writes, rule: AlertRule, summary: str, runs: int, query: str, by: str,
                   at: datetime) -> AlertEpisode | None:
        """Open an episode of `rule` and queue its message, unless one is open or the last closed less than the
        rule's cooldown ago (None then)."""
        assert rule.rule_id is not None
        with self._write_lock:
            p = Params()
            open_now, last = self._rows(
                "SELECT countIf(resolved_at IS NULL), max(resolved_at) FROM alert_episodes FINAL "
                f"WHERE rule_id = {p.add(rule.rule_id, 'UInt64')}", p)[0]
            if open_now or (last is not None and (at - last).total_seconds() < rule.cooldown_minutes * 60):
                return None
            episode = fresh_id()
            p = Params()
            when = instant(at, p)
            _command(self, "INSERT INTO alert_episodes (episode, rule_id, rule_name, kind, fired_at, summary, runs, "
                     f"query, fired_by, checked_at) SELECT {p.add(episode, 'UInt64')}, "
                     f"{p.add(rule.rule_id, 'UInt64')}, {p.add(rule.name, 'String')}, {p.add(rule.kind, 'String')}, "
                     f"{when}, {p.add(summary, 'String')}, {p.add(runs, 'Int64')}, {p.add(query, 'String')}, "
                     f"{p.add(by, 'String')}, {when}", p)
            _queue(self, episode, "fired", rule.destination, at)
            return _one(self, episode)

    def resolve_alert(self: Writes, episode: int, at: datetime) -> AlertEpisode | None:
        """Close an open episode and queue its "resolved" message where its firing went (None: already closed)."""
        with self._write_lock:
            p = Params()
            where = f"episode = {p.add(episode, 'UInt64')} AND resolved_at IS NULL"
            if not self._rows(f"SELECT 1 FROM alert_episodes FINAL WHERE {where}", p):
                return None
            when = instant(at, p)
            _revise(self, "alert_episodes", where, p, {"resolved_at": when, "checked_at": when})
            p = Params()
            went = self._rows("SELECT destination FROM alert_deliveries FINAL "
                              f"WHERE episode = {p.add(episode, 'UInt64')} AND event = 'fired'", p)
            _queue(self, episode, "resolved", went[0][0] if went else None, at)
            return _one(self, episode)

    def alerts_still_firing(self: Writes, episodes: Sequence[int], at: datetime) -> None:
        """The condition of these open episodes was found holding at `at` (the CLI shows how fresh it is)."""
        if not episodes:
            return
        with self._write_lock:
            p = Params()
            _revise(self, "alert_episodes",
                    f"episode IN {p.among(list(episodes), 'UInt64')} AND resolved_at IS NULL", p,
                    {"checked_at": instant(at, p)})

    def alert_delivered(self: Writes, delivery: int, ok: bool, attempts: int, reason: str | None,
                        at: datetime) -> None:
        with self._write_lock:
            p = Params()
            _revise(self, "alert_deliveries", f"delivery = {p.add(delivery, 'UInt64')}", p,
                    {"outcome": p.add("delivered" if ok else "undelivered", "String"),
                     "attempts": p.add(attempts, "Int32"), "reason": p.add(reason, "Nullable(String)"),
                     "sent_at": instant(at, p)})


def _close_quietly(store: Writes, rule_id: int) -> None:
    p = Params()
    _revise(store, "alert_episodes", f"rule_id = {p.add(rule_id, 'UInt64')} AND resolved_at IS NULL", p,
            {"resolved_at": NOW, "checked_at": NOW})


def _queue(store: Writes, episode: int, event: str, destination: str | None, at: datetime) -> None:
    if destination:
        p = Params()
        _command(store, "INSERT INTO alert_deliveries (delivery, episode, event, destination, queued_at, outcome, "
                 f"attempts) SELECT {p.add(fresh_id(), 'UInt64')}, {p.add(episode, 'UInt64')}, "
                 f"{p.add(event, 'String')}, {p.add(destination, 'String')}, {instant(at, p)}, 'pending', 0", p)


def _one(store: Writes, episode: int) -> AlertEpisode:
    p = Params()
    return _episodes(store, f"WHERE episode = {p.add(episode, 'UInt64')}", p)[0]


class LedgerWrites(AlertWrites):
    """The Ledger's writes of comments, pauses and connections (claims and the re-trigger ledger come later)."""

    def add_comment(self: Writes, run_id: str, author: str, body: str) -> Comment:
        with self._write_lock:
            p = Params()
            if not self._rows(f"SELECT count() FROM runs WHERE id = {p.add(run_id, 'String')}", p)[0][0]:
                raise RunNotFound("There is no run with that ID.")
            p = Params()
            at = datetime.now(UTC)
            _command(self, f"INSERT INTO comments SELECT {p.add(run_id, 'String')}, {p.add(author, 'String')}, "
                     f"{p.add(body, 'String')}, {instant(at, p)}", p)
            return Comment(run_id, author, body, at)

    def set_paused(self: Writes, workflow_id: str, pause: bool, who: str = "") -> None:
        """Pausing a paused workflow keeps who paused it first."""
        with self._write_lock:
            p = Params()
            named = p.add(workflow_id, "String")
            held = self._rows(f"SELECT 1 FROM paused FINAL WHERE workflow_id = {named}", p)
            if pause and not held:
                _command(self, f"INSERT INTO paused (workflow_id, paused_at, paused_by) SELECT {named}, {NOW}, "
                         f"{p.add(who, 'String')}", p)
            elif not pause and held:
                _revise(self, "paused", f"workflow_id = {named}", p, {}, delete=True)

    def put_connection(self: Writes, app: str, base_url: str, token_encrypted: str | None,
                       token_hint: str | None) -> None:
        """Set an app's base URL and credential; when it last answered (or refused) stays, as in the embedded
        store (a refusal older than the new credential no longer counts: connection_rows)."""
        with self._write_lock:
            p = Params()
            named = p.add(app, "String")
            values = {"base_url": p.add(base_url, "String"),
                      "token_encrypted": p.add(token_encrypted, "Nullable(String)"),
                      "token_hint": p.add(token_hint, "Nullable(String)"), "updated_at": NOW}
            if self._rows(f"SELECT 1 FROM connections FINAL WHERE app = {named}", p):
                _revise(self, "connections", f"app = {named}", p, values)
            else:
                _command(self, f"INSERT INTO connections (app, {', '.join(values)}) "
                         f"SELECT {named}, {', '.join(values.values())}", p)

    def record_calls(self: Writes, ok: Sequence[str], refused: Sequence[str]) -> None:
        """Note which apps answered a call (ok) and which refused the credential (401/403)."""
        with self._write_lock:
            for apps, column in ((ok, "last_success_at"), (refused, "refused_at")):
                if apps:
                    p = Params()
                    _revise(self, "connections", f"app IN {p.among(list(apps), 'String')}", p, {column: NOW})


class LineageWrites(LedgerWrites):
    """Handled marks, the audit, and the re-triggers Fourgent records before starting them."""

    def mark_handled(self: Writes, run_ids: Sequence[str], by: str, reason: str) -> list[str]:
        """Mark these runs handled (only failed originals, not marked already); returns those marked."""
        with self._write_lock:
            p = Params()
            among = p.among(list(run_ids), "String")
            marked = [r[0] for r in self._rows(
                f"SELECT id FROM {RUNS} WHERE id IN {among} AND status = 'failed' AND retrigger_of IS NULL "
                "AND id NOT IN (SELECT run_id FROM handled FINAL)", p)]
            if marked:
                p = Params()
                _command(self, f"INSERT INTO handled (run_id, handled_by, handled_at, reason) SELECT "
                         f"arrayJoin({p.add(marked, 'Array(String)')}), {p.add(by, 'String')}, {NOW}, "
                         f"{p.add(reason, 'String')}", p)
                _days_changed(self, marked)
            return marked

    def unmark_handled(self: Writes, run_ids: Sequence[str]) -> list[str]:
        with self._write_lock:
            p = Params()
            where = f"run_id IN {p.among(list(run_ids), 'String')}"
            unmarked = [r[0] for r in self._rows(f"SELECT run_id FROM handled FINAL WHERE {where}", p)]
            if unmarked:
                _revise(self, "handled", where, p, {}, delete=True)
                _days_changed(self, unmarked)
            return unmarked

    def record_audit(self: Writes, entry: AuditEntry) -> None:
        p = Params()
        detail = json.dumps(entry.detail) if entry.detail is not None else None
        _command(self, "INSERT INTO audit SELECT " + ", ".join([
            p.add(fresh_id(), "UInt64"), instant(entry.at, p), p.add(entry.actor, "String"),
            p.add(entry.role, "String"), p.add(entry.via, "String"), p.add(entry.action, "String"),
            p.add(entry.target, "Nullable(String)"), p.add(detail, "Nullable(String)"),
            p.add(entry.outcome, "String"), p.add(entry.message, "Nullable(String)")]), p)

    def record_retriggers(self: Writes, retriggers: Sequence[Retrigger]) -> None:
        """Before the runs start: the re-triggers about to run, so their lines are read as lineage."""
        if not retriggers:
            return
        rows = [[r.run_id, r.retrigger_of, r.by, r.at, r.mode, r.from_step,
                 json.dumps(r.payload_diff, ensure_ascii=False) if r.payload_diff is not None else None, r.owner]
                for r in retriggers]
        with self._write_lock:
            self.client.insert("retriggers", rows, column_names=["run_id", "retrigger_of", "retriggered_by",
                                                                 "retriggered_at", "mode", "from_step",
                                                                 "payload_diff", "owner"])
            _days_changed(self, [r.retrigger_of for r in retriggers])

    def forget_retriggers(self: Writes, run_ids: Sequence[str]) -> None:
        """Re-triggers recorded but never started (a cancelled bulk's rest)."""
        if not run_ids:
            return
        with self._write_lock:
            p = Params()
            _revise(self, "retriggers", f"run_id IN {p.among(list(run_ids), 'String')} "
                    "AND run_id NOT IN (SELECT id FROM runs)", p, {}, delete=True)


def _days_changed(store: Writes, run_ids: list[str]) -> None:
    """What these runs count as changed (handled, or a re-trigger of theirs recorded): their days' rollups are
    written again."""
    rollup.mark_runs(store, run_ids)
    rollup.refresh(store)


def claimer() -> str:
    """This process as a claim names it: its machine, then process.me() ("host/pid:start"), so a dashboard on another
    machine with the same pid is another claimer."""
    return f"{socket.gethostname()}/{process.me()}"


def _gone(owner: str) -> bool:
    """Whether the claimer `owner` names is a process of this machine that has ended (a copy's owners, without a
    machine, were the embedded store's: this machine's)."""
    host, named, pid = owner.rpartition("/")
    if named and host != socket.gethostname():
        return False
    return not process.alive(pid)


class ClaimWrites(LineageWrites):
    """Re-trigger claims that hold across dashboard processes on one database, with no lock to share.

    Each claimer inserts its own row per run; then all read the run's live claims and the earliest by the server's
    clock (ties by owner) holds it, and a claimer that did not win withdraws its row. Two dashboards clicking at once
    thus re-trigger a run once. The one case it cannot rule out: an insert whose server time is earlier than another
    claimer's, committed only after that claimer read (a part write slower than the other's insert and read). An exact
    compare-and-set needs ClickHouse Keeper (a KeeperMap table in strict mode), which this store does not require.
    """

    def claim(self: Writes, run_ids: Sequence[str]) -> set[str]:
        """Claim runs for re-triggering as this process; a run claimed by a live process is not returned. The claims
        of processes of this machine that are gone are released first (another machine's cannot be told gone)."""
        ids = sorted(set(run_ids))
        if not ids:
            return set()
        mine = claimer()
        with self._write_lock:
            p = Params()
            among = p.among(ids, "String")
            live = self._rows(f"SELECT run_id, owner FROM retrigger_claims FINAL WHERE run_id IN {among}", p)
            gone = sorted({o for _, o in live if o != mine and _gone(o)})
            if gone:
                _revise(self, "retrigger_claims", f"run_id IN {among} AND owner IN {p.among(gone, 'String')}",
                        p, {}, delete=True)
            held = {r for r, o in live if o not in gone}
            wanted = [r for r in ids if r not in held]
            if not wanted:
                return set()
            self.client.insert("retrigger_claims", [[r, mine] for r in wanted], column_names=["run_id", "owner"])
            p = Params()
            among = p.among(wanted, "String")
            winners = dict(self._rows(f"SELECT run_id, argMin(owner, (claimed_at, owner)) FROM retrigger_claims FINAL "
                                      f"WHERE run_id IN {among} GROUP BY run_id", p))
            won = {r for r in wanted if winners.get(r) == mine}
            lost = [r for r in wanted if r not in won]
            if lost:
                p = Params()
                _revise(self, "retrigger_claims", f"run_id IN {p.among(lost, 'String')} AND owner = "
                        f"{p.add(mine, 'String')}", p, {}, delete=True)
            return won

    def release(self: Writes, run_ids: Sequence[str]) -> None:
        if not run_ids:
            return
        with self._write_lock:
            p = Params()
            _revise(self, "retrigger_claims", f"run_id IN {p.among(sorted(set(run_ids)), 'String')}", p, {},
                    delete=True)
