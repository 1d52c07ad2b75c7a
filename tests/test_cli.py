"""`python -m fourgent`: exit codes, summaries and read-only SQL."""

from __future__ import annotations

import getpass
import json

import pytest

from fourgent.cli import main
from helpers import run_line


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "data"
    monkeypatch.setenv("FOURGENT_DATA_DIR", str(d))
    return d


# A workflow whose demo credential works, and a payload with every field it requires.
XERO_FLOW = {"id": "stripe-payment-xero-invoice", "source": "Stripe Payment Succeeded", "destination": "Xero Invoice"}
PAYLOAD = {"record_id": "1", "name": "Deal", "amount": 5.0, "contact_email": "a@example.com"}


def test_ingest_json_summary_accounts_for_the_samples(data_dir, samples, capsys):
    assert main(["ingest", "--json", str(samples)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {k: summary[k] for k in ("lines", "snapshots", "rejected", "added", "superseded")} == {
        "lines": 369, "snapshots": 361, "rejected": 8, "added": 356, "superseded": 5}
    assert len(summary["first_rejects"]) == 8
    assert all(r["file"].endswith("runs-with-bad-lines.jsonl") for r in summary["first_rejects"])


def test_ingest_text_summary_names_rejected_lines(data_dir, samples, capsys):
    assert main(["ingest", str(samples)]) == 0
    out = capsys.readouterr().out
    assert "369 lines = 361 snapshots stored + 8 rejected" in out
    assert "runs-with-bad-lines.jsonl:57: \"started_at\" is not an RFC 3339 timestamp" in out


def test_ingest_defaults_to_the_logs_folder(data_dir, write_log, capsys):
    write_log(data_dir / "logs" / "a.jsonl", run_line("r1"), run_line("r2"))
    assert main(["ingest", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 2


@pytest.mark.parametrize("arg", ["does-not-exist.jsonl", "README.md"])
def test_ingest_refuses_unusable_paths_with_exit_2(data_dir, arg, capsys, tmp_path):
    path = tmp_path / arg
    if arg == "README.md":
        path.write_text("hello")
    assert main(["ingest", str(path)]) == 2
    assert "error:" in capsys.readouterr().err


def test_demo_writes_and_ingests_every_status_and_error_kind(data_dir, capsys):
    assert main(["demo", "--runs", "3000", "--seed", "3", "--days", "10"]) == 0
    assert main(["sql", "SELECT DISTINCT status FROM runs ORDER BY 1", "--format", "json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert [r["status"] for r in json.loads(out)] == ["failed", "finished", "pending", "running", "skipped"]
    assert main(["sql", "SELECT DISTINCT error_kind FROM runs WHERE error_kind IS NOT NULL ORDER BY 1",
                 "--format", "csv"]) == 0
    assert capsys.readouterr().out.split() == ["error_kind", "auth", "logic", "unavailable", "validation"]
    assert main(["sql", "SELECT count(*) AS n FROM runs r JOIN runs o ON r.retrigger_of = o.id",
                 "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["n"] > 0  # re-triggered runs point at their originals


def test_a_second_demo_of_the_same_seed_replaces_nothing_and_names_the_file(data_dir, capsys):
    assert main(["demo", "--runs", "500", "--seed", "4"]) == 0
    first = data_dir / "logs" / "demo-4-0001.jsonl"
    before = first.read_bytes()
    capsys.readouterr()
    assert main(["demo", "--runs", "800", "--seed", "4"]) == 2
    err = capsys.readouterr().err
    assert str(first) in err and "Nothing was written" in err and first.read_bytes() == before
    assert main(["demo", "--runs", "300", "--seed", "5"]) == 0  # another seed adds its own file
    assert sorted(f.name for f in (data_dir / "logs").glob("demo-*.jsonl")) == ["demo-4-0001.jsonl",
                                                                              "demo-5-0001.jsonl"]


@pytest.mark.parametrize("query", [
    "DELETE FROM runs",
    "DROP VIEW runs",
    "CREATE TABLE x AS SELECT 1",
    "COPY (SELECT 1) TO 'out.csv'",
    "SELECT 1; DELETE FROM runs",
    "PRAGMA version",
    "ATTACH 'other.duckdb'",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM fg.connections",
])
def test_sql_refuses_anything_that_is_not_one_read(data_dir, samples, query, capsys):
    main(["ingest", str(samples)])
    capsys.readouterr()
    assert main(["sql", query]) == 2
    assert "refused:" in capsys.readouterr().err
    assert main(["sql", "SELECT count(*) AS n FROM runs", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 356}]


def test_sql_reports_a_bad_query_without_a_traceback(data_dir, samples, capsys):
    main(["ingest", str(samples)])
    assert main(["sql", "SELECT nope FROM runs"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "nope" in err


def test_sql_table_format(data_dir, samples, capsys):
    main(["ingest", str(samples)])
    capsys.readouterr()
    assert main(["sql", "SELECT status, count(*) AS n FROM runs GROUP BY 1 ORDER BY 1"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["status", "n"]
    assert "failed" in out and out.rstrip().endswith("(5 rows)")


def test_every_command_has_help(capsys):
    for command in ("ingest", "demo", "sql", "bench", "retrigger", "alerts"):
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0
        assert "usage: python -m fourgent " + command in capsys.readouterr().out


def test_retrigger_replays_failed_runs_and_resolves_them(data_dir, write_log, capsys):
    from fourgent.sandbox import slug
    from fourgent.workspace import demo_sandbox

    wf, payload = XERO_FLOW, PAYLOAD
    write_log(data_dir / "logs" / "a.jsonl",
              run_line("f1", workflow=wf, status="failed", trigger_payload=payload,
                       error={"message": "401", "step": 1, "kind": "auth"}),
              run_line("f2", workflow=wf, status="failed", trigger_payload={**payload, "contact_email": None},
                       error={"message": "Missing required field: contact_email", "step": 1, "kind": "validation"}))
    assert demo_sandbox().tokens[slug("Xero")] == "demo-xero"
    assert main(["retrigger", "--unresolved", "--as", "ana", "--json"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)  # stdout is exactly one JSON document
    assert "Re-triggering 2 runs" in err and "demo-xero" not in out + err  # no credential in what it prints
    assert summary["outcomes"] == {"finished": 1, "failed": 1} and set(summary["new_runs"]) == {"f1", "f2"}
    assert main(["retrigger", "--unresolved", "--json"]) == 0  # f1 is resolved now; f2 failed again
    again = json.loads(capsys.readouterr().out)
    assert set(again["new_runs"]) == {"f2"}
    assert main(["retrigger", "--workflow", "no-such-workflow", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["requested"] == 0  # nothing to do is JSON too
    assert main(["sql", "SELECT count(*) AS n FROM runs WHERE retrigger_of IS NOT NULL", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 3}]
    secret_key = (data_dir / "secret.key").read_bytes()
    assert b"demo-xero" not in (data_dir / "fourgent.duckdb").read_bytes() and secret_key
    # The CLI acts as its OS user (or --as), marked as the CLI, and each call has its audit entry.
    assert main(["sql", "SELECT actor, via, action, target, detail->>'count' AS n, outcome FROM audit "
                 "ORDER BY entry", "--format", "json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [(e["actor"], e["via"], e["action"], e["n"]) for e in entries] == [
        ("ana", "cli", "bulk re-trigger", "2"), (getpass.getuser(), "cli", "bulk re-trigger", "1")]
    assert entries[0]["target"] == "status=failed&unresolved=1" and {e["outcome"] for e in entries} == {"ok"}
    assert main(["sql", "SELECT DISTINCT retriggered_by FROM retriggers ORDER BY 1", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"retriggered_by": "ana (cli)"},
                                                    {"retriggered_by": f"{getpass.getuser()} (cli)"}]


def test_sql_caps_rows_and_stops_at_its_time_limit(data_dir, samples, capsys):
    main(["ingest", str(samples)])
    capsys.readouterr()
    assert main(["sql", "SELECT * FROM range(50) t(i)", "--max-rows", "10", "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["i", *map(str, range(10))]
    assert "showing the first 10 of 50 rows" in err
    assert main(["sql", "SELECT count(*) FROM range(1000000000000)", "--timeout", "0.5"]) == 1
    assert "time limit of 0.5 s" in capsys.readouterr().err


def test_retrigger_takes_any_runs_page_query(data_dir, write_log, capsys):
    wf, payload = XERO_FLOW, PAYLOAD
    write_log(data_dir / "logs" / "a.jsonl",
              run_line("auth1", workflow=wf, status="failed", trigger_payload=payload,
                       error={"message": "401 Unauthorized", "step": 1, "kind": "auth"}),
              run_line("logic1", workflow=wf, status="failed", trigger_payload=payload,
                       error={"message": "422 amount '5.0' rejected", "step": 1, "kind": "logic"}),
              run_line("ok1", workflow=wf, status="finished", trigger_payload=payload))
    assert main(["retrigger", "--query", "status=failed&kind=auth", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["new_runs"]) == {"auth1"}
    assert main(["retrigger", "--query", "?error=# amount … rejected", "--json"]) == 0  # a URL's query, pasted
    assert set(json.loads(capsys.readouterr().out)["new_runs"]) == {"logic1"}
    assert main(["retrigger", "--query", "q=ok1", "--json"]) == 0  # no status named: failed runs only
    assert json.loads(capsys.readouterr().out)["requested"] == 0
    assert main(["retrigger", "--query", "q=ok1", "--status", "finished", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["new_runs"]) == {"ok1"}
    assert main(["retrigger", "--query", "status=bogus&page=-1&kind=auth", "--unresolved", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["requested"] == 0  # auth1 was resolved by its re-trigger


def test_the_benchmark_runs_end_to_end_on_a_small_store(tmp_path, capsys):
    """Its figures go into docs/performance.md: every query of the suite runs, on the store and the floor."""
    assert main(["bench", "--runs", "3000", "--workdir", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "bench-3000.json").read_text())
    names = [q["query"] for q in summary["queries"]]
    assert "Overview, 30 days, Asia/Kolkata (+5:30)" in names and "Workflows page" in names
    assert all(q["ms"] > 0 and q["floor_ms"] > 0 for q in summary["queries"])
    assert summary["runs"] >= 3000 and summary["ingest_s"] > 0
    assert "fourgent reaches" in capsys.readouterr().out
    # The operator actions' figures, on a copy of the same store (the bench's own is left as it was).
    assert main(["bench", "--runs", "3000", "--workdir", str(tmp_path), "--actions"]) == 0
    out = capsys.readouterr().out
    assert "handled in one go" in out and "unresolved count (rollups)" in out
    assert not (tmp_path / "actions.duckdb").exists()


def test_retrigger_with_an_edited_payload_from_a_file_or_stdin(data_dir, write_log, capsys, tmp_path, monkeypatch):
    import io

    lacking = {**PAYLOAD, "contact_email": None}
    write_log(data_dir / "logs" / "a.jsonl",
              run_line("f2", workflow=XERO_FLOW, status="failed", trigger_payload=lacking, steps=[],
                       error={"message": "Missing required field: contact_email", "step": None,
                              "kind": "validation"}))
    edited = tmp_path / "payload.json"
    edited.write_text(json.dumps(lacking))  # still lacking: refused before anything is sent
    assert main(["retrigger", "f2", "--payload", str(edited)]) == 1
    assert "Missing required field of workflow stripe-payment-xero-invoice: contact_email" in capsys.readouterr().err
    edited.write_text("{not json")
    assert main(["retrigger", "f2", "--payload", str(edited)]) == 1
    assert "Not valid JSON" in capsys.readouterr().err
    assert main(["retrigger", "f2", "f3", "--payload", str(edited)]) == 2
    assert "exactly one RUN_ID" in capsys.readouterr().err
    assert main(["retrigger", "f2", "--payload", str(edited), "--from-failed-step"]) == 2
    assert "cannot reuse steps" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({**PAYLOAD, "contact_email": "fixed@example.com"})))
    assert main(["retrigger", "f2", "--payload", "-", "--as", "ana", "--json"]) == 0
    out, err = capsys.readouterr()
    assert '+  "contact_email": "fixed@example.com"' in err  # the diff, before it runs
    summary = json.loads(out)
    assert summary["outcomes"] == {"finished": 1}
    assert main(["sql", "SELECT mode, payload_diff->>'$[0].path' AS path, retriggered_by FROM retriggers",
                 "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"mode": "edited", "path": "$.contact_email",
                                                    "retriggered_by": "ana (cli)"}]
    assert main(["retrigger", "--unresolved", "--json"]) == 0  # the edited replay resolved it
    assert json.loads(capsys.readouterr().out)["requested"] == 0
    assert main(["sql", "SELECT detail->>'mode' AS mode, detail->'changed' AS changed FROM audit", "--format",
                 "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"mode": "edited", "changed": '["$.contact_email"]'}]


def _aged(run_id: str, days_ago: float) -> dict:
    from datetime import UTC, datetime, timedelta

    when = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
    return run_line(run_id, started_at=when, finished_at=when, steps=[])


def test_prune_archives_removes_and_says_what_it_did(data_dir, write_log, tmp_path, capsys):
    write_log(data_dir / "logs" / "a.jsonl", _aged("old_1", 120), _aged("old_2", 100), _aged("new", 3))
    assert main(["ingest"]) == 0
    capsys.readouterr()
    assert main(["prune", "--older-than", "90d", "--dry-run"]) == 0
    assert "Would prune 2 runs" in capsys.readouterr().out
    assert main(["prune", "--older-than", "90d", "--archive", str(tmp_path / "archive")]) == 0
    out = capsys.readouterr().out
    assert "Pruned 2 runs (started before" in out and "Archived first, as Parquet, in " in out
    assert "The store file:" in out and "MB →" in out
    [folder] = (tmp_path / "archive").iterdir()
    assert (folder / "runs.parquet").exists()
    assert main(["ingest"]) == 0  # the logs read again: nothing comes back
    capsys.readouterr()
    assert main(["sql", "SELECT id FROM runs", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"id": "new"}]
    assert main(["sql", "SELECT action, actor, detail->>'runs' AS runs FROM audit WHERE action = 'prune'",
                 "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"action": "prune", "actor": getpass.getuser(), "runs": "2"}]


def test_prune_applies_the_policy_in_force_and_prints_json(data_dir, write_log, monkeypatch, capsys):
    write_log(data_dir / "logs" / "a.jsonl", _aged("old", 40), _aged("new", 3))
    assert main(["ingest"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("FOURGENT_RETENTION_DAYS", "30")
    assert main(["prune", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["runs"] == 1 and summary["dry_run"] is False and summary["bytes_after"] > 0


@pytest.mark.parametrize(("args", "env", "says"), [
    (["--older-than", "ninety"], "", "--older-than must be a whole number of days"),
    (["--older-than", "0d"], "", "--older-than must be a whole number of days"),
    ([], "", "nothing to prune by: give --older-than"),
    ([], "3 months", "FOURGENT_RETENTION_DAYS must be a whole number of days"),
])
def test_prune_refuses_unusable_settings_with_exit_2_and_changes_nothing(data_dir, write_log, monkeypatch, capsys,
                                                                          args, env, says):
    write_log(data_dir / "logs" / "a.jsonl", _aged("old", 400))
    assert main(["ingest"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("FOURGENT_RETENTION_DAYS", env)
    assert main(["prune", *args]) == 2
    captured = capsys.readouterr()
    assert says in captured.err and "Traceback" not in captured.err
    assert main(["sql", "SELECT count(*) AS n FROM runs", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 1}]


def test_prune_refuses_an_archive_that_is_a_file(data_dir, write_log, tmp_path, capsys):
    write_log(data_dir / "logs" / "a.jsonl", _aged("old", 400))
    assert main(["ingest"]) == 0
    (tmp_path / "not-a-folder").write_text("")
    assert main(["prune", "--older-than", "90", "--archive", str(tmp_path / "not-a-folder")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_the_prune_benchmark_runs_end_to_end_on_a_small_store(tmp_path, capsys):
    assert main(["bench", "--prune", "--runs", "3000", "--workdir", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "prune-3000.json").read_text())
    assert summary["pruned"] + summary["left"] == summary["runs"] and summary["compacted"] and summary["daily_pruned"]
    assert summary["bytes_after"] < summary["bytes_before"] and summary["reingest_lines"] == 0
    assert (tmp_path / "store.duckdb").exists()  # kept whole for the next run
    assert "Retention on " in capsys.readouterr().out


@pytest.mark.parametrize("argv, said", [
    (["bench", "--runs", "0"], "argument --runs: 0 is below 1"),
    (["demo", "--runs", "-5"], "argument --runs: -5 is below 1"),
    (["demo", "--runs", "many"], "argument --runs: 'many' is not a whole number"),
    (["retrigger", "--unresolved", "--limit", "0"], "argument --limit: 0 is below 1"),
    (["retrigger", "--unresolved", "--concurrency", "-1"], "argument --concurrency: -1 is below 1"),
])
def test_counts_below_one_are_refused_in_words_with_exit_2(tmp_path, argv, said, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--data-dir", str(tmp_path / "d"), *argv])
    assert stop.value.code == 2
    assert said in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("argv", [["retrigger", "run_1"], ["prune", "--older-than", "90d"]])
def test_commands_that_read_a_store_do_not_make_one_for_a_mistyped_data_dir(tmp_path, argv, capsys):
    missing = tmp_path / "typo"
    assert main(["--data-dir", str(missing), *argv]) == 1
    assert f"there is no store at {missing / 'fourgent.duckdb'}" in capsys.readouterr().err
    assert not missing.exists()


def test_migrate_copies_the_store_into_clickhouse_checks_the_counts_and_is_audited(data_dir, samples, tmp_path,
                                                                                     capsys):
    from fourgent.filters import RunFilter
    from fourgent.store.clickhouse import ClickHouseStore

    assert main(["ingest", str(samples)]) == 0
    capsys.readouterr()
    target = f"chdb://{tmp_path / 'ch'}"
    assert main(["migrate", "--to", target, "--as", "ana"]) == 0
    out = capsys.readouterr().out
    assert f"Copied into {target}" in out and "356 runs, 2 files, 8 rejects" in out and "the same counts" in out
    assert main(["migrate", "--to", target]) == 1  # into a database that holds runs: refused, nothing doubled
    assert "already holds 356 runs" in capsys.readouterr().err
    copy = ClickHouseStore(target)
    try:
        assert copy.run_count() == 356 and copy.counts()["rejects"] == 8
        assert copy.count(RunFilter(statuses=("failed",))) > 0
        # The files' offsets came too: ingest goes on where the embedded store stopped, nothing read twice.
        assert copy.ingest([samples]).lines == 0 and copy.run_count() == 356
    finally:
        copy.close()
    assert main(["sql", "SELECT actor, outcome, target FROM audit WHERE action = 'migrate' ORDER BY acted_at",
                 "--format", "json"]) == 0
    assert [(r["actor"], r["outcome"]) for r in json.loads(capsys.readouterr().out)] == [("ana", "ok"),
                                                                                         (getpass.getuser(), "failed")]


@pytest.mark.parametrize("url", ["postgres://u:hunter2@db/x", "/some/folder", "duckdb:///x.duckdb"])
def test_migrate_refuses_a_target_that_is_not_clickhouse_with_exit_2_and_no_password_shown(data_dir, url, capsys):
    assert main(["migrate", "--to", url]) == 2
    err = capsys.readouterr().err
    assert "not a ClickHouse store URL" in err and "hunter2" not in err
    assert not data_dir.exists()  # nothing made


def test_migrate_without_a_store_says_so_and_makes_nothing(data_dir, tmp_path, capsys):
    assert main(["migrate", "--to", f"chdb://{tmp_path / 'ch'}"]) == 1
    assert "nothing to migrate" in capsys.readouterr().err
    assert not data_dir.exists() and not (tmp_path / "ch").exists()


@pytest.mark.parametrize("secret, url", [
    ("hunter2", "clickhouse://fourgent:hunter2@127.0.0.1:{port}/runs"),
    ("s3cr#et/x?", "clickhouse://fourgent:s3cr#et/x?@127.0.0.1:{port}/runs"),  # what a URL parser loses
    ("hunter2", "clickhouses://fourgent:hunter2@127.0.0.1:{port}/runs?compress=1"),
])
def test_migrate_to_a_server_that_does_not_answer_says_why_and_never_shows_or_audits_the_password(
        data_dir, samples, capsys, secret, url):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["ingest", str(samples)]) == 0
    capsys.readouterr()
    assert main(["migrate", "--to", url.format(port=port)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: clickhouse") and "fourgent:***@127.0.0.1:" in err
    assert secret not in err and "Traceback" not in err
    assert main(["sql", "SELECT target, outcome, message FROM audit WHERE action = 'migrate'", "--format",
                 "json"]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert entry["outcome"] == "failed" and secret not in json.dumps(entry) and "***" in entry["target"]


@pytest.mark.parametrize("url, says", [
    ("clickhouse://u:p@db.example:http/x", "names no host"),
    ("clickhouse://u:p@db.example:8123/bad-name", "not letters, digits and _"),
    ("chdb://relative/folder", "absolute path"),
])
def test_migrate_refuses_a_malformed_clickhouse_url_with_exit_2(data_dir, capsys, url, says):
    assert main(["migrate", "--to", url]) == 2
    err = capsys.readouterr().err
    assert says in err and ":p@" not in err
