"""A full disk and a read-only logs folder: said in words, what is stored keeps showing, and it recovers by itself."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from fourgent.store import StoreWriteFailed
from fourgent.workspace import LogsNotWritable, open_workspace, retrigger
from helpers import ROOT, metric, open_app, run_line


def lines(prefix: str, n: int) -> str:
    return "".join(json.dumps(run_line(f"{prefix}{i}", reference="x" * 600)) + "\n" for i in range(n))


def test_a_full_disk_fails_the_ingest_in_words_keeps_what_is_stored_and_loses_nothing(data_paths, disk_full):
    ws = open_workspace(data_paths.data_dir)
    (data_paths.logs_dir / "a.jsonl").write_text(lines("a", 50))
    assert ws.refresh(min_interval=0).added == 50
    (data_paths.logs_dir / "b.jsonl").write_text(lines("b", 3000))
    disk_full(True)
    with pytest.raises(StoreWriteFailed, match=r"could not save new lines \(File too large, in fourgent\.duckdb"):
        ws.ingest_logs()
    assert ws.refresh(min_interval=0) is None  # a page's refresh: no error, the reason kept for the pages
    assert ws.ingest_problem is not None and "Nothing was lost" in ws.ingest_problem
    assert ws.store.run_count() == 50  # what is stored still reads
    disk_full(False)
    assert ws.refresh(min_interval=0).added == 3000  # by itself, once it can write
    assert ws.ingest_problem is None
    assert ws.store.run_count() == 3050
    ws.store.close()


def cli(*args: str, data_dir, limit_bytes: int | None = None) -> subprocess.CompletedProcess:
    def limit() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    return subprocess.run([sys.executable, "-m", "fourgent", "--data-dir", str(data_dir), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, preexec_fn=limit if limit_bytes else None)


def test_the_cli_says_a_full_disk_in_words_not_a_traceback(data_paths):
    (data_paths.logs_dir / "a.jsonl").write_text(lines("a", 10))
    assert cli("ingest", data_dir=data_paths.data_dir).returncode == 0
    (data_paths.logs_dir / "b.jsonl").write_text(lines("b", 3000))
    for args in (["ingest"], ["demo", "--runs", "3000"]):
        done = cli(*args, data_dir=data_paths.data_dir, limit_bytes=256 << 10)
        assert done.returncode == 1, done
        assert "Traceback" not in done.stderr
        assert done.stderr.startswith("error: ") and "File too large" in done.stderr
    done = cli("ingest", data_dir=data_paths.data_dir)  # space back: everything is read, nothing lost
    assert done.returncode == 0 and "3,000 snapshots stored" in done.stdout


def test_a_read_only_logs_folder_refuses_demo_and_retrigger_in_words(data_paths, unreadable, capsys):
    from fourgent.access import cli_actor
    from fourgent.cli import main

    (data_paths.logs_dir / "a.jsonl").write_text(json.dumps(run_line("f1", status="failed",
                                                                     error={"message": "boom"})) + "\n")
    ws = open_workspace(data_paths.data_dir)
    ws.ingest_logs()
    unreadable(data_paths.logs_dir, mode=0o555)
    with pytest.raises(LogsNotWritable, match="Nothing was re-triggered.*Permission denied"):
        retrigger(ws, cli_actor("ana"), ["f1"])
    assert main(["--data-dir", str(data_paths.data_dir), "demo", "--runs", "10"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Permission denied") and "Traceback" not in err
    assert not any(p.name.startswith(".fourgent-write-check") for p in data_paths.logs_dir.iterdir())


def test_a_fresh_install_with_a_read_only_logs_folder_opens_and_says_why_there_are_no_runs(dashboard, unreadable):
    data = dashboard(200)  # a first start that would write 200 demo runs
    unreadable(data / "logs", mode=0o555)
    at = open_app()
    assert not at.exception
    said = " ".join(t.value for t in at.text)
    assert "No demo runs: they could not be written into" in said and "Permission denied" in said


def test_the_runs_page_keeps_showing_the_stored_runs_while_the_disk_is_full(sampled_app, disk_full):
    at = open_app()
    assert any("Reference" in d.value.columns for d in at.dataframe)
    (sampled_app / "logs" / "new.jsonl").write_text(lines("new", 3000))
    disk_full(True)
    try:
        time.sleep(2.1)  # past the refresh's interval: this rerun ingests
        at.run()
        assert not at.exception
        assert any("Reference" in d.value.columns for d in at.dataframe)  # the stored runs, still on show
        assert any("could not save new lines" in t.value for t in at.text)
    finally:
        disk_full(False)
    time.sleep(2.1)
    at.run()
    assert not any("could not save new lines" in t.value for t in at.text)
    assert metric(at, "Matching runs") == 356 + 3000  # every sample run and every new one: nothing lost
