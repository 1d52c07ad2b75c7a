"""The demo data: realistic proportions, and the expired-QuickBooks story confined to its window and app."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from fourgent import demo

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def runs(n: int = 6000) -> list[dict]:
    """The runs as first fired (re-triggers left out), early snapshots included."""
    return [r for r in demo.generate(n, now=NOW) if "retrigger_of" not in r]


def test_failures_stay_a_small_share_in_every_workflow():
    by_wf: dict[str, Counter] = {}
    for r in runs():
        by_wf.setdefault(r["workflow"]["id"], Counter())[r["status"]] += 1
    assert len(by_wf) == len(demo.WORKFLOWS)
    for wf, counts in by_wf.items():
        assert counts["failed"] / sum(counts.values()) < 0.2, (wf, counts)


def test_only_runs_reaching_the_expired_app_in_its_window_fail_with_auth_there():
    window = NOW - timedelta(hours=demo.EXPIRED_HOURS)
    recent = [r for r in runs() if datetime.fromisoformat(r["started_at"]) >= window]
    assert recent
    for r in recent:
        apps = [s["app"] for s in r["steps"]]
        if r["workflow"]["id"].startswith("hubspot-") and r["status"] in ("finished", "failed"):
            assert r["status"] == "failed" and r["error"]["kind"] == "auth"
            assert r["steps"][r["error"]["step"]]["app"] == demo.EXPIRED_APP
        elif r["status"] == "failed" and r["error"]["kind"] == "auth":
            assert apps[r["error"]["step"]] != demo.EXPIRED_APP


def test_validation_failures_lack_a_required_field_and_their_replays_fail_the_same_way():
    from fourgent import workflows

    required = {wf.id: set(wf.required) for wf in workflows.load(workflows.BUILTIN_DIR).values()}
    everything = list(demo.generate(6000, now=NOW))
    invalid = {r["id"]: r for r in everything if r["status"] == "failed" and r["error"]["kind"] == "validation"}
    assert invalid
    for r in invalid.values():
        field = r["error"]["message"].removeprefix("Missing required field: ")
        assert field in required[r["workflow"]["id"]] and r["trigger_payload"][field] is None, r["id"]
    replays = [r for r in everything if r.get("retrigger_of") in invalid]
    assert replays and all(r["status"] == "failed" and r["error"]["kind"] == "validation" for r in replays)
    assert all(r["trigger_payload"] == invalid[r["retrigger_of"]]["trigger_payload"] for r in replays)
