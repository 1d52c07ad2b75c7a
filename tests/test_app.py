"""The dashboard in Streamlit's AppTest: first start seeds demo runs; a held store shows a message, not a traceback."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from helpers import ROOT


@pytest.fixture
def app_env(dashboard):
    return dashboard(1500)


def test_first_start_seeds_demo_runs_and_shows_the_newest(app_env):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Workflow Runs"
    frame = at.dataframe[0].value
    assert len(frame) == 50
    assert frame["Started"].is_monotonic_decreasing
    runs = int(at.metric[0].value.replace(",", ""))
    assert runs >= 1500  # demo snapshots and re-triggers come on top of the runs asked for
    assert (app_env / "logs").is_dir() and any((app_env / "logs").glob("demo-*.jsonl"))


def test_a_store_held_elsewhere_shows_a_plain_message(app_env, monkeypatch):
    import fourgent.store as store_module

    def busy(*args, **kwargs):
        raise store_module.StoreBusy(app_env / "fourgent.duckdb", 4242)

    monkeypatch.setattr("fourgent.workspace.open_store", busy)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert "in use by process 4242" in at.error[0].value
