"""The Workflow Runs page and the run detail page, driven through Streamlit's AppTest."""

from __future__ import annotations

import json
from datetime import date

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from helpers import APP, metric, open_app, run_ids, run_line, settle


@pytest.fixture
def data(sampled_app):
    return sampled_app


def table(at: AppTest):
    return next(d.value for d in at.dataframe if "Reference" in d.value.columns)


def matching(at: AppTest) -> int:
    return metric(at, "Matching runs")


def test_default_view_shows_newest_first_with_the_page_columns(data):
    at = open_app()
    frame = table(at)
    assert list(frame.columns) == ["Reference", "ID", "Workflow", "Status", "Re-trigger", "Started", "When", "Notes"]
    assert len(frame) == 50 and matching(at) == 356
    assert frame["Started"].is_monotonic_decreasing
    assert "—" in set(frame["Reference"])  # empty references read as an em dash
    assert len(set(run_ids(frame))) == 50  # each row's ID is the link to its run
    assert any("could not be read" in e.label for e in at.expander)  # the 8 rejected sample lines


def test_status_in_the_url_filters_and_counts(data):
    at = open_app(status="failed")
    assert matching(at) == 28
    assert set(table(at)["Status"]) == {"🔴 Failed"}
    assert at.multiselect(key="f_status").value == ["failed"]


def test_each_status_button_filters_to_that_status(data):
    at = open_app()
    at.button(key="only_skipped").click().run()
    assert matching(at) == 30
    assert at.query_params["status"] == "skipped"


def test_workflow_filter_round_trips_through_the_url(data):
    at = open_app()
    at.multiselect(key="f_workflow").set_value(["stripe-payment-xero-invoice"]).run()
    assert at.query_params["workflow"] == "stripe-payment-xero-invoice"
    assert set(table(at)["Workflow"]) == {"Stripe Payment Succeeded → Xero Invoice"}
    again = open_app(workflow="stripe-payment-xero-invoice")
    assert matching(again) == matching(at) > 0


def test_reference_search_and_exact_id_offer(data):
    at = open_app(q="run_01000000170")
    assert matching(at) >= 1
    assert any(link.label == "Open that run" for link in at.get("page_link"))
    at = open_app(q="ZZZ-no-such-thing")
    assert any("No runs match" in i.value for i in at.info)


def test_custom_dates_in_the_url_filter_the_range(data):
    at = open_app(**{"from": "2026-09-01", "to": "2026-09-30", "tz": "utc"})
    started = table(at)["Started"]
    assert all("2026-09-01" <= s[:10] <= "2026-09-30" for s in started)
    assert at.selectbox(key="f_range").value == "custom"


def test_pages_and_page_size(data):
    first = table(open_app(size="25"))
    second_at = open_app(size="25", page="2")
    second = table(second_at)
    assert len(first) == len(second) == 25
    assert not set(run_ids(first)) & set(run_ids(second))
    assert any("Page 2 of 15" in t.value for t in second_at.text)
    last = open_app(size="100", page="99")  # past the end: the last page
    assert len(table(last)) == 56


def test_clear_filters_resets_the_url(data):
    at = open_app(status="failed", q="acme")
    next(b for b in at.button if b.label == "Clear filters").click().run()
    assert matching(at) == 356
    assert "status" not in at.query_params and "q" not in at.query_params


def test_selecting_a_run_offers_its_actions(data):
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["selected_id"] = "run_01000000170"
    at.run()
    assert any(t.value == "Selected: run_01000000170" for t in at.text)
    assert any(b.label == "💬 Comment" for b in at.button)
    assert any(link.label == "View details" for link in at.get("page_link"))


