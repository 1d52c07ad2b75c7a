"""Crashes and other processes: a killed ingest leaves no half batch; a held store never shows a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import duckdb
import pytest

from fourgent.store import StoreBusy
from fourgent.store.duckdb import DuckDBStore
from helpers import ROOT, run_line

# Ingests with small batches and stops inside the fourth batch's transaction,
# after its rows are written and before COMMIT, for the test to kill it there.
KILLABLE = """
import sys, time
from pathlib import Path
from fourgent import logfiles
from fourgent.store.duckdb import ingest as ing
from fourgent.store.duckdb import DuckDBStore
store = DuckDBStore(Path(sys.argv[1]))
load, calls = ing.Ingester._load, []
def slow_load(self, cur, table, part):
    load(self, cur, table, part)
    calls.append(1)
    if len(calls) == 4:
        print("inside batch 4", flush=True)
        time.sleep(60)
ing.Ingester._load = slow_load
store.ingest([Path(sys.argv[2])], batch_bytes=16 << 10)
print("done", flush=True)
"""

HOLDER = """
import sys, time
from pathlib import Path
from fourgent.store.duckdb import DuckDBStore
store = DuckDBStore(Path(sys.argv[1]))
print("holding", flush=True)
time.sleep(60)
"""


def _python(script: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True, env=env)


def test_a_killed_ingest_leaves_no_half_batch_and_the_next_one_finishes(tmp_path, write_log):
    lines = []
    for i in range(3000):
        lines.append(run_line(f"run_{i:05d}"))
        if i % 100 == 0:
            lines.append("broken line\n")
    log = write_log(tmp_path / "big.jsonl", *lines)
    db = tmp_path / "store.duckdb"
    child = _python(KILLABLE, str(db), str(log))
    assert child.stdout.readline().strip() == "inside batch 4"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    store = DuckDBStore(db)
    partial = store.db.cursor().execute("SELECT count(*) FROM runs").fetchall()[0][0]
    per_batch = partial // 3
    assert partial > 0 and partial % per_batch == 0 and partial // per_batch == 3  # batches 1-3, none of 4
    report = store.ingest([log])
    assert report.lines > 0
    runs = store.db.cursor().execute("SELECT count(*), count(DISTINCT id) FROM runs").fetchall()[0]
    assert runs == (3000, 3000)
    rejected = store.db.cursor().execute("SELECT count(*), count(DISTINCT line) FROM rejected_lines").fetchall()
    assert rejected[0] == (30, 30)
    store.close()


@pytest.fixture
def held_store(tmp_path):
    db = tmp_path / "data" / "fourgent.duckdb"
    DuckDBStore(db).close()
    holder = _python(HOLDER, str(db))
    assert holder.stdout.readline().strip() == "holding"
    yield db, holder
    holder.kill()
    holder.wait()


def test_a_second_process_gets_store_busy_naming_the_holder(held_store):
    db, holder = held_store
    with pytest.raises(StoreBusy) as caught:
        DuckDBStore(db)
    assert caught.value.pid == holder.pid
    assert "in use by process" in str(caught.value)


def test_cli_ingest_hands_files_to_the_running_dashboard(held_store, tmp_path, write_log):
    db, holder = held_store
    log = write_log(tmp_path / "incoming" / "new.jsonl", run_line("r1"))
    env = dict(os.environ, PYTHONPATH=str(ROOT), FOURGENT_DATA_DIR=str(db.parent))
    out = subprocess.run([sys.executable, "-m", "fourgent", "ingest", "--json", str(log)],
                         capture_output=True, text=True, env=env, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    summary = json.loads(out.stdout)
    assert summary["deferred"] is True and summary["holder_pid"] == holder.pid
    copied = db.parent / "logs" / "new.jsonl"
    assert summary["copied"] == [str(copied)]
    assert copied.read_bytes() == log.read_bytes()
    assert not list((db.parent / "logs").glob(".*tmp"))  # the temporary name is gone


def test_cli_sql_answers_while_another_process_holds_the_store(held_store):
    db, _ = held_store  # the holder wrote the snapshot when it opened the store
    env = dict(os.environ, PYTHONPATH=str(ROOT), FOURGENT_DATA_DIR=str(db.parent))
    out = subprocess.run([sys.executable, "-m", "fourgent", "sql", "SELECT count(*) AS n FROM runs",
                          "--format", "json"], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [{"n": 0}] and "Traceback" not in out.stderr


# Stops after the second batch committed and before its superseded snapshots are dropped.
UNSETTLED = """
import sys, time
from pathlib import Path
from fourgent import logfiles
from fourgent.store.duckdb import ingest as ing
from fourgent.store.duckdb import DuckDBStore
store = DuckDBStore(Path(sys.argv[1]))
settle, calls = ing.Ingester._settle, []
def slow_settle(self, cur, base, part=None):
    calls.append(1)
    if len(calls) == 2:
        print("between commit and settle", flush=True)
        time.sleep(60)
    settle(self, cur, base, part)
ing.Ingester._settle = slow_settle
store.ingest([Path(sys.argv[2])], batch_bytes=16 << 10)
"""


def test_a_crash_before_superseded_snapshots_are_dropped_is_repaired_when_the_store_opens(tmp_path, write_log):
    lines = []
    for i in range(600):  # each run written twice in a row: running, then finished
        lines.append(run_line(f"run_{i:04d}", status="running", finished_at=None))
        lines.append(run_line(f"run_{i:04d}", status="finished"))
    log = write_log(tmp_path / "snapshots.jsonl", *lines)
    db = tmp_path / "store.duckdb"
    child = _python(UNSETTLED, str(db), str(log))
    assert child.stdout.readline().strip() == "between commit and settle"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)

    left = duckdb.connect(str(db), read_only=True)  # as the killed ingest left the file
    rows, runs = left.execute("SELECT count(*), count(DISTINCT id) FROM fg.runs").fetchall()[0]
    left.close()
    assert rows > runs  # the killed batch's older snapshots are still there
    store = DuckDBStore(db)  # opening repairs it: no reader (SQL included) sees a run twice
    assert store.db.cursor().execute("SELECT count(*) = count(DISTINCT id) FROM runs").fetchall() == [(True,)]
    store.ingest([log])
    cur = store.db.cursor()
    assert cur.execute("SELECT count(*), count(DISTINCT id) FROM runs").fetchall()[0] == (600, 600)
    assert cur.execute("SELECT DISTINCT status FROM runs").fetchall() == [("finished",)]
    assert cur.execute("SELECT count(*) FROM fg.meta WHERE key = 'unsettled_from'").fetchall()[0][0] == 0
    store.close()


def test_cli_prune_while_the_dashboard_holds_the_store_says_it_applies_the_policy_itself(held_store):
    db, holder = held_store
    env = dict(os.environ, PYTHONPATH=str(ROOT), FOURGENT_DATA_DIR=str(db.parent), FOURGENT_RETENTION_DAYS="30")
    out = subprocess.run([sys.executable, "-m", "fourgent", "prune", "--older-than", "90d"],
                         capture_output=True, text=True, env=env, timeout=60, check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"the dashboard (process {holder.pid}) holds the store" in out.stderr
    assert "applies the retention policy in force itself, once a day: Runs started more than 30 days" in out.stderr
