"""CSV export is safe to open in a spreadsheet; values read the way the page shows them."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import polars as pl

from fourgent import display, export
from fourgent.filters import RunFilter
from helpers import record_as_ours, run_line


def test_cells_that_a_spreadsheet_would_run_are_neutralised():
    for bad in ("=HYPERLINK(\"http://x\")", "+1 Telecom", "-5", "@SUM(A1)", "\tTab", "\rCR", " =1+1", "\n=1+1",
                "  \n @SUM(A1)", "\u00a0=cmd"):
        assert export.neutralise(bad) == "'" + bad
    assert export.neutralise("Acme Corp") == "Acme Corp" and export.neutralise(" Acme = 1") == " Acme = 1"
    assert export.neutralise(42) == 42


def test_export_holds_every_matching_run_not_just_the_page(store, tmp_path, write_log):
    lines = [run_line(f"run_{i:03d}", reference="=cmd|' /C calc'!A0" if i == 7 else f"Deal {i}",
                      started_at=f"2026-11-20T10:{i % 60:02d}:00Z") for i in range(120)]
    store.ingest([write_log(tmp_path / "a.jsonl", *lines)])
    data = export.csv_bytes(store, RunFilter()).decode()
    rows = list(csv.reader(io.StringIO(data)))
    assert rows[0] == list(export.CSV_HEADER)
    assert len(rows) == 121
    refs = {r[1] for r in rows[1:]}
    assert "'=cmd|' /C calc'!A0" in refs and "=cmd|' /C calc'!A0" not in refs


def test_export_respects_the_filter_and_the_cap(store, samples):
    store.ingest([samples])
    data = export.csv_bytes(store, RunFilter(statuses=("failed",)))
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert len(rows) == 29 and {r[3] for r in rows[1:]} == {"failed"}
    capped = export.csv_bytes(store, RunFilter(), cap=10).decode().splitlines()
    assert len(capped) == 11


def test_export_follows_the_pages_order_and_says_how_each_re_trigger_went(store, tmp_path, write_log):
    err = {"message": "401", "step": 0, "kind": "auth"}
    lines = [run_line("fixed", status="failed", error=err, started_at="2026-11-20T10:00:00Z"),
             run_line("stuck", status="failed", error=err, started_at="2026-11-20T10:01:00Z"),
             run_line("fixed_rt", retrigger_of="fixed", started_at="2026-11-20T11:00:00Z"),
             run_line("stuck_rt", status="failed", error=err, retrigger_of="stuck", started_at="2026-11-20T11:01:00Z"),
             run_line("plain", started_at="2026-11-20T12:00:00Z")]
    record_as_ours(store, *lines)
    store.ingest([write_log(tmp_path / "a.jsonl", *lines)])
    newest = list(csv.DictReader(io.StringIO(export.csv_bytes(store, RunFilter()).decode())))
    assert [r["id"] for r in newest] == ["plain", "stuck_rt", "fixed_rt", "stuck", "fixed"]
    assert {r["id"]: r["retrigger_state"] for r in newest} == {
        "plain": "", "stuck_rt": "replay", "fixed_rt": "replay", "stuck": "failed again", "fixed": "resolved"}
    oldest = list(csv.DictReader(io.StringIO(export.csv_bytes(store, RunFilter(), oldest=True).decode())))
    assert [r["id"] for r in oldest] == ["fixed", "stuck", "fixed_rt", "stuck_rt", "plain"]
    capped = list(csv.DictReader(io.StringIO(export.csv_bytes(store, RunFilter(), cap=2, oldest=True).decode())))
    assert [r["id"] for r in capped] == ["fixed", "stuck"]  # the cap keeps the page's first rows


def test_relative_times_and_durations_read_like_a_person_would_say_them():
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert display.ago(now - timedelta(seconds=20), now) == "just now"
    assert display.ago(now - timedelta(minutes=3, seconds=5), now) == "3 min ago"
    assert display.ago(now - timedelta(hours=5), now) == "5 h ago"
    assert display.ago(now - timedelta(days=40), now) == "1 mo ago"
    assert display.ago(None, now) == "—"
    assert display.duration(850) == "850 ms" and display.duration(12_300) == "12.3 s"
    assert display.duration(125_000) == "2 min 5 s"


def test_times_show_in_the_browsers_zone_or_utc_when_unknown():
    moment = datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)
    assert display.local_time(moment, display.zone("Europe/Berlin")) == "2026-11-20 15:03:11"
    assert display.local_time(moment, display.zone(None)) == "2026-11-20 14:03:11"
    assert display.zone("Not/AZone").key == "UTC"


def test_empty_references_show_as_an_em_dash():
    assert display.reference(None) == display.reference("") == "—"
    assert display.status_label("failed") == "🔴 Failed"


def test_invisible_direction_controls_are_shown_by_name():
    assert display.visible("invoice\u202egpj.exe") == "invoice⟨U+202E⟩gpj.exe"
    assert display.visible("a\u200bb\u2066c\u2069") == "a⟨U+200B⟩b⟨U+2066⟩c⟨U+2069⟩"
    assert display.visible("Zoë's Café – Deal 42 → Xero") == "Zoë's Café – Deal 42 → Xero"  # ordinary text stays


def test_a_deeply_nested_value_is_summarised_for_the_page_not_a_crash():
    deep: object = "bottom"
    for _ in range(100):
        deep = [deep]
    shown = display.bounded({"k\u202e": deep})
    level = shown["k⟨U+202E⟩"]
    for _ in range(display.MAX_DEPTH - 1):
        level = level[0]
    assert level == f"… (list nested deeper than {display.MAX_DEPTH} levels)"
    text = "[" * 100_000 + "]" * 100_000
    assert display.loads(text) == "… (a value nested too deeply to show, 200,000 characters)"
    assert display.loads('{"a": "x\u202ey"}') == {"a": "x⟨U+202E⟩y"} and display.loads(None) is None


def test_explore_results_tell_zoned_timestamps_in_the_pages_zone_and_leave_the_rest():
    from fourgent import results

    at = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 in Paris, the night summer time ends
    frame = pl.DataFrame({"started_at": [at], "naive": [at.replace(tzinfo=None)], "n": [1_127]})
    shown = results.in_zone(frame, "Europe/Paris")
    assert shown["started_at"][0].isoformat() == "2026-10-25T02:30:00+02:00"
    assert shown["started_at"][0].timestamp() == at.timestamp()  # the same instant
    assert shown["naive"][0] == at.replace(tzinfo=None) and shown["n"][0] == 1_127
    assert results.in_zone(frame, "UTC")["started_at"][0].isoformat() == "2026-10-25T00:30:00+00:00"


def test_counts_read_with_thousands_grouped_everywhere():
    assert display.count(1127) == "1,127" and display.count(0) == "0" and display.count(None) == display.EMPTY
