"""One number everywhere: for every Runs filter field (and every pair of them), the Runs page's "Matching runs",
the bulk button's count, the dialog's count and the runs the bulk takes agree with a plain count of the
`runs` view worked out in Python."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from fourgent.filters import RunFilter, RunsQuery, runs_query
from fourgent.spec import MISSING_FIELD_PATTERN
from fourgent.store.duckdb import DuckDBStore
from fourgent.workspace import broken_apps
from helpers import button, load_demo, metric, open_app

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def pattern(message: str) -> str:
    message = re.sub(r"'[^']*'|\"[^\"]*\"", "…", message)
    return re.sub(r"[A-Za-z0-9_.-]*[0-9][A-Za-z0-9_.-]*", "#", message)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A store of 3,000 demo runs over 30 days (every status, kind and app; re-triggers that resolve) and the
    rows of its `runs` view, read plainly."""
    folder = tmp_path_factory.mktemp("one-count")
    store = DuckDBStore(folder / "store.duckdb")
    load_demo(store, folder / "logs", 3000, now=NOW)
    assert store.rollups_current()
    cur = store.db.cursor().execute("SELECT * FROM runs")
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    yield store, rows
    store.close()


def latest_child(rows: list[dict]) -> dict[str, str]:
    """Each re-triggered run's latest re-trigger's status."""
    latest: dict[str, tuple[datetime, str]] = {}
    for r in rows:
        if r["retrigger_of"] and (r["retrigger_of"] not in latest or r["started_at"] > latest[r["retrigger_of"]][0]):
            latest[r["retrigger_of"]] = (r["started_at"], r["status"])
    return {run: status for run, (_, status) in latest.items()}


def unresolved_ids(rows: list[dict]) -> set[str]:
    latest = latest_child(rows)
    return {r["id"] for r in rows if r["status"] == "failed" and not r["retrigger_of"]
            and latest.get(r["id"]) != "finished"}


def resolved_ids(rows: list[dict]) -> set[str]:
    latest = latest_child(rows)
    return {r["id"] for r in rows if r["status"] == "failed" and not r["retrigger_of"]
            and latest.get(r["id"]) == "finished"}


def by_hand(rows: list[dict], f: RunFilter) -> set[str]:
    """The runs a filter means, from the documented meaning of each field (README's URL contract)."""
    unresolved = unresolved_ids(rows) if f.unresolved else set()
    resolved = resolved_ids(rows) if f.resolved else set()

    def keep(r: dict) -> bool:
        failed = r["status"] == "failed"
        return all((
            not f.q or f.q.lower() in (r["reference"] or "").lower() or f.q.lower() in r["id"].lower(),
            not f.statuses or r["status"] in f.statuses,
            not f.workflows or r["workflow_id"] in f.workflows,
            f.start is None or r["started_at"] >= f.start,
            f.end is None or r["started_at"] < f.end,
            not f.unresolved or r["id"] in unresolved,
            not f.kinds or (failed and r["error_kind"] in f.kinds),
            not f.apps or (failed and r["failed_app"] in f.apps),
            not f.error or (failed and r["error_message"] is not None and pattern(r["error_message"]) == f.error),
            not f.originals or r["retrigger_of"] is None,
            not f.resolved or r["id"] in resolved,
        ))

    return {r["id"] for r in rows if keep(r)}


def field_values(rows: list[dict]) -> dict[str, dict[str, object]]:
    """One value per RunFilter field that narrows these rows to some, not all, of them."""
    failed = [r for r in rows if r["status"] == "failed"]
    busiest = Counter(r["workflow_id"] for r in rows).most_common(1)[0][0]
    top_error = Counter(pattern(r["error_message"]) for r in failed if r["error_message"]).most_common(1)[0][0]
    top_app = Counter(r["failed_app"] for r in failed if r["failed_app"]).most_common(1)[0][0]
    reference = next(r["reference"] for r in rows if r["reference"] and len(r["reference"]) > 6)
    return {
        "q": {"q": reference[2:6].lower()},
        "statuses": {"statuses": ("failed", "skipped")},
        "workflows": {"workflows": (busiest,)},
        "start": {"start": NOW - timedelta(days=6)},
        "end": {"end": NOW - timedelta(days=9, hours=5)},
        "unresolved": {"unresolved": True},
        "kinds": {"kinds": ("auth", "validation")},
        "apps": {"apps": (top_app,)},
        "error": {"error": top_error},
        "originals": {"originals": True},
        "resolved": {"resolved": True},
    }


