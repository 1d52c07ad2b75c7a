"""Alert rules, destinations, episodes and deliveries: each write one short transaction under the write lock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..records import AlertDelivery, AlertDestinationRow, AlertEpisode, AlertRule
from . import snapshot
from .database import Cursor, Database

RULE_COLUMNS = ("name, kind, threshold, workflow_id, subject, min_runs, window_minutes, cooldown_minutes, "
                "destination, enabled, rule_id, updated_at, updated_by")
EPISODE_COLUMNS = ("episode, rule_id, rule, kind, fired_at, resolved_at, summary, runs, query, fired_by, checked_at, "
                   "destination, fired_delivery, resolved_delivery")


def _episode(row: Sequence[Any]) -> AlertEpisode:
    return AlertEpisode(*row)


def _episodes(cur: Cursor, where: str, params: Sequence[object] = ()) -> list[AlertEpisode]:
    rows = cur.execute(f"SELECT {EPISODE_COLUMNS} FROM main.alerts {where}", list(params)).fetchall()
    return [_episode(r) for r in rows]


def _queue(cur: Cursor, episode: int, event: str, destination: str | None, at: datetime) -> None:
    if destination:
        cur.execute("INSERT INTO fg.alert_deliveries (episode, event, destination, queued_at, outcome, attempts) "
                    "VALUES (?, ?, ?, ?, 'pending', 0)", [episode, event, destination, at])


class Alerts:
    """The DuckDB side of fourgent.alerts."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _changed(self, cur: Cursor) -> None:
        snapshot.write_view(cur, self.db.snapshot_dir, "alerts")  # inside the transaction: visible to it

    # ------------------------------------------------------------ rules

    def rules(self) -> list[AlertRule]:
        rows = self.db.cursor().execute(f"SELECT {RULE_COLUMNS} FROM fg.alert_rules ORDER BY rule_id").fetchall()
        return [AlertRule(*r) for r in rows]

    def put_rule(self, rule: AlertRule) -> int:
        """Add a rule (no rule_id) or replace the stored one; returns its id. A changed rule's open episode is
        resolved without a message: what it watched is no longer what it says."""
        values = [rule.name, rule.kind, rule.threshold, rule.workflow_id, rule.subject, rule.min_runs,
                  rule.window_minutes, rule.cooldown_minutes, rule.destination, rule.enabled, rule.updated_by]
        with self.db.transaction() as cur:
            if rule.rule_id is None:
                return int(cur.execute(
                    "INSERT INTO fg.alert_rules (name, kind, threshold, workflow_id, subject, min_runs, "
                    "window_minutes, cooldown_minutes, destination, enabled, updated_by, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now()) RETURNING rule_id", values).fetchall()[0][0])
            found = cur.execute(
                "UPDATE fg.alert_rules SET name = ?, kind = ?, threshold = ?, workflow_id = ?, subject = ?, "
                "min_runs = ?, window_minutes = ?, cooldown_minutes = ?, destination = ?, enabled = ?, "
                "updated_by = ?, updated_at = now() WHERE rule_id = ? RETURNING rule_id",
                [*values, rule.rule_id]).fetchall()
            if not found:
                raise KeyError(f"There is no alert rule {rule.rule_id}.")
            self._close_quietly(cur, rule.rule_id)
            return rule.rule_id

    def delete_rule(self, rule_id: int) -> bool:
        with self.db.transaction() as cur:
            gone = cur.execute("DELETE FROM fg.alert_rules WHERE rule_id = ? RETURNING rule_id", [rule_id]).fetchall()
            self._close_quietly(cur, rule_id)
        return bool(gone)

    def _close_quietly(self, cur: Cursor, rule_id: int) -> None:
        closed = cur.execute("UPDATE fg.alert_episodes SET resolved_at = now(), checked_at = now() "
                             "WHERE rule_id = ? AND resolved_at IS NULL RETURNING episode", [rule_id]).fetchall()
        if closed:
            self._changed(cur)

    # ------------------------------------------------------------ destinations

    def destinations(self) -> list[AlertDestinationRow]:
        rows = self.db.cursor().execute(
            "SELECT name, url_encrypted, masked, updated_at FROM fg.alert_destinations ORDER BY name").fetchall()
        return [AlertDestinationRow(*r) for r in rows]

    def put_destination(self, name: str, url_encrypted: str, masked: str) -> None:
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO fg.alert_destinations VALUES (?, ?, ?, now()) ON CONFLICT (name) DO UPDATE "
                        "SET url_encrypted = excluded.url_encrypted, masked = excluded.masked, "
                        "updated_at = excluded.updated_at", [name, url_encrypted, masked])

    def delete_destination(self, name: str) -> bool:
        """Rules that sent there keep their history and send nowhere until given another."""
        with self.db.transaction() as cur:
            gone = cur.execute("DELETE FROM fg.alert_destinations WHERE name = ? RETURNING name", [name]).fetchall()
            cur.execute("UPDATE fg.alert_rules SET destination = NULL WHERE destination = ?", [name])
        return bool(gone)

    def destination(self, name: str) -> str | None:
        rows = self.db.cursor().execute("SELECT url_encrypted FROM fg.alert_destinations WHERE name = ?",
                                        [name]).fetchall()
        return rows[0][0] if rows else None

    # ------------------------------------------------------------ episodes

    def open_episodes(self) -> dict[int, AlertEpisode]:
        return {e.rule_id: e for e in _episodes(self.db.cursor(), "WHERE resolved_at IS NULL")}

    def fire(self, rule: AlertRule, summary: str, runs: int, query: str, by: str, at: datetime) -> AlertEpisode | None:
        """Open an episode of `rule` and queue its message, unless one is open or the last closed less than the
        rule's cooldown ago (None then). The check and the insert are one transaction under the write lock."""
        assert rule.rule_id is not None
        with self.db.transaction() as cur:
            last = cur.execute("SELECT count(*) FILTER (resolved_at IS NULL), max(resolved_at) "
                               "FROM fg.alert_episodes WHERE rule_id = ?", [rule.rule_id]).fetchall()[0]
            if last[0] or (last[1] is not None and (at - last[1]).total_seconds() < rule.cooldown_minutes * 60):
                return None
            episode = int(cur.execute(
                "INSERT INTO fg.alert_episodes (rule_id, rule_name, kind, fired_at, summary, runs, query, fired_by, "
                "checked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING episode",
                [rule.rule_id, rule.name, rule.kind, at, summary, runs, query, by, at]).fetchall()[0][0])
            _queue(cur, episode, "fired", rule.destination, at)
            self._changed(cur)
            return _episodes(cur, "WHERE episode = ?", [episode])[0]

    def resolve(self, episode: int, at: datetime) -> AlertEpisode | None:
        """Close an open episode and queue its "resolved" message where its firing went (None: already closed)."""
        with self.db.transaction() as cur:
            done = cur.execute("UPDATE fg.alert_episodes SET resolved_at = ?, checked_at = ? "
                               "WHERE episode = ? AND resolved_at IS NULL RETURNING episode",
                               [at, at, episode]).fetchall()
            if not done:
                return None
            went = cur.execute("SELECT destination FROM fg.alert_deliveries WHERE episode = ? AND event = 'fired'",
                               [episode]).fetchall()
            _queue(cur, episode, "resolved", went[0][0] if went else None, at)
            self._changed(cur)
            return _episodes(cur, "WHERE episode = ?", [episode])[0]

    def still_firing(self, episodes: Sequence[int], at: datetime) -> None:
        """The condition of these open episodes was found holding at `at` (the CLI shows how fresh it is)."""
        if not episodes:
            return
        with self.db.transaction() as cur:
            cur.execute("UPDATE fg.alert_episodes SET checked_at = ? WHERE episode IN (SELECT unnest(?::BIGINT[])) "
                        "AND resolved_at IS NULL", [at, list(episodes)])
            self._changed(cur)

    def history(self, limit: int = 500) -> list[AlertEpisode]:
        """Newest first."""
        return _episodes(self.db.cursor(), "ORDER BY fired_at DESC, episode DESC LIMIT ?", [limit])

    # ------------------------------------------------------------ deliveries

    def pending(self) -> list[AlertDelivery]:
        """Messages queued and not yet delivered or given up on, oldest first."""
        cur = self.db.cursor()
        rows = cur.execute("SELECT delivery, event, destination, episode FROM fg.alert_deliveries "
                           "WHERE outcome = 'pending' ORDER BY delivery").fetchall()
        if not rows:
            return []
        episodes = {e.episode: e for e in _episodes(cur, "WHERE episode IN (SELECT unnest(?::BIGINT[]))",
                                                    [[r[3] for r in rows]])}
        return [AlertDelivery(r[0], r[1], r[2], episodes[r[3]]) for r in rows]

    def delivered(self, delivery: int, ok: bool, attempts: int, reason: str | None, at: datetime) -> None:
        with self.db.transaction() as cur:
            cur.execute("UPDATE fg.alert_deliveries SET outcome = ?, attempts = ?, reason = ?, sent_at = ? "
                        "WHERE delivery = ?", ["delivered" if ok else "undelivered", attempts, reason, at, delivery])
            self._changed(cur)