def test_empty_store_offers_demo_data(tmp_path, monkeypatch):
    monkeypatch.setenv("FOURGENT_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("FOURGENT_DEMO_RUNS", "0")
    st.cache_resource.clear()
    at = open_app()
    assert any("No runs yet" in i.value for i in at.info)
    monkeypatch.setattr("fourgent.workspace.DEMO_RUNS", 300)
    next(b for b in at.button if b.label == "Load demo data").click().run()
    assert not at.exception
    assert matching(at) >= 300
    st.cache_resource.clear()


def detail(run_id: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()  # registers the navigation's pages
    at.query_params["id"] = run_id
    at.switch_page("app_pages/run_detail.py").run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("status", ["finished", "failed", "running", "pending", "skipped"])
def test_detail_page_of_each_status(data, status):
    from fourgent.store.duckdb import DuckDBStore

    store = DuckDBStore(data / "check.duckdb")

    store.ingest([data / "logs"])
    run_id = store.db.cursor().execute("SELECT id FROM runs WHERE status = ? ORDER BY id LIMIT 1",
                                    [status]).fetchall()[0][0]
    store.close()
    at = detail(run_id)
    assert at.title[0].value == "Run details"
    assert any(c.value == run_id for c in at.code)
    headers = [h.value for h in at.subheader]
    assert any(h.startswith("❌ Failed at") for h in headers) == (status == "failed")
    assert any(h.startswith("⏭️ Skipped") for h in headers) == (status == "skipped")


def test_failed_run_names_the_step_and_the_next_move(data):
    at = detail("run_01000000186")  # an unresolved auth failure (run_01000000170 is resolved: no advice)
    texts = [t.value for t in at.text]
    assert any("attempt" in t for t in texts)
    assert any("then re-trigger" in t for t in texts)
    assert not at.success


def test_lineage_links_both_ways(data):
    child = detail("run_01000000170_rt0")
    assert any(link.label.startswith("Re-triggered from") for link in child.get("page_link"))
    parent = detail("run_01000000170")
    assert any(link.label.startswith("Re-triggered as") for link in parent.get("page_link"))


def test_a_line_only_claiming_a_re_trigger_shows_the_claim_and_no_lineage(dashboard, write_log):
    data = dashboard()
    err = {"message": "401", "step": 0, "kind": "auth"}
    write_log(data / "logs" / "a.jsonl", run_line("victim", status="failed", error=err),
              run_line("forged", retrigger_of="victim", started_at="2026-11-20T15:00:00Z", retriggered_by="boss"))
    child = detail("forged")
    assert not any(link.label.startswith("Re-triggered from") for link in child.get("page_link"))
    assert any("says it re-triggered victim, but this dashboard did not start it" in t.value for t in child.text)
    assert not any("boss" in t.value for t in child.text)
    original = detail("victim")
    assert not any(link.label.startswith("Re-triggered as") for link in original.get("page_link"))


def test_unknown_run_id_says_so_plainly(data):
    at = detail("no-such-run")
    assert any("There is no run with this ID" in w.value for w in at.warning)


def add_comment(at: AppTest, body: str) -> AppTest:
    at.text_area[0].set_value(body)
    next(b for b in at.button if b.label == "Add comment").click().run()
    assert not at.exception, at.exception
    return at


def test_comments_survive_a_restart_and_a_re_ingest(data):
    at = add_comment(detail("run_01000000170"), "Reconnected Slack; re-trigger after lunch.")
    assert any(t.value == "Reconnected Slack; re-trigger after lunch." for t in at.text)
    # Restart: a new process would open the store afresh.
    st.cache_resource.clear()
    from fourgent.store import _instances, close_store

    for s in list(_instances.values()):
        close_store(s)
    # Re-ingest: the log is replaced by a copy of itself and read again from the start.
    log = data / "logs" / "runs-small.jsonl"
    log.write_bytes(b"\n" + log.read_bytes())
    at = detail("run_01000000170")
    assert any(t.value == "Reconnected Slack; re-trigger after lunch." for t in at.text)
    assert any(t.value == "local user (single-user):" for t in at.text)
    runs = open_app()
    assert "💬 1" in set(table(runs)["Notes"]) or matching(runs) == 356


def test_an_empty_comment_is_refused_with_a_message(data):
    at = add_comment(detail("run_01000000170"), "   ")
    assert any("The comment is empty." in e.value for e in at.error)


HOSTILE = ["<script>alert(1)</script>", "[x](javascript:alert(1))", "![](http://example.com/x.png)", "**bold**"]


def test_text_from_logs_is_never_rendered_as_markup(data, write_log):
    for i, text in enumerate(HOSTILE):
        write_log(data / "logs" / "hostile.jsonl", run_line(f"hostile_{i}", reference=text, status="failed",
                  error={"message": text, "step": 0, "kind": "logic"},
                  steps=[{"name": text, "app": text, "status": "failed", "error": text}]), mode="ab")
    for i, text in enumerate(HOSTILE):
        at = detail(f"hostile_{i}")
        add_comment(at, text)
        markdown = " ".join(m.value for m in at.markdown) + " ".join(
            getattr(e, "label", "") or "" for e in at.expander)
        assert text not in markdown, f"{text!r} reached Markdown"
        assert text in [t.value for t in at.text]  # shown, as plain text
    runs = open_app(q="hostile")
    assert set(HOSTILE) <= set(table(runs)["Reference"])  # the table shows it as cell text


def test_rejected_lines_are_listed_with_file_line_and_reason(data):
    at = open_app()
    frame = next(d.value for d in at.dataframe if "reason" in d.value.columns)
    assert len(frame) == 8
    assert set(frame["file"]) == {"runs-with-bad-lines.jsonl"}
    assert 57 in set(frame["line"])


def test_raw_record_keeps_unknown_fields(data, write_log):
    write_log(data / "logs" / "extra.jsonl", run_line("with_extra", engine_node="worker-7"))
    at = detail("with_extra")
    records = [json.loads(j.value) for j in at.json]
    assert any(r.get("engine_node") == "worker-7" for r in records if isinstance(r, dict))


@pytest.mark.parametrize("preset,minutes_ago,shown", [("1h", 30, True), ("1h", 90, False), ("24h", 600, True),
                                                      ("7d", 3 * 1440, True), ("30d", 40 * 1440, False)])
def test_date_presets_cover_their_span(data, write_log, preset, minutes_ago, shown):
    from datetime import UTC, datetime, timedelta

    started = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    write_log(data / "logs" / "recent.jsonl", run_line("recent_run", started_at=started, finished_at=None))
    at = open_app(range=preset)
    assert at.selectbox(key="f_range").value == preset
    shown_ids = {i for d in at.dataframe if "ID" in d.value.columns for i in run_ids(d.value)}
    assert ("recent_run" in shown_ids) == shown
    assert matching(at) < 356 + 1  # the sample runs are months old: most fall outside


@pytest.mark.parametrize("params", [{"page": "1000000000000000000"}, {"page": "-3"}, {"page": "x"},
                                    {"from": "2026-01-01", "to": "2026-12-01"}, {"from": "2099-01-01"},
                                    {"from": "2026-09-30", "to": "2026-09-01"}, {"size": "7"},
                                    {"status": "bogus"}, {"range": "forever"}, {"to": "2026-10-01"},
                                    {"from": "1969-12-31"}, {"from": "x", "to": "2026-10-01"}])
def test_malformed_or_extreme_urls_still_show_the_page(data, params):
    at = open_app(**params)
    assert at.title[0].value == "Workflow Runs"
    assert matching(at) >= 0


def test_a_date_outside_the_supported_range_falls_back_and_says_so(data):
    at = open_app(**{"from": "1969-12-31"})
    assert matching(at) == 356  # any time
    said = [w.value for w in at.warning]
    assert any("from=1969-12-31" in w and "1970-01-01" in w for w in said), said
    at.text_input(key="f_q").set_value("ZZZ").run()
    at.text_input(key="f_q").set_value("").run()
    assert any("from=1969-12-31" in w.value for w in at.warning)  # said until another link is opened
    assert not [w for w in open_app().warning if "Ignored" in w.value]


def test_page_size_order_and_zone_survive_a_search_that_matches_nothing(data):
    at = open_app(size="100", order="oldest", tz="utc")
    at.text_input(key="f_q").set_value("ZZZ-nothing").run()
    at.text_input(key="f_q").set_value("").run()
    assert at.query_params["size"] == "100"
    assert at.query_params["order"] == "oldest" and at.query_params["tz"] == "utc"


def test_a_workflow_id_with_a_comma_round_trips(data, write_log):
    wf = {"id": "crm,erp", "source": "CRM", "destination": "ERP"}
    write_log(data / "logs" / "comma.jsonl", run_line("comma_run", workflow=wf))
    at = open_app()
    at.multiselect(key="f_workflow").set_value(["crm,erp"]).run()
    assert set(run_ids(table(at))) == {"comma_run"}
    again = AppTest.from_file(APP, default_timeout=60)
    again.query_params["workflow"] = "crm,erp"
    again.run()
    assert set(run_ids(table(again))) == {"comma_run"}


def test_an_unknown_error_kind_stays_out_of_markdown(data, write_log):
    evil = "[click me](https://evil.example) ![](https://evil.example/p.png)"
    write_log(data / "logs" / "kind.jsonl", run_line("evil_kind", status="failed",
                                                     error={"message": "x", "step": 0, "kind": evil}))
    at = detail("evil_kind")
    assert all(evil not in h.value for h in at.subheader)
    assert f"Error kind: {evil}" in [t.value for t in at.text]


def test_unresolved_filter_in_the_url(data):
    at = open_app(unresolved="1")
    assert at.toggle(key="f_unresolved").value is True
    assert set(table(at)["Status"]) == {"🔴 Failed"}
    assert matching(at) <= 28


def test_retrigger_from_the_detail_page_makes_a_new_run_with_lineage(data):
    at = detail("run_01000000170")
    next(b for b in at.button if b.label == "↻ Re-trigger this run").click().run()
    assert not at.exception
    settle(next(b for b in at.button if b.label == "Re-trigger").click().run())
    assert not at.exception, at.exception
    done = next(t.value for t in at.text if t.value.startswith("Re-triggered run_01000000170 as run_"))
    new_id = done.split()[3].rstrip(":")
    child = detail(new_id)
    assert any(link.label.startswith("Re-triggered from") for link in child.get("page_link"))
    # who (the acting user) and when, on the new run too
    assert any(t.value.startswith("Re-triggered by local user (single-user) at 20") for t in child.text)
    parent = detail("run_01000000170")
    assert any("by local user (single-user)" in t.value for t in parent.text)
    [resolved] = [s.value for s in parent.success]
    assert resolved.startswith(f"Resolved by `{new_id}` (re-triggered by `local user (single-user)`) at 20")
    assert not any(c.value == "What to do next" for c in parent.caption)  # the fix advice is for unresolved runs
    assert next(b for b in parent.button if b.label == "↻ Re-trigger this run").proto.type == "secondary"


def test_a_steps_attempts_are_listed_and_odd_attempt_logs_do_not_break_the_page(data, write_log):
    tries = [{"step": 0, "attempt": 1, "started_at": "2026-11-20T14:03:11.200Z", "duration_ms": 30,
              "status_code": 503, "outcome": "HubSpot answered 503 Service Unavailable"},
             {"step": 0, "attempt": 2, "started_at": "2026-11-20T14:03:11.400Z", "duration_ms": "soon",
              "status_code": 200, "outcome": "ok"}, "not an attempt", {"step": 5}]
    write_log(data / "logs" / "tries.jsonl", run_line("tries", attempt_log=tries),
              run_line("odd_log", attempt_log="[x](javascript:alert(1))"))
    at = detail("tries")
    table = next(d.value for d in at.dataframe if "Attempt" in d.value.columns)
    assert table.values.tolist() == [
        ["1", "2026-11-20T14:03:11.200Z", "30 ms", "503", "HubSpot answered 503 Service Unavailable"],
        ["2", "2026-11-20T14:03:11.400Z", "—", "200", "ok"]]
    at = detail("odd_log")
    assert not at.exception and not [d for d in at.dataframe if "Attempt" in d.value.columns]


def test_an_auth_failure_links_to_connections(data, write_log):
    write_log(data / "logs" / "auth.jsonl", run_line("auth_fail", status="failed",
              error={"message": "401 Unauthorized", "step": 0, "kind": "auth"}))
    at = detail("auth_fail")
    assert any(link.label == "Open Connections" for link in at.get("page_link"))


def test_an_exact_window_in_the_url_filters_to_the_instant_and_round_trips(data):
    from datetime import UTC, datetime

    from ui.workspace import workspace

    at = open_app(**{"from": "2026-10-20T06:30:00Z", "to": "2026-10-27T18:00:00Z"})
    count = workspace().store.db.cursor().execute(
        "SELECT count(*) FROM runs WHERE started_at >= ? AND started_at < ?",
        [datetime(2026, 10, 20, 6, 30, tzinfo=UTC), datetime(2026, 10, 27, 18, tzinfo=UTC)]).fetchall()[0][0]
    assert matching(at) == count > 0
    assert at.query_params["from"] == "2026-10-20T06:30:00Z" and at.query_params["to"] == "2026-10-27T18:00:00Z"
    assert any(c.value.startswith("Exactly 2026-10-20 06:30") for c in at.caption)
    # Picking whole days replaces the exact window.
    at.date_input(key="f_dates").set_value((date(2026, 10, 19), date(2026, 10, 27))).run()
    assert at.query_params["from"] == "2026-10-19" and at.query_params["to"] == "2026-10-27"


def test_an_exact_window_shows_its_days_in_the_browsers_zone(data):
    at = AppTest.from_file(APP, default_timeout=60)
    at.context["timezone"] = "Pacific/Auckland"  # UTC+13 in November
    at.query_params["from"], at.query_params["to"] = "2026-11-20T12:00:00Z", "2026-11-21T12:00:00Z"
    at.run()
    assert at.date_input(key="f_dates").value == (date(2026, 11, 21), date(2026, 11, 22))
    assert any(c.value.startswith("Exactly 2026-11-21 01:00 – 2026-11-22 01:00 (Pacific/Auckland)") for c in at.caption)
    at.query_params["tz"] = "utc"  # "Times in UTC" shows the UTC days
    at.run()
    assert at.date_input(key="f_dates").value == (date(2026, 11, 20), date(2026, 11, 21))


@pytest.mark.parametrize("bad", ["2026-10-20T06:30:00", "2026-13-01T00:00:00Z", "T", "2026-10-27T18:00:00Z"])
def test_a_malformed_or_naive_window_falls_back_without_failing(data, bad):
    at = open_app(**{"from": bad, "to": "2026-10-27T18:00:00Z"})
    assert matching(at) > 0


def test_kind_and_app_in_the_url_narrow_to_those_failures_and_can_be_removed(data):
    from ui.workspace import workspace

    open_app()
    app, expected = workspace().store.db.cursor().execute(
        "SELECT failed_app, count(*) FROM runs WHERE error_kind = 'auth' GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
    ).fetchall()[0]
    at = open_app(kind="auth", app=app)
    assert matching(at) == expected > 0
    assert f"Failed runs where kind = auth and app = {app}" in [t.value for t in at.text]
    assert at.query_params["kind"] == "auth" and at.query_params["app"] == app
    at.button(key="drop_kind_app").click().run()
    assert matching(at) == 356 and "kind" not in at.query_params


def test_a_payload_nested_100000_deep_and_hidden_direction_controls_do_not_break_or_disguise_the_run(data):
    deep = "[" * 100_000 + "]" * 100_000
    line = json.dumps(run_line("run_deep", reference="invoice\u202egpj.exe", trigger_payload={"x": 1}))
    line = line.replace('"trigger_payload": {"x": 1}', '"trigger_payload": {"x": ' + deep + "}")
    (data / "logs" / "deep.jsonl").write_text(line + "\n")
    at = detail("run_deep")
    assert "invoice⟨U+202E⟩gpj.exe" in [t.value for t in at.text]
    assert any("nested too deeply to show" in c.value for c in at.code)
    runs = open_app(q="run_deep")
    assert list(table(runs)["Reference"]) == ["invoice⟨U+202E⟩gpj.exe"]


def test_a_validation_failure_names_where_and_the_field_and_says_a_replay_would_fail_again(dashboard, write_log):
    data = dashboard()
    refused = {"message": "Missing required field: contact_email", "step": None, "kind": "validation"}
    write_log(data / "logs" / "a.jsonl",
              run_line("no_email", status="failed", error=refused, steps=[],
                       trigger_payload={"deal_id": "1893", "contact_email": None}),
              run_line("has_it_now", status="failed", error=refused, steps=[],
                       trigger_payload={"deal_id": "1894", "contact_email": "a@example.com"}))
    at = detail("no_email")
    assert "❌ Failed before any step ran · validation error" in [h.value for h in at.subheader]
    advice = [t.value for t in at.text if t.value.startswith("The run was refused")]
    assert advice == ["The run was refused before any step ran: its payload lacks the required field "
                      "“contact_email”. A re-trigger replays this same payload and would fail again. Re-trigger "
                      "it with changes and fill in “contact_email”, or fill it in in HubSpot and let HubSpot fire "
                      "the workflow again."]
    now = detail("has_it_now")
    assert any(t.value.endswith("which its payload carries now. Re-trigger this run.") for t in now.text)
    # Re-triggering is the primary action only where a replay can help.
    button_type = {page: next(b for b in page.button if b.label == "↻ Re-trigger this run").proto.type
                   for page in (at, now)}
    assert (button_type[at], button_type[now]) == ("secondary", "primary")


def test_an_unreadable_log_file_is_named_on_the_page_and_the_rest_is_shown(data, write_log, unreadable):
    unreadable(write_log(data / "logs" / "locked.jsonl", run_line("locked_run")))
    at = open_app()
    assert not at.exception
    assert matching(at) == 356  # every sample run: the other files were read
    said = " ".join(t.value for t in at.text)
    assert "1 log file or folder could not be read" in said and "locked.jsonl: Permission denied" in said
