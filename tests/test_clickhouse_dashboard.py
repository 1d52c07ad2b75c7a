"""The dashboard with FOURGENT_STORE pointing at ClickHouse (chDB in this process): every page, the demo's story
(the expired credential, reconnect, bulk re-trigger), a comment and the CLI, as on the embedded store."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from fourgent.cli import main
from fourgent.filters import RunFilter
from fourgent.store import _instances, close_store
from fourgent.store.clickhouse import ClickHouseStore
from fourgent.workspace import connections, demo_sandbox, demo_token
from helpers import APP, button, open_app
from ui.workspace import workspace

QB_FLOW = "hubspot-closed-won-quickbooks-invoice"
PAGES = ("overview", "workflows", "connections", "explore", "alerts", "how_it_works", "audit")


def _close_all() -> None:
    # chDB holds one folder per process: the next test's folder can only open once this one is closed.
    st.cache_resource.clear()
    for store in list(_instances.values()):
        close_store(store)


@pytest.fixture
def on_clickhouse(dashboard, tmp_path) -> Iterator:
    """dashboard(...) with FOURGENT_STORE set to a chDB folder of the test's own."""
    url = f"chdb://{tmp_path / 'clickhouse'}"

    def setup(*args, **kwargs):
        return dashboard(*args, FOURGENT_STORE=url, **kwargs)

    _close_all()
    yield setup
    _close_all()


def store() -> ClickHouseStore:
    held = workspace().store
    assert isinstance(held, ClickHouseStore)
    return held


def with_samples(data, samples):
    for f in samples.glob("*.jsonl"):
        shutil.copy(f, data / "logs" / f.name)
    return data


def runs_table(at: AppTest):
    return next(d.value for d in at.dataframe if "Started" in d.value.columns)


def test_every_page_renders_from_clickhouse_with_the_runs_it_ingested(on_clickhouse, samples):
    with_samples(on_clickhouse(), samples)
    at = open_app()
    assert at.title[0].value == "Workflow Runs" and not at.error
    assert int(at.metric[0].value.replace(",", "")) == 356 == store().run_count()
    frame = runs_table(at)
    assert len(frame) == 50 and frame["Started"].is_monotonic_decreasing
    failed = open_app(status="failed")
    assert int(failed.metric[0].value.replace(",", "")) == store().count(RunFilter(statuses=("failed",)))
    for page in PAGES:
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception and not at.error, (page, at.exception, [e.value for e in at.error])


def test_the_demo_story_runs_on_clickhouse_reconnect_then_bulk_re_trigger(on_clickhouse):
    on_clickhouse(1500)
    sandbox = demo_sandbox()
    try:
        at = open_app(workflow=QB_FLOW, unresolved="1")
        unresolved = RunFilter(workflows=(QB_FLOW,), unresolved=True)
        before = store().count(unresolved)
        assert before > 0 and button(at, "↻ Re-trigger the").label == (
            f"↻ Re-trigger the {before:,} unresolved failed runs matching these filters")
        connections(workspace()).save("QuickBooks", "http://sandbox/quickbooks", demo_token("QuickBooks"))
        at = open_app(workflow=QB_FLOW, unresolved="1")
        button(at, "↻ Re-trigger the").click().run()
        button(at, "Re-trigger ").click().run()
        assert not at.exception, at.exception
        assert at.session_state["bulk_job"].wait(180)
        at.run()
        store().ingest([workspace().paths.logs_dir], logs_dir=workspace().paths.logs_dir)  # the replays' lines
        assert store().count(unresolved) < before
        # Every replay that failed at QuickBooks' credential is finished now: no auth failure is left unresolved.
        assert store().count(RunFilter(workflows=(QB_FLOW,), unresolved=True, kinds=("auth",))) == 0
        bulk = [e for e in store().audit_entries(action="bulk re-trigger")]
        assert bulk and bulk[0].outcome == "ok"
        assert not store().claimed()  # every claim released once the bulk ended
    finally:
        sandbox.delay_s.clear()


def test_a_comment_made_on_a_run_page_is_kept_in_clickhouse(on_clickhouse, samples):
    with_samples(on_clickhouse(), samples)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.query_params["id"] = "run_01000000170"
    at.switch_page("app_pages/run_detail.py").run()
    assert not at.exception and not at.error
    body = "Reconnected Slack; <b>re-trigger</b> after lunch."
    at.text_area[0].set_value(body)
    next(b for b in at.button if b.label == "Add comment").click().run()
    assert any(t.value == body for t in at.text)  # shown as text, not HTML
    assert [c.body for c in store().comments("run_01000000170")] == [body]
    assert store().audit_entries(action="comment")[0].target == "run_01000000170"


def test_the_cli_reads_and_writes_the_clickhouse_store_fourgent_store_names(on_clickhouse, samples, capsys):
    on_clickhouse()
    _close_all()  # the CLI is its own process here: it opens the store itself
    assert main(["ingest", str(samples)]) == 0
    assert "369 lines = 361 snapshots stored + 8 rejected" in capsys.readouterr().out
    assert main(["sql", "SELECT count() AS n FROM runs", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 356}]
    # Only the views: the table is not in the views' database, and naming its own database is refused.
    assert main(["sql", "SELECT * FROM connections"]) == 1
    assert "Unknown table" in capsys.readouterr().err
    assert main(["sql", "SELECT * FROM fourgent.connections"]) == 2
    assert "Only the documented views can be read" in capsys.readouterr().err
