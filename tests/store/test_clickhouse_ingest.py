"""Ingest straight into ClickHouse: the same runs as the embedded store, every line accounted for, a worker killed
mid-batch and run again duplicating nothing, two workers and a reader at once, claims that hold across stores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, timedelta
from pathlib import Path

import pytest

from fourgent.filters import RunFilter
from fourgent.spec import REJECTS_KEPT_PER_FILE
from fourgent.store.clickhouse import ClickHouseStore
from fourgent.store.clickhouse.sql import RUNS
from fourgent.store.duckdb import DuckDBStore
from helpers import ROOT, T0, run_line, snapshot_log


def latest(store: DuckDBStore | ClickHouseStore) -> set[tuple[str, str, str, str | None]]:
    sql = "SELECT id, status, started_at, updated_at FROM runs"
    rows = (store._rows(sql.replace("runs", RUNS)) if isinstance(store, ClickHouseStore)
            else store.db.cursor().execute(sql).fetchall())
    return {(i, s, a.astimezone(UTC).isoformat(), u.astimezone(UTC).isoformat() if u else None) for i, s, a, u in rows}


@pytest.fixture
def ch(tmp_path):
    store = ClickHouseStore(f"chdb://{tmp_path / 'ch'}")
    yield store
    store.close()


@pytest.fixture
def logs(tmp_path, write_log) -> Path:
    folder = tmp_path / "logs"
    for i, part in enumerate(snapshot_log(7, 400)):
        write_log(folder / f"part-{i}.jsonl", *part)
    return folder


def test_rule_one_across_batches_keeps_the_snapshots_the_embedded_store_keeps(ch, tmp_path, logs):
    embedded = DuckDBStore(tmp_path / "e.duckdb")
    try:
        want = embedded.ingest([logs], logs_dir=logs)
        got = ch.ingest([logs], logs_dir=logs, batch_bytes=8_000)  # dozens of batches: the rule applied across them
        assert latest(ch) == latest(embedded) and ch.run_count() == 400
        for field in ("lines", "snapshots", "rejected", "added", "updated", "superseded"):  # however batches cut
            assert getattr(got, field) == getattr(want, field), field
        assert got.lines == got.snapshots + got.rejected and got.snapshots == got.added + got.updated + got.superseded
        assert ch.counts()["rejects"] == want.rejected
        # A run whose started_at changed is read once, under its latest start (the old key's row is deleted).
        assert ch._rows(f"SELECT count() FROM {RUNS} WHERE id IN (SELECT id FROM {RUNS} "
                        "GROUP BY id HAVING count() > 1)")[0][0] == 0
        assert ch._rows("SELECT count() FROM runs WHERE deleted = 1")[0][0] > 0  # such runs were in the log
        assert ch.overview(_window()).now.runs == embedded.overview(_window()).now.runs
    finally:
        embedded.close()


def _window():
    from fourgent.overview import Window

    return Window(T0 - timedelta(days=1), T0 + timedelta(days=5))


def test_appended_lines_are_read_on_from_the_offset_kept_in_the_engine(ch, tmp_path, write_log):
    log = write_log(tmp_path / "logs" / "a.jsonl", run_line("one"), "not json\n")
    assert ch.ingest([log.parent]).lines == 2
    write_log(log, run_line("two"), run_line("one", status="failed", error={"message": "boom"},
                                             updated_at="2026-11-20T15:00:00Z"), mode="ab")
    again = ClickHouseStore(ch.url)  # another process would find the offsets in the database, not in memory
    try:
        report = again.ingest([log.parent])
        assert (report.lines, report.added, report.updated) == (2, 1, 1)
        assert again.status_counts(RunFilter()) == {**dict.fromkeys(again.status_counts(RunFilter()), 0),
                                                    "finished": 1, "failed": 1}
        assert again.ingest([log.parent]).lines == 0
    finally:
        again.close()


def test_a_worker_whose_clock_runs_behind_still_replaces_the_stored_snapshot(ch, tmp_path, write_log):
    log = write_log(tmp_path / "logs" / "a.jsonl", run_line("one"))
    ch.ingest([log.parent])
    # As a worker whose clock ran far ahead would have left it: the stored row's seq above any this clock makes.
    ch.client.command("INSERT INTO runs SELECT * REPLACE (toUInt64(9000000000000000000) AS seq) FROM runs FINAL")
    write_log(log, run_line("one", status="failed", error={"message": "boom"}, updated_at="2026-11-20T15:00:00Z"),
              mode="ab")
    assert ch.ingest([log.parent]).snapshots == 1
    assert ch.status_counts(RunFilter())["failed"] == 1 and ch.run_count() == 1


def test_a_files_rejected_lines_past_the_cap_are_counted_across_batches(ch, tmp_path, write_log):
    bad = REJECTS_KEPT_PER_FILE + 25
    log = write_log(tmp_path / "logs" / "a.jsonl", *([f"bad line {i}\n" for i in range(bad)] + [run_line("ok")]))
    report = ch.ingest([log.parent], batch_bytes=4_000)
    assert (report.rejected, report.rejects_not_kept) == (bad, 25)
    assert ch.counts()["rejects"] == REJECTS_KEPT_PER_FILE
    assert ch.runs_view(RunFilter()).rejected_lines == bad  # kept and counted


# The child: ingest with small batches, merges stopped (so a row written twice stays two rows), and SIGKILL itself
# right after the insert KILL_AFTER names (the Nth into that table), before the files' offsets are written: a worker
# killed mid-batch. Run to its end, it prints how many rows runs and rejects hold, FINAL or not.
CHILD = """
import os, signal, sys
from pathlib import Path
from fourgent.store.clickhouse import ClickHouseStore

