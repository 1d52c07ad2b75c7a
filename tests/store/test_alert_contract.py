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


def test_rules_are_added_replaced_and_deleted(engine_store):
    rule = _rule(engine_store, destination=None)
    assert (rule.name, rule.kind, rule.threshold, rule.enabled) == ("r", "stuck", 30.0, True)
    engine_store.put_alert_rule(replace(rule, name="renamed", enabled=False))
    assert [(r.name, r.enabled) for r in engine_store.alert_rules()] == [("renamed", False)]
    assert engine_store.delete_alert_rule(rule.rule_id) and engine_store.alert_rules() == []
    assert not engine_store.delete_alert_rule(rule.rule_id)


def test_destinations_are_kept_encrypted_as_given_and_removing_one_unsets_its_rules(engine_store):
    engine_store.put_alert_destination("ops", "ciphertext-1", "json://h/••••")
    engine_store.put_alert_destination("ops", "ciphertext-2", "json://h/••••")
    assert [(d.name, d.url_encrypted) for d in engine_store.alert_destinations()] == [("ops", "ciphertext-2")]
    _rule(engine_store, destination="ops")
    assert engine_store.alert_destination("ops") == "ciphertext-2"
    assert engine_store.delete_alert_destination("ops")
    assert engine_store.alert_destination("ops") is None and engine_store.alert_rules()[0].destination is None


def test_one_open_episode_per_rule_its_messages_and_the_cooldown(engine_store):
    engine_store.put_alert_destination("ops", "c", "m")
    rule = _rule(engine_store, destination="ops")
    first = engine_store.fire_alert(rule, "held", 3, "status=failed", "cli", T0)
    assert first is not None and first.firing and first.fired_delivery == "pending"
    assert engine_store.fire_alert(rule, "held", 3, "status=failed", "dashboard", T0) is None
    assert list(engine_store.open_alert_episodes()) == [rule.rule_id]
    [pending] = engine_store.pending_alerts()
    assert (pending.event, pending.destination, pending.episode.episode) == ("fired", "ops", first.episode)
    engine_store.alert_delivered(pending.delivery, True, 1, None, T0)
    assert engine_store.pending_alerts() == []
    closed = engine_store.resolve_alert(first.episode, T0 + timedelta(minutes=1))
    assert closed is not None and closed.resolved_delivery == "pending" and closed.fired_delivery == "delivered"
    assert engine_store.resolve_alert(first.episode, T0 + timedelta(minutes=2)) is None  # once
    assert engine_store.fire_alert(rule, "again", 1, "", "cli", T0 + timedelta(minutes=5)) is None  # cooling down
    again = engine_store.fire_alert(rule, "again", 1, "", "cli", T0 + timedelta(minutes=12))
    assert again is not None
    assert [e.episode for e in engine_store.alert_history()] == [again.episode, first.episode]
