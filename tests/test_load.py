"""Many sessions at once against the served dashboard, over Streamlit's own websocket (ui/load.py)."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest

from fourgent.config import Paths
from fourgent.store.duckdb import DuckDBStore
from helpers import ROOT, load_demo, open_app, run_line
from ui import pages
from ui.load import RUNS, LoadReport, PageRun, Visit, load, served, visits_from_logs, warm

# The shape of the defect issue 17 measured (1.1% of page runs): a page object that outlives one script run,
# kept where every session's run reaches it (the pages dict at module level that app.py refilled on each run).
# Two sessions ordain the same object; the second .run() is refused. The pause widens the window that
# building seven pages and the navigation used to leave open under load.
SHARED_PAGES_APP = '''
import time
import streamlit as st
import shared_pages

if shared_pages.HOME is None:
    shared_pages.HOME = st.Page(shared_pages.home, title="Home", default=True)
page = st.navigation([shared_pages.HOME])
time.sleep(0.2)
page.run()
'''
SHARED_PAGES_MODULE = '''
import streamlit as st

HOME = None

def home():
    st.write("home")
'''


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory) -> Path:
    """A data folder with 3,000 demo runs already in its store (the dashboard only refreshes it)."""
    data = tmp_path_factory.mktemp("load") / "data"
    store = DuckDBStore(Paths(data).ensure().db_path)
    load_demo(store, data / "logs", 3000)
    store.close()
    return data


def test_twenty_sessions_at_once_see_no_error_on_any_page(demo_data):
    visits = visits_from_logs(demo_data / "logs")
    with served(demo_data) as (url, pid):
        warmed = warm(url, visits)
        report = load(url, visits, sessions=20, seconds=30, dwell=(0.2, 1.5), pid=pid)
    assert {r.visit.page for r in warmed} == {v.page for v in visits} and not [r for r in warmed if r.errors]
    assert report.failed == [], report.summary()
    # The load was real: the sessions ran at once, each opening pages in a row (how many depends on the machine).
    assert len(report.views) >= 2 * 20, report.summary()
    assert max(r.started for r in report.views) - min(r.started for r in report.views) > 15
    assert report.memory and all(b > 0 for _, b in report.memory)


def test_the_load_sees_the_refused_page_run_that_a_shared_page_object_causes(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "app.py").write_text(SHARED_PAGES_APP)
    (app / "shared_pages.py").write_text(SHARED_PAGES_MODULE)
    with served(tmp_path / "data", entry="app.py", cwd=app) as (url, _):
        report = load(url, [Visit(RUNS)], sessions=6, seconds=6, dwell=(0.0, 0.05))
    refused = [r for r in report.failed if any("cannot be called directly" in e for e in r.errors)]
    assert refused, report.summary()


def _held(value: object, depth: int = 3) -> list[object]:
    """The value and what its containers hold, a few levels down."""
    if depth == 0:
        return [value]
    inside = value.values() if isinstance(value, dict) else value if isinstance(value, list | tuple | set) else ()
    return [value, *(held for v in inside for held in _held(v, depth - 1))]


def test_after_the_dashboards_pages_ran_no_imported_module_keeps_a_page_object(sampled_app):
    """Pages are made in app.py on every run (its st.Page calls), never kept in a module that every session
    imports once: the old ui.PAGES dict, refilled by each run, was the shared object the defect needed."""
    import streamlit as st

    at = open_app()
    for page in (pages.RUN, pages.OVERVIEW, pages.WORKFLOWS):
        at.switch_page(page).run()
        assert not at.exception, at.exception
    ours = [m for m in list(sys.modules.values())
            if str(getattr(m, "__file__", "") or "").startswith(str(ROOT)) and "/tests/" not in str(m.__file__)]
    assert any(m.__name__ == "ui.pages" for m in ours)
    kept = [f"{m.__name__}.{name}" for m in ours for name, value in vars(m).items()
            if any(isinstance(v, st.Page) for v in _held(value))]
    assert not kept, f"page objects kept between runs: {kept}"


class _Silent:
    """A socket the server never answers on."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def recv(self, timeout: float | None = None) -> bytes:
        raise TimeoutError

    def close(self) -> None:
        self.closed = True


def test_a_page_that_never_finishes_is_an_error_not_a_time_and_the_tab_is_opened_again(monkeypatch):
    import ui.load

    sockets = [_Silent(), _Silent()]
    monkeypatch.setattr(ui.load, "_open", lambda url: sockets.pop(0))
    monkeypatch.setattr(ui.load, "ANSWER_TIMEOUT_S", 0.01)
    session = ui.load.Session("http://127.0.0.1:1")
    first = session.ws
    run = session.run(Visit(RUNS), 0.0)
    assert run.errors == ("no answer in 0 s",) and first.closed and session.ws is not first and not sockets
    report = LoadReport(1, 1.0, runs=[run, PageRun(Visit("overview"), 1.0, 0.5)])
    assert len(report.failed) == 1 and report.quantile(0.5) == report.quantile(1.0) == 0.5
    assert "1 with an error (50.00%)" in report.summary() and "no answer in 0 s" in report.summary()


def test_a_session_reading_the_runs_page_sends_the_live_tables_reruns_as_the_browser_does(demo_data):
    visits = [Visit(RUNS), Visit(RUNS, "status=failed")]
    with served(demo_data) as (url, pid):
        warm(url, visits)
        report = load(url, visits, sessions=2, seconds=16, dwell=(11.0, 12.0), pid=pid)
    live = [r for r in report.runs if r.fragment]
    assert live and report.failed == [], report.summary()
    assert "live-table rerun: median" in report.summary()


def test_visits_are_drawn_from_the_logs_skipping_lines_that_are_not_runs(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_text("not json\n" + json.dumps(run_line("run_a", workflow={"id": "wf-a"})) + "\n")
    with gzip.open(logs / "b.jsonl.1.gz", "wt") as f:
        f.write(json.dumps(run_line("run_b")) + "\n[1, 2]\n")
    visits = visits_from_logs(logs)
    assert Visit("run", "id=run_a") in visits and Visit("run", "id=run_b") in visits
    assert Visit(RUNS, "workflow=wf-a") in visits
    assert {"overview", "workflows", "how-it-works", RUNS} <= {v.page for v in visits}


def test_no_runs_in_the_logs_is_said_in_words(tmp_path):
    (tmp_path / "logs").mkdir()
    with pytest.raises(SystemExit, match="no runs in"):
        visits_from_logs(tmp_path / "logs")