FIELDS = ["q", "statuses", "workflows", "start", "end", "unresolved", "kinds", "apps", "error", "originals",
          "resolved"]
CASES = [(f,) for f in FIELDS] + list(itertools.combinations(FIELDS, 2))


def test_the_cases_cover_every_filter_field():
    from dataclasses import fields

    assert {f.name for f in fields(RunFilter)} == set(FIELDS)


@pytest.mark.parametrize("case", CASES, ids=["+".join(c) for c in CASES])
def test_every_count_of_a_filter_agrees_with_a_plain_count(world, case):
    store, rows = world
    values = field_values(rows)
    f = RunFilter(**{k: v for name in case for k, v in values[name].items()})  # type: ignore[arg-type]
    expected = by_hand(rows, f)
    assert store.runs_view(f).total == store.count(f) == len(expected)
    assert set(store.select_ids(f)) == expected
    selection = f.bulk_selection()
    bulk = by_hand(rows, selection) if selection else set()
    assert store.unresolved_count(f) == len(bulk), "the bulk button's count"
    assert (set(store.select_ids(selection)) if selection else set()) == bulk, "the runs the bulk takes"
    if len(case) == 1:
        assert 0 < len(expected) < len(rows), f"{case} should narrow the runs"


@pytest.fixture
def page_world(dashboard):
    """The dashboard over 3,000 demo runs written on its first start (its demo apps answer re-triggers)."""
    dashboard(3000)
    from ui.workspace import workspace

    ws = workspace()
    cur = ws.store.db.cursor().execute("SELECT * FROM runs")
    names = [d[0] for d in cur.description]
    return ws, [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def futile_by_hand(rows: list[dict], ids: set[str], broken: list[str]) -> set[str]:
    """Failures a replay cannot fix, from the rule's words: an auth failure at an app whose connection is
    broken, or a validation failure whose payload lacks the field its error names."""
    out = set()
    for r in rows:
        if r["id"] not in ids:
            continue
        named = re.search(MISSING_FIELD_PATTERN, r["error_message"] or "")
        payload = json.loads(r["trigger_payload"] or "{}")
        if (r["error_kind"] == "auth" and r["failed_app"] in broken) or (
                r["error_kind"] == "validation" and named and payload.get(named.group(1)) in (None, "")):
            out.add(r["id"])
    return out


PAGE_FIELDS = ["q", "statuses", "workflows", "unresolved", "kinds", "apps", "error", "originals", "window", "days"]


@pytest.mark.parametrize("field", PAGE_FIELDS)
def test_the_page_the_button_the_dialog_and_the_bulk_show_one_number(page_world, field):
    ws, rows = page_world
    now = datetime.now(UTC)
    values = field_values(rows)
    if field == "window":
        query = runs_query(now - timedelta(days=8), now - timedelta(days=2))
    elif field == "days":  # whole days, in UTC (tz=utc below)
        query = RunsQuery(range="custom", days=((now - timedelta(days=9)).date(), (now - timedelta(days=3)).date()))
    else:
        query = RunsQuery(**{k: v for k, v in values[field].items()})  # type: ignore[arg-type]
    f = query.filter(now, UTC)
    expected = by_hand(rows, f)
    selection = f.bulk_selection()
    bulk = by_hand(rows, selection) if selection else set()
    at = open_app(**query.link(), tz="utc")
    assert metric(at, "Matching runs") == len(expected)
    label = button(at, "↻ Re-trigger the").label
    assert label.startswith(f"↻ Re-trigger the {len(bulk):,} unresolved failed run"), label
    button(at, "↻ Re-trigger the").click().run()
    assert any(t.value.startswith(f"{len(bulk):,} unresolved failed run") for t in at.text), "the dialog's count"
    said = replace(query, utc=True).describe(dict(ws.store.workflows()))
    assert f"Of: {said}" in [t.value for t in at.text], "the dialog says which runs in words"
    # What a replay cannot fix now is left out by default, and said: the count is what the bulk takes.
    take = bulk - futile_by_hand(rows, bulk, broken_apps(ws))
    button(at, f"Re-trigger {len(take):,} run").click().run()
    job = at.session_state["bulk_job"]
    job.wait(120)
    assert job.total == len(take), "the runs the bulk takes"
