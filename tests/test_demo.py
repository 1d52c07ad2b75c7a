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


def test_the_last_day_is_an_ordinary_day_with_an_incident_of_a_few_hours():
    """A fresh start's 24 h against the day before reads as a few bad hours, not a spike of runs or failures."""
    by_day: dict[int, Counter] = {}
    for r in runs(20_000):
        if r["status"] == "running" and "updated_at" in r:
            continue  # an early snapshot of a run written again when it ended
        age = NOW - datetime.fromisoformat(r["started_at"])
        by_day.setdefault(age.days, Counter())[r["status"]] += 1
        if age.days == 0 and age >= timedelta(hours=demo.EXPIRED_HOURS):
            by_day.setdefault(-1, Counter())[r["status"]] += 1  # the last day outside the incident
    day = [sum(by_day[d].values()) for d in range(7)]
    assert max(day) / min(day) < 1.1, day  # as many runs today as on any other day
    rate = {d: c["failed"] / sum(c.values()) for d, c in by_day.items()}
    usual = sum(rate[d] for d in range(1, 7)) / 6
    assert rate[0] < 2.5 * usual, (rate[0], usual)  # the day reads worse, not ruined
    assert rate[-1] < 1.8 * usual, (rate[-1], usual)  # and only its incident hours are worse
    assert demo.EXPIRED_HOURS <= 6