table, nth = os.environ.get("KILL_AFTER", "none:0").split(":")
store = ClickHouseStore(sys.argv[1])
store.client.command("SYSTEM STOP MERGES runs")
store.client.command("SYSTEM STOP MERGES rejects")
insert_arrow = store.client.insert_arrow
seen = {"n": 0}

def killing_insert(name, *args, **kwargs):
    result = insert_arrow(name, *args, **kwargs)
    if name == table:
        seen["n"] += 1
        if seen["n"] == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)
    return result

store.client.insert_arrow = killing_insert
report = store.ingest([Path(sys.argv[2])], logs_dir=Path(sys.argv[2]), batch_bytes=6_000)
print(store.client.command("SELECT concat(toString((SELECT count() FROM runs)), ' ', "
                           "toString((SELECT count() FROM rejects)))"), report.lines)
"""


def _child(url: str, logs: Path, kill_after: str = "none:0") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CHILD, url, str(logs)], cwd=ROOT, timeout=300, text=True,
                          capture_output=True,
                          env={**os.environ, "KILL_AFTER": kill_after, "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"})


@pytest.mark.parametrize("kill_after", ["runs:3", "rejects:2"])
def test_a_worker_killed_mid_batch_and_run_again_duplicates_nothing(tmp_path, logs, kill_after):
    clean = _child(f"chdb://{tmp_path / 'clean'}", logs)
    assert clean.returncode == 0, clean.stderr
    rows_unkilled = clean.stdout.split()[:2]
    killed_url = f"chdb://{tmp_path / 'killed'}"
    assert _child(killed_url, logs, kill_after).returncode == -signal.SIGKILL
    resumed = _child(killed_url, logs)  # the same worker started again
    assert resumed.returncode == 0, resumed.stderr
    raw_runs, raw_rejects, lines = resumed.stdout.split()
    assert int(lines) > 0  # it read again what the killed one had not recorded as read
    # Row for row what a worker never killed wrote: the repeated inserts were dropped whole (their token).
    assert [raw_runs, raw_rejects] == rows_unkilled
    store = ClickHouseStore(killed_url)
    embedded = DuckDBStore(tmp_path / "e.duckdb")
    try:
        embedded.ingest([logs], logs_dir=logs)
        assert latest(store) == latest(embedded) and store.run_count() == 400
        rejected = embedded.db.cursor().execute("SELECT count(*) FROM rejected_lines").fetchall()[0][0]
        assert store.counts()["rejects"] == rejected
    finally:
        embedded.close()
        store.close()


def test_two_workers_on_their_own_folders_and_a_reader_work_at_once(tmp_path, write_log):
    url = f"chdb://{tmp_path / 'ch'}"
    parts = snapshot_log(11, 300)
    folders = [write_log(tmp_path / "logs" / f"w{i}" / "runs.jsonl", *part).parent for i, part in enumerate(parts)]
    workers = [ClickHouseStore(url) for _ in folders]
    reader = ClickHouseStore(url)
    reports, errors, reads = [], [], []
    done = threading.Event()

    def work(store: ClickHouseStore, folder: Path) -> None:
        try:
            reports.append(store.ingest([folder], logs_dir=folder.parent, batch_bytes=5_000))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def read() -> None:
        while not done.is_set():
            try:
                reads.append(reader.runs_view(RunFilter(), size=25).total)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=work, args=pair) for pair in zip(workers, folders, strict=True)]
    looking = threading.Thread(target=read)
    try:
        looking.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        done.set()
        looking.join(60)
        assert not errors
        lines = sum(len(p) for p in parts)
        assert sum(r.lines for r in reports) == lines == sum(r.snapshots + r.rejected for r in reports)
        assert reader.run_count() == len({line["id"] for p in parts for line in p if isinstance(line, dict)})
        # The reader saw the runs grow; a run whose snapshots both workers wrote at once may count twice for a moment
        # (until the later of the two repairs it), never more than that.
        ids = [{x["id"] for x in part if isinstance(x, dict)} for part in parts]
        split = len(ids[0] & ids[1])
        assert reads and all(b >= a - split for a, b in zip(reads, reads[1:], strict=False))
        assert max(reads) <= reader.run_count() + split and reads[-1] > 0
        assert [w.ingest([f], logs_dir=f.parent).lines for w, f in zip(workers, folders, strict=True)] == [0, 0]
        assert reader.ingest([tmp_path / "logs"], logs_dir=tmp_path / "logs").lines == 0  # the files are known
    finally:
        for s in (*workers, reader):
            s.close()


def test_two_dashboards_claiming_the_same_runs_at_once_each_get_a_share_never_the_same_run(tmp_path, monkeypatch):
    from fourgent import process

    # Two dashboard processes, as claims know them: this one and its parent (both alive). chDB lets one process
    # open the database, so the second dashboard is a thread that claims under the parent's identity.
    parent = f"{os.getppid()}:{process._started(os.getppid())}"
    mine = process.me()
    who = threading.local()
    monkeypatch.setattr(process, "me", lambda: getattr(who, "owner", mine))
    url = f"chdb://{tmp_path / 'ch'}"
    a, b = ClickHouseStore(url), ClickHouseStore(url)
    ids = [f"r{i}" for i in range(300)]
    won: dict[str, set[str]] = {}
    start = threading.Barrier(2)

    def click(owner: str, store: ClickHouseStore) -> None:
        who.owner = owner
        start.wait()
        won[owner] = store.claim(ids)

    try:
        threads = [threading.Thread(target=click, args=pair) for pair in ((mine, a), (parent, b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not won[mine] & won[parent] and won[mine] | won[parent] == set(ids)
        assert a.claim(ids) == set()  # all held by live processes: a second click takes nothing
        assert set(a.claimed()) == set(ids)
        a.release(ids[:10])
        assert a.claim(ids[:20]) == set(ids[:10])
        # A claim of a process that is gone (pid 1 started at another time) is released for the next claimer.
        a.client.insert("retrigger_claims", [["orphan", "1:0"], ["elsewhere", "other-host/1:0"]],
                        column_names=["run_id", "owner"])
        assert a.claim(["orphan"]) == {"orphan"}
        # Another machine's process cannot be looked up here: its claim holds until it releases it.
        assert a.claim(["elsewhere"]) == set()
    finally:
        a.close()
        b.close()
