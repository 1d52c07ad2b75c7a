"""Ingestion follows every rule of the run log spec and accounts for every line."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fourgent.spec import MAX_LINE_BYTES, RAW_KEEP_CHARS
from helpers import run_line


def q(store, sql, params=None):
    return store.db.cursor().execute(sql, params or []).fetchall()


def rejects(store):
    return q(store, "SELECT line, reason, raw FROM rejected_lines ORDER BY file, line")


def test_shared_samples_account_for_every_line(store, samples):
    report = store.ingest([samples])
    assert (report.lines, report.snapshots, report.rejected) == (369, 361, 8)
    assert (report.added, report.updated, report.superseded) == (356, 0, 5)
    assert report.lines == report.snapshots + report.rejected
    assert q(store, "SELECT count(*), count(DISTINCT id) FROM runs") == [(356, 356)]
    assert q(store, "SELECT count(*) FROM rejected_lines") == [(8,)]
    assert {r[1] for r in rejects(store)} >= {"not a JSON object", 'status "failed" without "error.message"'}


def test_reading_the_same_files_again_changes_nothing(store, samples):
    store.ingest([samples])
    before = q(store, "SELECT * EXCLUDE (extra) FROM runs ORDER BY id")
    again = store.ingest([samples])
    assert (again.lines, again.files) == (0, 0)
    assert q(store, "SELECT * EXCLUDE (extra) FROM runs ORDER BY id") == before
    assert q(store, "SELECT count(*) FROM rejected_lines") == [(8,)]


def test_appending_lines_reads_only_the_new_lines(store, tmp_path, write_log):
    log = write_log(tmp_path / "a.jsonl", *[run_line(f"run_{i}") for i in range(50)])
    store.ingest([log])
    size = log.stat().st_size
    write_log(log, *[run_line(f"new_{i}") for i in range(10)], mode="ab")
    report = store.ingest([log])
    assert report.lines == 10
    assert report.bytes == log.stat().st_size - size  # read from where it stopped, not from the start
    assert report.added == 10
    assert q(store, "SELECT count(*) FROM runs") == [(60,)]


def test_an_incomplete_last_line_waits_until_it_is_complete(store, tmp_path, write_log):
    line = json.dumps(run_line("run_late"))
    log = write_log(tmp_path / "a.jsonl", run_line("run_1"), line[:40])
    report = store.ingest([log])
    assert (report.lines, report.rejected) == (1, 0)
    write_log(log, line[40:] + "\n", mode="ab")
    report = store.ingest([log])
    assert (report.lines, report.added, report.rejected) == (1, 1, 0)
    assert q(store, "SELECT id FROM runs ORDER BY id") == [("run_1",), ("run_late",)]


def test_a_truncated_file_is_read_as_a_new_file_and_the_old_one_keeps_its_rejects(store, tmp_path, write_log):
    log = write_log(tmp_path / "a.jsonl", run_line("run_1"), "not json\n", run_line("run_2"))
    store.ingest([log])
    write_log(log, run_line("run_3"), "still not json\n")
    report = store.ingest([log])
    assert report.reread == [str(log.resolve())]
    assert (report.lines, report.added) == (2, 1)
    name = str(log.resolve())
    # Each file's reject once: the earlier content's under a name of its own, the new file's under the file's name.
    assert q(store, "SELECT file, line, raw FROM rejected_lines ORDER BY file") == [
        (name, 2, "still not json"), (f"{name} (earlier file #1)", 2, "not json")]
    assert q(store, "SELECT count(*) FROM runs") == [(3,)]
    assert store.ingest([log]).lines == 0


def test_a_file_replaced_by_one_as_large_is_read_again(store, tmp_path, write_log):
    log = write_log(tmp_path / "a.jsonl", run_line("run_a"))
    store.ingest([log])
    write_log(log, run_line("run_b"), run_line("run_c"))  # larger, different first bytes
    report = store.ingest([log])
    assert report.reread and report.added == 2


def test_later_snapshot_replaces_earlier_by_position_and_by_updated_at(store, tmp_path, write_log):
    log = write_log(
        tmp_path / "a.jsonl",
        run_line("by_pos", status="running", finished_at=None),
        run_line("by_pos", status="finished"),
        run_line("by_time", status="finished", updated_at="2026-11-20T15:00:00Z"),
        run_line("by_time", status="running", updated_at="2026-11-20T14:00:00Z"),  # older: ignored
    )
    report = store.ingest([log])
    assert (report.added, report.superseded) == (2, 2)
    assert dict(q(store, "SELECT id, status FROM runs")) == {"by_pos": "finished", "by_time": "finished"}


def test_snapshot_order_holds_across_batches_and_ingests(store, tmp_path, write_log):
    first = write_log(tmp_path / "1.jsonl", run_line("r", status="finished", updated_at="2026-11-20T15:00:00Z"))
    store.ingest([first])
    older = write_log(tmp_path / "2.jsonl", run_line("r", status="running", updated_at="2026-11-20T14:00:00Z"))
    report = store.ingest([older])
    assert (report.added, report.updated, report.superseded) == (0, 0, 1)
    newer = write_log(tmp_path / "3.jsonl", run_line("r", status="failed", error={"message": "boom"},
                                                         updated_at="2026-11-20T16:00:00Z"))
    report = store.ingest([newer])
    assert (report.added, report.updated) == (0, 1)
    assert q(store, "SELECT status, error_message FROM runs") == [("failed", "boom")]


def test_small_batches_give_the_same_store_as_one_batch(tmp_path, samples):
    from fourgent.store.duckdb import DuckDBStore

    one, many = DuckDBStore(tmp_path / "one.duckdb"), DuckDBStore(tmp_path / "many.duckdb")
    r1 = one.ingest([samples])
    r2 = many.ingest([samples], batch_bytes=8 << 10)  # dozens of transactions
    assert (r1.lines, r1.snapshots, r1.added, r1.superseded, r1.rejected) == (
        r2.lines, r2.snapshots, r2.added, r2.superseded, r2.rejected)
    sql = "SELECT id, status, started_at, error_message FROM runs ORDER BY id"
    assert one.db.cursor().execute(sql).fetchall() == many.db.cursor().execute(sql).fetchall()


def test_values_are_typed_lower_cased_and_in_utc(store, tmp_path, write_log):
    log = write_log(tmp_path / "a.jsonl", run_line(
        "r", status="FAILED", started_at="2026-11-20T16:03:11.5+02:00", finished_at="2026-11-20t14:04:00z",
        error={"message": "Missing required field: contact_email", "step": 0, "kind": "validation"},
        reference="", attempt=2))
    store.ingest([log])
    row = q(store, "SELECT status, started_at, finished_at, duration_ms, reference, error_kind, error_step, "
                   "attempt, step_count, workflow FROM runs")[0]
    assert row[0] == "failed"
    assert row[1] == datetime(2026, 11, 20, 14, 3, 11, 500000, tzinfo=UTC)
    assert row[2] == datetime(2026, 11, 20, 14, 4, tzinfo=UTC)
    assert row[3] == 48_500
    assert row[4] is None  # "" shows as "—" in the table: stored as NULL
    assert row[5:] == ("validation", 0, 2, 1, "HubSpot Closed Won → QuickBooks Invoice")


def test_unknown_fields_are_kept(store, tmp_path, write_log):
    log = write_log(tmp_path / "a.jsonl", run_line("r", engine_node="worker-3", **{"a/b~c": {"x": [1, 2]}}))
    store.ingest([log])
    (extra,) = q(store, "SELECT extra FROM runs")[0]
    assert json.loads(extra) == {"engine_node": "worker-3", "a/b~c": {"x": [1, 2]}}


def test_steps_view_unnests_each_step(store, tmp_path, write_log):
    steps = [
        {"name": "Fetch deal", "app": "HubSpot", "status": "finished", "started_at": "2026-11-20T14:03:11Z",
         "finished_at": "2026-11-20T14:03:12Z", "output": {"ok": True}},
        {"name": "Create invoice", "app": "QuickBooks", "status": "failed", "attempts": 3,
         "error": "503 Service Unavailable", "input": {"amount": 1}},
    ]
    log = write_log(tmp_path / "a.jsonl", run_line("r", status="failed", steps=steps,
                                                   error={"message": "503", "step": 1, "kind": "unavailable"}))
    store.ingest([log])
    rows = q(store, "SELECT step_index, name, app, status, attempts, duration_ms, error, input, output "
                    "FROM steps WHERE run_id = 'r' ORDER BY step_index")
    assert rows[0][:6] == (0, "Fetch deal", "HubSpot", "finished", 1, 1000)
    assert rows[1][:7] == (1, "Create invoice", "QuickBooks", "failed", 3, None, "503 Service Unavailable")
    assert json.loads(rows[1][7]) == {"amount": 1} and json.loads(rows[0][8]) == {"ok": True}


BAD_LINES = [
    ('{"id": "x", "status": ', "not valid JSON"),
    ("[1, 2, 3]", "not a JSON object"),
    ("null", "not a JSON object"),
    ("   ", "blank line"),
    (run_line(None, id=None), 'missing "id"'),
    (run_line("x" * 129), '"id" must be 1 to 128 characters'),
    (run_line("r", workflow={"source": "A", "destination": "B"}), 'missing "workflow.id"'),
    (run_line("r", workflow=None), 'missing "workflow"'),
    (run_line("r", status="exploded"), 'unknown status "exploded"'),
    (run_line("r", status=None), 'missing "status"'),
    (run_line("r", started_at=None), 'missing "started_at"'),
    (run_line("r", started_at="2026-11-20 14:03:11"), '"started_at" is not an RFC 3339 timestamp with offset'),
    (run_line("r", started_at="2026-02-30T10:00:00Z"), '"started_at" is not an RFC 3339 timestamp with offset'),
    (run_line("r", finished_at="yesterday"), '"finished_at" is not an RFC 3339 timestamp with offset'),
    (run_line("r", started_at="99999-01-01T00:00:00Z"), '"started_at" is not an RFC 3339 timestamp with offset'),
    (run_line("r", started_at="9999-12-31T23:59:59-12:00"), '"started_at" is not an RFC 3339 timestamp'),  # 10000 UTC
    (run_line("r", started_at="0000-12-31T10:00:00Z"), '"started_at" is not an RFC 3339 timestamp with offset'),
    (run_line("r", started_at="2026-11-20T24:00:00Z"), '"started_at" is not an RFC 3339 timestamp with offset'),
    (run_line("r", started_at="2026-11-20T10:00:00+24:00"), '"started_at" is not an RFC 3339 timestamp'),
    (run_line("r", finished_at="2026-11-20T10:00:00-99:99"), '"finished_at" is not an RFC 3339 timestamp'),
    (run_line("r", updated_at="2026-11-20T10:00:00+05:60"), '"updated_at" is not an RFC 3339 timestamp'),
    (json.dumps(run_line("r")).replace('"status"', '"attempt": 1e400, "status"'),
     '"attempt" must be a whole number from 1'),
    (json.dumps(run_line("r")).replace('"attempts": 1', '"attempts": 1e400'), "step 0: needs"),
    (run_line("r", status="failed"), 'status "failed" without "error.message"'),
    (run_line("r", status="failed", error={"message": ""}), 'status "failed" without "error.message"'),
    (run_line("r", attempt=0), '"attempt" must be a whole number from 1'),
    (run_line("r", steps=[{"name": "ok", "status": "finished"}, {"status": "finished"}]), "step 1: needs a"),
    (run_line("r", steps=[{"name": "a", "status": "finished", "started_at": "2026-11-20T14:03:11"}]), "step 0:"),
]


@pytest.mark.parametrize("line,reason", BAD_LINES, ids=[r for _, r in BAD_LINES])
def test_each_broken_rule_rejects_the_line_with_its_reason(store, tmp_path, write_log, line, reason):
    if isinstance(line, dict) and line.get("id") is None and "id" in line:
        line.pop("id")
    log = write_log(tmp_path / "a.jsonl", run_line("good_1"), line if isinstance(line, dict) else line + "\n",
                    run_line("good_2"))
    report = store.ingest([log])
    assert (report.lines, report.snapshots, report.rejected) == (3, 2, 1)
    ((line_no, why, raw),) = rejects(store)
    assert line_no == 2
    assert why.startswith(reason), why
    assert raw is not None


def test_invalid_json_reason_says_where(store, tmp_path, write_log):
    store.ingest([write_log(tmp_path / "a.jsonl", '{"id": "x",, "b": 1}\n')])
    assert rejects(store)[0][1] == "not valid JSON: Expecting property name enclosed in double quotes at column 12"


def test_non_utf8_bytes_reject_that_line_only(store, tmp_path, write_log):
    bad = json.dumps(run_line("bad")).encode().replace(b"Acme", b"Ac\xffme") + b"\n"
    log = write_log(tmp_path / "a.jsonl", run_line("good_1"), bad, run_line("good_2"))
    report = store.ingest([log])
    assert (report.snapshots, report.rejected) == (2, 1)
    ((line_no, why, raw),) = rejects(store)
    assert line_no == 2 and why.startswith("not valid UTF-8: byte 0xff")
    assert "Ac\\xffme" in raw  # the bad byte stays visible, escaped


def test_a_line_over_the_size_limit_is_rejected_and_truncated(store, tmp_path, write_log):
    huge = run_line("huge", trigger_payload={"blob": "x" * (MAX_LINE_BYTES + 10)})
    log = write_log(tmp_path / "a.jsonl", run_line("good_1"), huge, run_line("good_2"))
    report = store.ingest([log])
    assert (report.snapshots, report.rejected) == (2, 1)
    ((line_no, why, raw),) = rejects(store)
    assert line_no == 2 and "over the 1,048,576-byte limit" in why
    assert len(raw) == RAW_KEEP_CHARS


def test_a_line_longer_than_a_whole_batch_is_skipped_to_its_end(store, tmp_path, write_log):
    huge = run_line("huge", trigger_payload={"blob": "x" * (3 * MAX_LINE_BYTES)})
    log = write_log(tmp_path / "a.jsonl", run_line("good_1"), huge, run_line("good_2"))
    report = store.ingest([log], batch_bytes=64 << 10)
    assert (report.lines, report.snapshots, report.rejected) == (3, 2, 1)
    assert "over the 1,048,576-byte limit" in rejects(store)[0][1]


def test_bom_and_crlf_are_accepted(store, tmp_path, write_log):
    log = write_log(tmp_path / "a.jsonl", b"\xef\xbb\xbf" + json.dumps(run_line("r1")).encode() + b"\r\n",
                    json.dumps(run_line("r2")).encode() + b"\r\n")
    report = store.ingest([log])
    assert (report.snapshots, report.rejected) == (2, 0)


def test_gzip_logs_are_read_and_appended_members_picked_up(store, tmp_path):
    log = tmp_path / "a.jsonl.gz"
    with gzip.open(log, "wt", encoding="utf-8") as f:
        f.write(json.dumps(run_line("g1")) + "\n")
    assert store.ingest([log]).added == 1
    with gzip.open(log, "at", encoding="utf-8") as f:  # a second gzip member
        f.write(json.dumps(run_line("g2")) + "\n")
    report = store.ingest([log])
    assert (report.lines, report.added) == (1, 1)


def test_corrupt_gzip_is_reported_not_crashed(store, tmp_path):
    good = gzip.compress((json.dumps(run_line("g1")) + "\n").encode())
    log = tmp_path / "a.jsonl.gz"
    log.write_bytes(good[:20] + b"\x00garbage" * 50)
    report = store.ingest([log])
    assert report.rejected == 1
    assert rejects(store)[0][1].startswith("gzip data is corrupt")


def test_rejected_lines_view_names_the_file(store, tmp_path, write_log, data_paths):
    write_log(data_paths.logs_dir / "sub" / "a.jsonl", "oops\n")
    store.ingest([data_paths.logs_dir], logs_dir=data_paths.logs_dir)
    assert q(store, "SELECT file, line FROM rejected_lines") == [("sub/a.jsonl", 1)]


def test_numbers_too_large_for_the_store_reject_the_line_not_the_batch(store, tmp_path, write_log):
    log = write_log(tmp_path / "a.jsonl", run_line("good_1"), run_line("big", attempt=3_000_000_000),
                    run_line("big_step", status="failed", error={"message": "x", "step": 5_000_000_000}),
                    run_line("good_2"))
    report = store.ingest([log])
    assert (report.snapshots, report.rejected) == (2, 2)
    assert [r[1].split(" must")[0] for r in rejects(store)] == ['"attempt"', '"error.step"']


def test_a_repeated_unknown_key_keeps_its_first_value(store, tmp_path, write_log):
    line = json.dumps(run_line("dup"))[:-1] + ', "x": 1, "x": 2}\n'
    report = store.ingest([write_log(tmp_path / "a.jsonl", line, run_line("good"))])
    assert (report.snapshots, report.rejected) == (2, 0)
    assert json.loads(q(store, "SELECT extra FROM runs WHERE id = 'dup'")[0][0]) == {"x": 1}


def test_a_file_name_that_is_not_utf8_is_read(store, tmp_path, write_log):
    import os

    name = os.fsdecode(b"b\xff.jsonl")
    write_log(tmp_path / "logs" / name, run_line("odd_name"))
    write_log(tmp_path / "logs" / "a.jsonl", run_line("plain"))
    report = store.ingest([tmp_path / "logs"], logs_dir=tmp_path / "logs")
    assert report.added == 2
    assert q(store, "SELECT path FROM fg.files ORDER BY path") == [("a.jsonl",), ("b\\xff.jsonl",)]


def test_leading_white_space_before_a_valid_line_is_accepted(store, tmp_path, write_log):
    report = store.ingest([write_log(tmp_path / "a.jsonl", "  \t" + json.dumps(run_line("r")) + "\n")])
    assert (report.snapshots, report.rejected) == (1, 0)


def test_gzip_lines_before_a_corrupt_member_are_kept(store, tmp_path):
    good = gzip.compress("".join(json.dumps(run_line(f"g{i}")) + "\n" for i in range(100)).encode())
    log = tmp_path / "a.jsonl.gz"
    log.write_bytes(good + b"\x1f\x8b\x08\x00garbage-after-a-good-member")
    report = store.ingest([log])
    assert report.added == 100 and report.rejected == 1
    assert report.lines == report.snapshots + report.rejected


def test_a_failing_batch_does_not_hang_the_reader_thread(store, tmp_path, write_log, monkeypatch):
    import threading

    from fourgent.store.duckdb import ingest as ing

    log = write_log(tmp_path / "a.jsonl", *[run_line(f"r{i}") for i in range(400)])

    def boom(self, cur, table, part):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ing.Ingester, "_load", boom)
    done = threading.Event()
    errors = []

    def run():
        try:
            store.ingest([log], batch_bytes=8 << 10)
        except RuntimeError as exc:
            errors.append(exc)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(20), "the ingest hung"
    assert str(errors[0]) == "disk full"


def test_a_failed_batch_leaves_no_setting_behind(store, tmp_path, write_log, monkeypatch):
    from fourgent.store.duckdb import ingest as ing

    def boom(self, cur, table, part):
        cur.execute("SELECT 1/0::INTEGER + 'x'")  # a SQL error inside the batch's transaction

    monkeypatch.setattr(ing.Ingester, "_load", boom)
    with pytest.raises(duckdb.Error):
        store.ingest([write_log(tmp_path / "a.jsonl", run_line("r"))])
    settings = dict(store.db.cursor().execute(
        "SELECT name, value FROM duckdb_settings() WHERE name IN ('disabled_optimizers', "
        "'preserve_insertion_order', 'checkpoint_threshold')").fetchall())
    assert settings["disabled_optimizers"] == "" and settings["preserve_insertion_order"] == "true"
    assert settings["checkpoint_threshold"] == "16.0 MiB"


def test_links_that_leave_the_logs_folder_are_not_followed_and_are_reported(store, tmp_path, write_log, capsys):
    logs = tmp_path / "logs"
    outside = write_log(tmp_path / "elsewhere" / "secret.jsonl", "root:x:0:0:root:/root:/bin/bash\n",
                        run_line("outside_run"))
    write_log(logs / "real.jsonl", run_line("inside_run"))
    (logs / "passwd.jsonl").symlink_to(outside)
    (logs / "mirror").symlink_to(outside.parent, target_is_directory=True)
    (logs / "alias.jsonl").symlink_to(logs / "real.jsonl")  # stays inside: read
    report = store.ingest([logs], logs_dir=logs)
    assert sorted(report.links_left_out) == [str(logs / "mirror"), str(logs / "passwd.jsonl")]
    assert report.rejected == 0
    ids = {r[0] for r in store.db.cursor().execute("SELECT id FROM runs").fetchall()}
    assert ids == {"inside_run"}
    from fourgent.cli import main

    assert main(["ingest", str(logs)]) == 0
    assert f"Not read: {logs / 'passwd.jsonl'} is a link to outside the folder it is in" in capsys.readouterr().out


def test_a_file_keeps_its_first_rejected_lines_and_counts_the_rest(store, tmp_path, write_log, monkeypatch):
    monkeypatch.setattr("fourgent.store.duckdb.ingest.REJECTS_KEPT_PER_FILE", 5)
    noisy = write_log(tmp_path / "noisy.jsonl", *[f"garbage {i}\n" for i in range(12)], run_line("fine"))
    quiet = write_log(tmp_path / "quiet.jsonl", "junk\n", run_line("also_fine"))
    report = store.ingest([noisy, quiet], batch_bytes=64)  # several batches: the cap holds across them
    assert (report.rejected, report.rejects_not_kept, report.snapshots) == (13, 7, 2)
    kept = store.db.cursor().execute("SELECT file, count(*), max(line) FROM rejected_lines GROUP BY ALL "
                                     "ORDER BY 1").fetchall()
    assert [(f.rsplit("/", 1)[-1], n, last) for f, n, last in kept] == [("noisy.jsonl", 5, 5), ("quiet.jsonl", 1, 1)]
    from fourgent.filters import RunFilter

    assert store.runs_view(RunFilter()).rejected_lines == 13  # the page's count: every rejected line
    write_log(noisy, *[f"garbage {i}\n" for i in range(3)], run_line("fine"))  # replaced: a new file
    store.ingest([noisy])
    assert store.runs_view(RunFilter()).rejected_lines == 13 + 3  # the earlier content's rejects are not lost


def test_a_gz_that_inflates_past_its_cap_is_read_only_in_part_and_said_so(store, tmp_path, monkeypatch, capsys):
    import gzip

    monkeypatch.setattr("fourgent.store.duckdb.ingest.GZ_INFLATE_MIN", 64 << 10)
    bomb = tmp_path / "bomb.jsonl.gz"
    with gzip.open(bomb, "wt") as f:
        f.write(json.dumps(run_line("first")) + "\n")
        f.write("x\n" * 2_000_000)  # 4 MB of rejected lines from a few KB
    assert bomb.stat().st_size < 64 << 10
    report = store.ingest([bomb])
    assert report.cut == [str(bomb.resolve())]
    cap = 200 * bomb.stat().st_size  # GZ_INFLATE_RATIO times its size: at most one piece of that past it
    assert report.bytes <= 2 * cap + 4096 and report.lines < 2_000_001 // 2 and report.snapshots == 1
    again = store.ingest([bomb])
    assert again.lines == 0  # counted as read until it changes
    from fourgent.cli import _print_report

    _print_report(report)
    assert f"Read only in part: {bomb.resolve()} decompresses to over 200x its size" in capsys.readouterr().out


@given(st.lists(st.lists(st.sampled_from(["a", "a-b", "a.b", "b", "A", "a b", "é", "_"]), min_size=1, max_size=3)
                .map(lambda parts: "/logs/" + "/".join(parts) + ".jsonl"), min_size=2, max_size=12, unique=True))
def test_files_are_read_in_path_order_by_their_string_key(paths):
    from fourgent.logfiles import path_order

    assert sorted(paths, key=lambda p: path_order((p, p))) == [str(p) for p in sorted(map(Path, paths))]


def test_only_the_changed_files_of_a_refresh_are_read_and_in_path_order(store, tmp_path, write_log):
    logs = tmp_path / "logs"
    for name in ("a-b/x.jsonl", "a/x.jsonl", "c.jsonl"):
        write_log(logs / name, run_line(f"run_{name}"))
    store.ingest([logs], logs_dir=logs)
    # The same run in two files that both change: the later file in path order ("a/" before "a-b/") wins.
    write_log(logs / "a-b" / "x.jsonl", run_line("same", status="finished"), mode="ab")
    write_log(logs / "a" / "x.jsonl", run_line("same", status="failed", error={"message": "x"}), mode="ab")
    report = store.ingest([logs], logs_dir=logs)
    assert report.files == 2 and report.lines == 2
    assert store.db.cursor().execute("SELECT status FROM runs WHERE id = 'same'").fetchall() == [("finished",)]


def test_an_unreadable_file_is_skipped_said_and_read_once_it_can_be(store, tmp_path, write_log, unreadable):
    logs = tmp_path / "logs"
    write_log(logs / "a.jsonl", run_line("run_a"))
    locked = write_log(logs / "b.jsonl", run_line("run_b"))
    write_log(logs / "sub" / "c.jsonl", run_line("run_c"))
    write_log(logs / "shut" / "d.jsonl", run_line("run_d"))
    unreadable(locked)
    unreadable(logs / "shut")
    report = store.ingest([logs], logs_dir=logs)
    assert set(report.unreadable) == {"b.jsonl: Permission denied", f"{logs / 'shut'}: Permission denied"}
    assert q(store, "SELECT id FROM runs ORDER BY id") == [("run_a",), ("run_c",)]
    assert report.lines == report.snapshots + report.rejected == 2
    locked.chmod(0o644)
    (logs / "shut").chmod(0o755)
    again = store.ingest([logs], logs_dir=logs)
    assert again.unreadable == []
    assert q(store, "SELECT id FROM runs ORDER BY id") == [("run_a",), ("run_b",), ("run_c",), ("run_d",)]


def test_the_cli_names_what_it_could_not_read(tmp_path, write_log, unreadable, capsys):
    from fourgent.cli import main

    data = tmp_path / "data"
    write_log(data / "logs" / "a.jsonl", run_line("run_a"))
    unreadable(write_log(data / "logs" / "b.jsonl", run_line("run_b")))
    assert main(["--data-dir", str(data), "ingest"]) == 0
    out = capsys.readouterr().out
    assert "Not read (tried again next time): b.jsonl: Permission denied" in out
    assert "1 snapshots stored" in out


def test_a_crash_between_a_batch_and_its_settling_is_repaired_when_the_store_opens(data_paths, tmp_path, write_log,
                                                                                   monkeypatch):
    from fourgent.store.duckdb import DuckDBStore
    from fourgent.store.duckdb.ingest import Ingester

    log = write_log(tmp_path / "a.jsonl", *[run_line(f"r{i}", status="running") for i in range(20)],
                    *[run_line(f"r{i}") for i in range(20)])
    store = DuckDBStore(data_paths.db_path)

    def die(self, cur, base, part=None):
        raise SystemExit("killed after the batch's commit")

    with monkeypatch.context() as m:
        m.setattr(Ingester, "_settle", die)
        with pytest.raises(SystemExit):
            store.ingest([log])
    assert q(store, "SELECT count(*), count(DISTINCT id) FROM fg.runs") == [(40, 20)]  # what a crash leaves
    store.close()
    reopened = DuckDBStore(data_paths.db_path)  # no ingest: opening repairs it
    assert q(reopened, "SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE status = 'finished') FROM runs") \
        == [(20, 20, 20)]
    # Ad-hoc SQL too: it reads the snapshot.
    assert reopened.run_sql("SELECT count(*) AS n FROM runs", max_rows=10, time_limit=30).frame["n"][0] == 20
    reopened.close()
