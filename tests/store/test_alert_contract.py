"""The AlertBook contract, on every engine: rules and destinations kept, one open episode per rule, its messages
queued with it and recorded once sent."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from fourgent.store import AlertRule

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _rule(store, **fields) -> AlertRule:
    rule_id = store.put_alert_rule(AlertRule(**{"name": "r", "kind": "stuck", "threshold": 30.0,
                                                "cooldown_minutes": 10, "updated_by": "t", **fields}))
    return next(r for r in store.alert_rules() if r.rule_id == rule_id)


def test_rules_are_added_replaced_and_deleted(alert_book):
    rule = _rule(alert_book, destination=None)
    assert (rule.name, rule.kind, rule.threshold, rule.enabled) == ("r", "stuck", 30.0, True)
    alert_book.put_alert_rule(replace(rule, name="renamed", enabled=False))
    assert [(r.name, r.enabled) for r in alert_book.alert_rules()] == [("renamed", False)]
    assert alert_book.delete_alert_rule(rule.rule_id) and alert_book.alert_rules() == []
    assert not alert_book.delete_alert_rule(rule.rule_id)


def test_destinations_are_kept_encrypted_as_given_and_removing_one_unsets_its_rules(alert_book):
    alert_book.put_alert_destination("ops", "ciphertext-1", "json://h/••••")
    alert_book.put_alert_destination("ops", "ciphertext-2", "json://h/••••")
    assert [(d.name, d.url_encrypted) for d in alert_book.alert_destinations()] == [("ops", "ciphertext-2")]
    _rule(alert_book, destination="ops")
    assert alert_book.alert_destination("ops") == "ciphertext-2"
    assert alert_book.delete_alert_destination("ops")
    assert alert_book.alert_destination("ops") is None and alert_book.alert_rules()[0].destination is None


def test_one_open_episode_per_rule_its_messages_and_the_cooldown(alert_book):
    alert_book.put_alert_destination("ops", "c", "m")
    rule = _rule(alert_book, destination="ops")
    first = alert_book.fire_alert(rule, "held", 3, "status=failed", "cli", T0)
    assert first is not None and first.firing and first.fired_delivery == "pending"
    assert alert_book.fire_alert(rule, "held", 3, "status=failed", "dashboard", T0) is None
    assert list(alert_book.open_alert_episodes()) == [rule.rule_id]
    [pending] = alert_book.pending_alerts()
    assert (pending.event, pending.destination, pending.episode.episode) == ("fired", "ops", first.episode)
    alert_book.alert_delivered(pending.delivery, True, 1, None, T0)
    assert alert_book.pending_alerts() == []
    closed = alert_book.resolve_alert(first.episode, T0 + timedelta(minutes=1))
    assert closed is not None and closed.resolved_delivery == "pending" and closed.fired_delivery == "delivered"
    assert alert_book.resolve_alert(first.episode, T0 + timedelta(minutes=2)) is None  # once
    assert alert_book.fire_alert(rule, "again", 1, "", "cli", T0 + timedelta(minutes=5)) is None  # cooling down
    again = alert_book.fire_alert(rule, "again", 1, "", "cli", T0 + timedelta(minutes=12))
    assert again is not None
    assert [e.episode for e in alert_book.alert_history()] == [again.episode, first.episode]
