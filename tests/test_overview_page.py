"""The Overview, Workflows and How it works pages in AppTest; what they link to opens the same runs on the Runs page."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from fourgent import overview
from fourgent.access import Actor, Role
from fourgent.pauses import paused, set_paused
from fourgent.store.duckdb import overview as overview_sql
from fourgent.workflows import RetryPolicy
from helpers import APP, open_page, run_line, settle
from ui.overview_state import runs_link
from ui.workspace import workspace


@pytest.fixture
def demo(dashboard):
    return dashboard(3000)


@pytest.fixture
def sampled(sampled_app):
    return sampled_app


def view(w: overview.Window) -> overview.OverviewView:
    return overview_sql.overview_view(workspace().store.db.cursor(), w)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def matching_runs(**params) -> int:
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return int(next(m.value for m in at.metric if m.label == "Matching runs").replace(",", ""))


@pytest.mark.parametrize("preset, span", [("24h", timedelta(days=1)), ("7d", timedelta(days=7)),
                                          ("30d", timedelta(days=30)), ("90d", timedelta(days=90))])
def test_each_range_preset_shows_the_figures_for_its_span(demo, preset, span):
    at = open_page("app_pages/overview.py", range=preset)
    assert at.selectbox(key="ov_range").value == preset
    cur = workspace().store.db.cursor()
    runs = cur.execute("SELECT count(*) FROM runs WHERE started_at >= now() - to_seconds(?) AND retrigger_of IS NULL",
                       [span.total_seconds()]).fetchall()[0][0]
    assert int(metric(at, "Runs").replace(",", "")) == runs > 0
    assert {s.value for s in at.subheader} >= {"Runs over time", "First-attempt failure rate", "Workflows",
                                               "Top errors", "Failures by kind", "Failures by app"}
    assert at.query_params.get("range") == (None if preset == "7d" else preset)  # 7 d is the default


def test_custom_dates_from_the_url_and_an_empty_range(sampled):
    at = open_page("app_pages/overview.py", **{"from": "2026-08-01", "to": "2026-10-31"})
    assert at.selectbox(key="ov_range").value == "custom"
    originals, replays = workspace().store.db.cursor().execute(
        "SELECT count(*) FILTER (retrigger_of IS NULL), count(*) FILTER (retrigger_of IS NOT NULL) FROM runs "
        "WHERE started_at >= '2026-08-01 00:00+00' AND started_at < '2026-11-01 00:00+00'").fetchall()[0]
    assert replays > 0 and metric(at, "Runs") == f"{originals:,}"  # each run once: its re-triggers apart
    assert metric(at, "Re-triggers") == f"{replays:,}"
    at = open_page("app_pages/overview.py", **{"from": "2001-01-01", "to": "2001-01-02"})
    assert any("No runs started in this range" in i.value for i in at.info)


def test_each_workflow_row_opens_the_runs_page_with_the_same_count(sampled):
    at = open_page("app_pages/overview.py", **{"from": "2026-08-01", "to": "2026-10-31"})
    assert not at.exception
    start, end = datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    w = overview.Window(start, end)
    per = view(w).per_workflow
    assert len(per) == 6
    shown = next(d.value for d in at.dataframe if "Still failing" in d.value.columns)
    assert shown["Runs"].tolist() == per["runs"].to_list()
    for wf, runs in per.select("workflow_id", "runs").iter_rows():
        assert matching_runs(**runs_link(w, workflows=(wf,))) == runs


def test_each_top_error_row_opens_exactly_the_failures_with_that_pattern(sampled):
    at = open_page("app_pages/overview.py", **{"from": "2026-08-01", "to": "2026-10-31"})
    start, end = datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    w = overview.Window(start, end)
    errors = view(w).top_errors
    assert len(errors) > 3
    shown = next(d.value for d in at.dataframe if "Error" in d.value.columns)
    assert shown["Error"].tolist() == errors["pattern"].to_list()  # the rows the page offers to click
    for pattern, failures in errors.select("pattern", "failures").iter_rows():
        assert matching_runs(**runs_link(w, statuses=("failed",), error=pattern)) == failures, pattern
    runs = AppTest.from_file(APP, default_timeout=60)
    for k, v in runs_link(w, statuses=("failed",), error=errors["pattern"][0]).items():
        runs.query_params[k] = v
    runs.run()
    said = f"Failed runs where error = {errors['pattern'][0]}, as they first ran (re-triggers left out)"
    assert said in [t.value for t in runs.text]  # said, as text
    next(b for b in runs.button if b.label == "Remove").click().run()
    assert "error" not in runs.query_params and "originals" not in runs.query_params


def test_a_bar_opens_exactly_the_runs_it_counted(sampled):
    open_page("app_pages/overview.py")  # opens the process's store and reads the samples
    w = overview.Window(datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 30, tzinfo=UTC))
    for seg in overview.bar_segments(view(w).buckets):
        for row in seg.rows.head(2).to_dicts():
            link = runs_link(w, row["bucket"], row["bucket_end"], statuses=(seg.status,), unresolved=seg.unresolved,
                             resolved=seg.resolved)
            assert matching_runs(**link) == row["runs"], seg.name
    assert any(seg.resolved for seg in overview.bar_segments(view(w).buckets)), "the samples hold a resolved failure"


def test_unresolved_headline_opens_the_same_count_on_the_runs_page(sampled):
    at = open_page("app_pages/overview.py", **{"from": "2026-08-01", "to": "2026-10-31"})
    unresolved = int(metric(at, "Still failing").replace(",", ""))
    link = next(p.proto for p in at.get("page_link") if p.proto.label == "Open them")
    start, end = datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    params = runs_link(overview.Window(start, end), unresolved=True)
    assert link.query_string == urlencode(params, doseq=True)  # the page's link is the one counted here
    assert matching_runs(**params) == unresolved > 0


def test_log_text_in_charts_is_escaped_and_never_markdown(sampled, write_log):
    evil = run_line("evil", status="failed", started_at="2026-10-10T10:00:00Z", finished_at="2026-10-10T10:00:01Z",
                    workflow={"id": "x", "source": "<b>Src</b>", "destination": "**Dst**", "source_app": "A",
                    "destination_app": "<i>App</i>"},
                    error={"message": "[click](javascript:alert(1)) 'secret'", "step": None, "kind": "<img>"})
    write_log(sampled / "logs" / "evil.jsonl", evil)
    at = open_page("app_pages/overview.py", **{"from": "2026-08-01", "to": "2026-10-31"})
    shown = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "<b>Src</b>" not in shown and "javascript" not in shown and "**Dst**" not in shown
    charts = " ".join(json.dumps(json.loads(c.proto.spec)) for c in at.get("plotly_chart"))
    assert "<i>App</i>" not in charts and "&lt;i&gt;App&lt;/i&gt;" in charts
    assert "&lt;img&gt;" in charts


def test_workflows_page_lists_each_integration_and_a_pause_is_stored(demo):
    at = open_page("app_pages/workflows.py")
    frame = at.dataframe[0].value
    assert len(frame) == 6 and set(frame["State"]) == {"▶️ Active"}
    health = {f"{r['source']} → {r['destination']}": r for r in workspace().store.workflow_health().to_dicts()}
    for name, r24, r7 in frame[["Workflow", "Runs 24 h", "Runs 7 d"]].itertuples(index=False):
        assert (r24, r7) == (health[name]["runs_24h"], health[name]["runs_7d"])
    at.toggle(key="active_zendesk-ticket-jira-issue").set_value(False).run()
    assert "zendesk-ticket-jira-issue" in paused(workspace().store)
    st.cache_resource.clear()  # a restart: the pause is in the store, not the session
    at = open_page("app_pages/workflows.py")
    assert at.toggle(key="active_zendesk-ticket-jira-issue").value is False
    assert "⏸️ Paused" in set(at.dataframe[0].value["State"])


def test_workflow_ids_and_who_paused_stay_text_on_the_workflows_page(sampled, write_log):
    evil_id = "[Open billing portal](https://evil.example/login)"
    write_log(sampled / "logs" / "evil.jsonl", run_line("evil", workflow={
        "id": evil_id, "source": "**Src**", "destination": "<b>Dst</b>"}))
    at = open_page("app_pages/workflows.py")
    # A signed-in name is the identity provider's word: shown as text too.
    set_paused(workspace().store, Actor("[Support desk](https://evil.example/help)", Role.OPERATOR, "web"),
               evil_id, True)
    at.run()
    markdown = [m.value for m in (*at.markdown, *at.caption, *at.get("expandable"))
                if isinstance(getattr(m, "value", None), str)]
    markdown += [e.proto.label for e in at.get("expandable")]
    assert not [m for m in markdown if "](https://evil.example" in m and "`" not in m]
    texts = [t.value for t in at.text]
    assert any(evil_id in t for t in texts)  # the ID, as text
    assert any("by [Support desk](https://evil.example/help)" in t for t in texts)  # the name, as text


def test_a_paused_workflows_run_is_not_re_triggered_from_its_detail_page(demo):
    at = open_page("app_pages/workflows.py")
    at.toggle(key="active_zendesk-ticket-jira-issue").set_value(False).run()
    run_id = workspace().store.db.cursor().execute(
        "SELECT id FROM runs WHERE workflow_id = 'zendesk-ticket-jira-issue' AND status = 'failed' LIMIT 1"
    ).fetchall()[0][0]
    at = open_page("app_pages/run_detail.py", id=run_id)
    next(b for b in at.button if b.label == "↻ Re-trigger this run").click().run()
    settle(next(b for b in at.button if b.label == "Re-trigger").click().run())
    assert "workflow zendesk-ticket-jira-issue is paused" in [t.value for t in at.text]


def test_how_it_works_shows_the_policy_the_executor_uses(demo):
    at = open_page("app_pages/how_it_works.py")
    defaults = next(d.value for d in at.dataframe if "Setting" in d.value.columns)
    policy = RetryPolicy()
    assert dict(zip(defaults["Setting"], defaults["Default"], strict=True)) == {
        f.name: f"{getattr(policy, f.name):g}" for f in fields(RetryPolicy)}
    assert any("HTTP 401 and 403" in m.value for m in at.markdown)
    assert {h.value for h in at.header} >= {"A run", "How the engine retries", "Re-trigger", "The SQL surface"}


def test_each_failures_by_kind_and_app_bar_opens_the_same_count(sampled):
    open_page("app_pages/overview.py")
    start, end = datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    w = overview.Window(start, end)
    got = view(w)
    by_kind, by_app = got.by_kind, got.by_app
    assert len(by_kind) >= 3 and len(by_app) >= 3
    for kind, n in by_kind.iter_rows():
        assert matching_runs(**runs_link(w, statuses=("failed",), kinds=(kind,))) == n
    for app, n in by_app.head(4).iter_rows():
        assert matching_runs(**runs_link(w, statuses=("failed",), apps=(app,))) == n


def test_estimated_durations_are_said_so(demo, monkeypatch):
    at = open_page("app_pages/overview.py", range="30d")
    assert not any("estimated" in c.value for c in at.caption)  # 3,000 runs: every figure exact
    monkeypatch.setattr("fourgent.overview.EXACT_MAX", 0)
    at = open_page("app_pages/overview.py", range="30d")
    assert any("durations are estimated from per-hour histograms" in c.value for c in at.caption)


@pytest.mark.parametrize("page_file", ["app_pages/overview.py", "app_pages/workflows.py", "app_pages/connections.py"])
def test_every_count_in_a_table_reads_grouped_like_the_headline_figures(demo, page_file):
    from fourgent import display

    at = open_page(page_file, range="30d")
    checked = 0
    for d in at.dataframe:
        config = json.loads(d.proto.columns or "{}")
        for name, dtype in d.value.dtypes.items():
            if dtype.kind in "iu" and name != "#":  # a step's position is not a count
                assert config.get(name, {}).get("type_config", {}).get("format") == display.COUNT_FORMAT, \
                    (page_file, name)
                checked += 1
    assert checked > 0
    assert display.count(1127) == "1,127"


def test_how_it_works_states_the_retention_policy_in_force(dashboard, write_log):
    data = dashboard(FOURGENT_RETENTION_DAYS="90")
    definition = data / "workflows" / "stripe-payment-xero-invoice.json"
    definition.parent.mkdir(parents=True, exist_ok=True)
    from fourgent.workflows import BUILTIN_DIR

    (definition).write_text(json.dumps({**json.loads((BUILTIN_DIR / definition.name).read_text()),
                                        "retention_days": 365}))
    at = open_page("app_pages/how_it_works.py")  # the Runs page's refresh started the daily prune
    if (thread := workspace().retention_thread) is not None:
        thread.join(timeout=60)
    at.run()
    texts = [t.value for t in at.text]
    assert any("more than 90 days ago are pruned (FOURGENT_RETENTION_DAYS)" in t
               and "Stripe Payment Succeeded → Xero Invoice: 365 days" in t for t in texts), texts
    assert any("applies it itself once a day; it last pruned at" in c.value for c in at.caption)


def test_how_it_works_says_when_there_is_no_policy_or_it_cannot_be_used(dashboard, monkeypatch):
    dashboard()
    monkeypatch.delenv("FOURGENT_RETENTION_DAYS", raising=False)
    at = open_page("app_pages/how_it_works.py")
    assert any(t.value.startswith("No retention policy: every run is kept.") for t in at.text)
    monkeypatch.setenv("FOURGENT_RETENTION_DAYS", "ninety")
    at = open_page("app_pages/how_it_works.py")
    assert any("cannot be used" in w.value for w in at.warning)
    assert any("FOURGENT_RETENTION_DAYS must be a whole number of days" in t.value for t in at.text)
