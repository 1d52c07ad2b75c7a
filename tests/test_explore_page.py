"""The Explore page in AppTest: run, examples, the URL, history, refusals and errors as text, a chart."""

from __future__ import annotations

import json
import threading
import time

import pytest
from streamlit.testing.v1 import AppTest

from fourgent import results
from fourgent.store.duckdb import examples
from helpers import APP, open_page


@pytest.fixture
def demo(dashboard):
    return dashboard(3000, FOURGENT_SQL_TIMEOUT="3")


def explore(**params: str) -> AppTest:
    return open_page("app_pages/explore.py", **params)


def run(at: AppTest, sql: str) -> AppTest:
    at.text_area(key="x_sql").set_value(sql)
    next(b for b in at.button if b.label == "▶ Run").click().run()
    assert not at.exception, at.exception
    return at


def rows_caption(at: AppTest) -> str:
    return next(c.value for c in at.caption if " row" in c.value and " ms" in c.value)


def test_each_example_from_the_menu_runs_and_shows_rows(demo):
    at = explore()
    for title in examples.EXAMPLES:
        next(b for b in at.button if b.label == title).click().run()
        assert at.text_area(key="x_sql").value == examples.EXAMPLES[title]
        next(b for b in at.button if b.label == "▶ Run").click().run()
        assert not at.exception, title
        assert not rows_caption(at).startswith("0 rows"), title
        assert at.query_params["sql"] == examples.EXAMPLES[title]


def test_a_link_fills_the_editor_and_runs_nothing_until_run_is_pressed(demo):
    at = explore(sql="SELECT status, count(*) AS n FROM runs GROUP BY ALL ORDER BY status")
    assert at.text_area(key="x_sql").value.startswith("SELECT status")
    assert "x_outcome" not in at.session_state  # nothing ran
    assert at.info[0].value.startswith("This query came with a link")
    next(b for b in at.button if b.label == "▶ Run").click().run()
    assert rows_caption(at).startswith("5 rows")
    assert list(at.dataframe[-1].value.columns) == ["status", "n"]


def test_a_linked_write_never_runs_and_would_change_nothing(demo):
    from ui.workspace import workspace

    store = workspace().store
    before = store.paused()
    sql = "WITH x AS (INSERT INTO fg.paused VALUES ('all', now(), 'attacker') RETURNING *) SELECT * FROM x"
    at = explore(sql=sql)
    assert "x_outcome" not in at.session_state
    at = run(at, sql)  # pressed anyway: it runs in the worker, over the read-only snapshot
    assert at.error or at.warning
    assert store.paused() == before


def test_returning_by_the_back_button_shows_the_query_of_the_url_in_the_editor(demo):
    at = run(explore(), "SELECT 42 AS answer")
    at.switch_page("app_pages/workflows.py").run()  # another page's run: Streamlit drops the editor's state
    at.query_params["sql"] = "SELECT 42 AS answer"  # what Back restores: this page's URL
    at.switch_page("app_pages/explore.py").run()
    assert at.text_area(key="x_sql").value == "SELECT 42 AS answer"
    assert list(at.dataframe[-1].value.columns) == ["answer"]


def test_a_refused_query_says_why_as_text_and_nothing_runs(demo):
    at = run(explore(), "SELECT * FROM fg.connections")
    assert at.warning[0].value.startswith("Not run")
    assert "not fg.connections" in at.code[-1].value


def test_a_failing_query_shows_duckdbs_words_not_a_traceback(demo):
    at = run(explore(), "SELECT **bold** FROM runs")
    assert at.error[0].value == "DuckDB could not run the query:"
    assert "Parser Error" in at.code[-1].value and "Traceback" not in at.code[-1].value


def test_the_time_limit_stops_a_long_query(demo):
    at = run(explore(), "SELECT count(*) FROM range(1000000000000)")
    assert "stopped after its time limit of 3 s" in at.error[0].value


def test_history_lists_this_sessions_queries_newest_first(dashboard):
    # Not a test of the time limit: on a loaded CI machine a 3 s limit once stopped `SELECT 2` (its worker's
    # start counts), and the history read "did not run".
    dashboard(3000, FOURGENT_SQL_TIMEOUT="60")
    at = explore()
    for sql in ("SELECT 1 AS one", "SELECT 2 AS two", "SELECT nope FROM runs"):
        run(at, sql)
    labels = [b.label for b in at.button if " · " in b.label and ("rows" in b.label or "did not run" in b.label)]
    assert labels[:3] == ["`SELECT nope FROM runs` · did not run", "`SELECT 2 AS two` · 1 rows",
                          "`SELECT 1 AS one` · 1 rows"]  # code spans: a query's text is never Markdown


def test_column_names_from_a_linked_query_are_not_html_in_the_chart(demo):
    at = explore(sql="""SELECT started_at AS "<a href='https://evil.example/'>Click</a>", duration_ms AS "<b>dur</b>"
                        FROM runs LIMIT 50""")
    next(b for b in at.button if b.label == "▶ Run").click().run()
    spec = json.dumps(json.loads(at.get("plotly_chart")[0].proto.spec))
    assert "<a href" not in spec and "<b>dur</b>" not in spec
    assert "&lt;a href=" in spec and "&lt;b&gt;dur&lt;/b&gt;" in spec


def test_a_time_and_a_number_offer_a_chart(demo):
    at = run(explore(), examples.EXAMPLES["Runs per hour, last 48 hours"])
    assert at.selectbox(key="x_chart_x").value == "hour" and at.selectbox(key="x_chart_y").value == "runs"
    assert len(at.get("plotly_chart")) == 1


def test_big_results_are_paged_and_capped_with_the_count(demo):
    at = run(explore(), "SELECT * FROM range(25000) t(i)")
    assert rows_caption(at).startswith(f"the first {results.MAX_ROWS:,} of 25,000 rows")
    assert len(at.dataframe[-1].value) == 100
    at.number_input(key="x_page").set_value(3).run()
    assert at.dataframe[-1].value["i"].iloc[0] == 200


def test_the_runs_page_answers_while_another_session_runs_a_long_query(demo):
    explore()  # opens the process's store, as the dashboard's first visitor would
    long_session = AppTest.from_file(APP, default_timeout=60).run()
    long_session.switch_page("app_pages/explore.py").run()
    long_session.text_area(key="x_sql").set_value("SELECT count(*) FROM range(1000000000000)")
    button = next(b for b in long_session.button if b.label == "▶ Run")
    worker = threading.Thread(target=lambda: button.click().run())
    worker.start()
    time.sleep(0.5)
    started = time.perf_counter()
    runs = AppTest.from_file(APP, default_timeout=60).run()
    took = time.perf_counter() - started
    assert not runs.exception and runs.title[0].value == "Workflow Runs"
    assert int(next(m.value for m in runs.metric if m.label == "Matching runs").replace(",", "")) > 3000
    worker.join()
    assert "time limit" in long_session.error[0].value
    assert took < 3  # answered before the long query's 3 s limit ran out
