"""Log rotation loses no line and reverts no run: files are followed by identity and content, not by name."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fourgent.workspace import open_workspace
from helpers import run_line

BASE = datetime(2026, 11, 20, 14, tzinfo=UTC)


def line(run_id: str, n: int, status: str = "running") -> bytes:
    """A snapshot of `run_id`; `n` orders its snapshots (updated_at), so the latest one is known."""
    stamp = (BASE + timedelta(milliseconds=n)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    record = run_line(run_id, status=status, updated_at=stamp, finished_at=None if status == "running" else stamp)
    return (json.dumps(record) + "\n").encode()


def runs(store) -> dict[str, str]:
    return dict(store.db.cursor().execute("SELECT id, status FROM runs").fetchall())


def independent_read(logs: Path) -> tuple[dict[str, str], int]:
    """Every run's latest snapshot in every file under `logs`, whatever its name, read without Fourgent."""
    latest: dict[str, tuple[str, str]] = {}
    lines = 0
    for path in sorted(p for p in logs.rglob("*") if p.is_file()):
        data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        for raw in data.splitlines():
            record = json.loads(raw)
            lines += 1
            if record["id"] not in latest or record["updated_at"] > latest[record["id"]][0]:
                latest[record["id"]] = (record["updated_at"], record["status"])
    return {run_id: status for run_id, (_, status) in latest.items()}, lines


def append(path: Path, *lines: bytes) -> None:
    with open(path, "ab") as f:
        f.write(b"".join(lines))


def compress(src: Path, dst: Path) -> None:
    with open(src, "rb") as f, gzip.open(dst, "wb") as g:
        shutil.copyfileobj(f, g)
    src.unlink()


@pytest.fixture
def logs(store, tmp_path) -> tuple[Path, Callable[[], object]]:
    folder = tmp_path / "logs"
    folder.mkdir()
    return folder, lambda: store.ingest([folder], logs_dir=folder)


def test_a_renamed_file_is_read_to_its_end_and_the_new_one_from_its_start(store, logs):
    folder, ingest = logs
    b = folder / "b.jsonl"
    append(b, line("r1", 1), line("r2", 2))
    ingest()
    append(b, line("r1", 3, "finished"), line("r3", 4))  # the unread tail
    b.rename(folder / "b.jsonl.1")
    append(b, line("r4", 5))
    report = ingest()
    assert report.followed == ["b.jsonl → b.jsonl.1"]
    assert runs(store) == {"r1": "finished", "r2": "running", "r3": "running", "r4": "running"}
    assert report.lines == 3
    append(folder / "b.jsonl.1", line("r2", 6, "finished"))  # the writer had not reopened yet: still followed
    assert ingest().lines == 1 and runs(store)["r2"] == "finished"
    assert ingest().lines == 0


def test_rotated_twice_and_compressed_later_nothing_is_read_twice(store, logs):
    folder, ingest = logs
    b = folder / "b.jsonl"
    append(b, line("r1", 1))
    ingest()
    b.rename(folder / "b.jsonl.1")
    append(b, line("r1", 2, "finished"))
    ingest()
    # logrotate with delaycompress: .1 becomes .2.gz, the live file .1, a new live file starts.
    compress(folder / "b.jsonl.1", folder / "b.jsonl.2.gz")
    b.rename(folder / "b.jsonl.1")
    append(b, line("r2", 3))
    report = ingest()
    assert report.lines == 1 and report.rejected == 0
    assert runs(store) == {"r1": "finished", "r2": "running"}
    assert ingest().lines == 0
    assert store.db.cursor().execute("SELECT count(*) FROM fg.files WHERE NOT gone").fetchall() == [(3,)]


def test_copytruncate_reads_the_unread_tail_from_the_copy(store, logs):
    folder, ingest = logs
    b = folder / "b.jsonl"
    append(b, line("r1", 1), line("r2", 2))
    ingest()
    append(b, line("r3", 3), line("r1", 4, "finished"))
    shutil.copyfile(b, folder / "b.jsonl.1")
    os.truncate(b, 0)
    append(b, line("r4", 5))
    report = ingest()
    assert report.followed == ["b.jsonl → b.jsonl.1"] and report.reread == ["b.jsonl"]
    assert runs(store) == {"r1": "finished", "r2": "running", "r3": "running", "r4": "running"}
    assert report.lines == 3  # r3, r1's end, r4: nothing read twice
    assert ingest().lines == 0


@pytest.mark.parametrize("rotated", ["b.jsonl-20261203", "b-20261203.jsonl", "b.jsonl.1.gz", "b-20261203.jsonl.gz"])
def test_date_suffixes_and_compression_at_rotation_keep_every_line_once(store, logs, rotated):
    folder, ingest = logs
    b = folder / "b.jsonl"
    append(b, line("r1", 1))
    ingest()
    append(b, line("r1", 2, "finished"), line("r2", 3))
    if rotated.endswith(".gz"):
        compress(b, folder / rotated)  # rotated and compressed before any ingest saw the rename
    else:
        b.rename(folder / rotated)
    append(b, line("r3", 4))
    report = ingest()
    assert runs(store) == {"r1": "finished", "r2": "running", "r3": "running"}
    assert report.lines == 3 and report.rejected == 0
    assert ingest().lines == 0


def test_a_dated_file_compressed_later_is_not_read_again_and_reverts_no_run(store, logs):
    folder, ingest = logs
    day = folder / "runs-2026-12-02.jsonl"
    append(day, line("r1", 1))
    ingest()
    append(folder / "runs-2026-12-03.jsonl", line("r1", 2, "finished"))  # the run ends in the next day's file
    ingest()
    # A compressed copy while it is being written, the original still there: the same lines, not read.
    with open(day, "rb") as f, gzip.open(folder / "runs-2026-12-02.jsonl.gz", "wb") as g:
        shutil.copyfileobj(f, g)
    report = ingest()
    assert report.lines == 0 and report.copies == ["runs-2026-12-02.jsonl.gz"]
    day.unlink()
    report = ingest()
    assert report.lines == 0 and report.followed == ["runs-2026-12-02.jsonl → runs-2026-12-02.jsonl.gz"]
    assert runs(store) == {"r1": "finished"}


def test_a_same_size_replacement_with_the_same_first_4kb_is_noticed(store, logs):
    folder, ingest = logs
    b = folder / "b.jsonl"
    head = b"".join(line(f"h{i}", i) for i in range(40))  # more than 4 KB in common
    assert len(head) > 4096
    append(b, head, line("old", 100))
    ingest()
    replacement = folder / "new.tmp"
    append(replacement, head, line("new", 100))  # the same size: only the last run differs
    assert replacement.stat().st_size == b.stat().st_size
    replacement.rename(b)  # replaced in place (another file under the same name)
    report = ingest()
    assert report.reread == ["b.jsonl"]
    assert "new" in runs(store)


def test_a_file_rewritten_in_place_keeping_size_and_first_bytes_is_noticed(store, logs):
    folder, ingest = logs
    b = folder / "b.jsonl"
    head = b"".join(line(f"h{i}", i) for i in range(40))
    append(b, head, line("old", 100))
    ingest()
    inode = b.stat().st_ino
    b.write_bytes(head + line("new", 100))  # the same inode, size and first 4 KB
    assert b.stat().st_ino == inode
    report = ingest()
    assert report.reread == ["b.jsonl"] and "new" in runs(store)


def test_a_deleted_file_keeps_its_rejected_lines_and_its_name_is_free_for_a_new_one(store, logs):
    folder, ingest = logs
    b = folder / "b.jsonl"
    append(b, b"not json\n", line("r1", 1))
    ingest()
    b.unlink()
    ingest()
    append(b, line("r2", 2))
    ingest()
    files = store.db.cursor().execute("SELECT file FROM rejected_lines").fetchall()
    assert files == [("b.jsonl (earlier file #1)",)]
    assert set(runs(store)) == {"r1", "r2"}


def test_a_store_from_before_identities_goes_on_where_it_stopped(store, logs):
    folder, ingest = logs
    b = folder / "b.jsonl"
    append(b, line("r1", 1))
    ingest()
    store.db.cursor().execute("UPDATE fg.files SET dev = NULL, ino = NULL, tail_digest = NULL")
    store.db.files_read = None
    append(b, line("r2", 2))
    assert ingest().lines == 1
    assert store.db.cursor().execute("SELECT count(*) FROM fg.files WHERE ino IS NOT NULL").fetchall() == [(1,)]


PATTERNS = ("rename", "copytruncate", "dateext", "delaycompress", "compress")


def rotate(folder: Path, pattern: str, n: int) -> None:
    """One rotation of folder/b.jsonl as logrotate does it with that option."""
    b = folder / "b.jsonl"
    if pattern == "rename":  # b.jsonl.k → b.jsonl.k+1, all kept (rotate count not reached)
        for k in range(n, 0, -1):
            (folder / f"b.jsonl.{k}").rename(folder / f"b.jsonl.{k + 1}")
        b.rename(folder / "b.jsonl.1")
    elif pattern == "copytruncate":
        shutil.copyfile(b, folder / f"b.jsonl.ct{n}")
        os.truncate(b, 0)
    elif pattern == "dateext":
        b.rename(folder / f"b-2026120{n % 10}{n:04d}.jsonl")
    elif pattern == "delaycompress":
        if (folder / "b.jsonl.1").exists():
            compress(folder / "b.jsonl.1", folder / f"b.jsonl.dc{n}.gz")
        b.rename(folder / "b.jsonl.1")
    else:
        compress(b, folder / f"b.jsonl.z{n}.gz")
    b.touch()


def test_a_minute_of_appends_through_every_rotation_pattern_loses_and_reverts_nothing(data_paths):
    """A writer appends for a minute, rotating through each pattern, while the dashboard's refresh ingests."""
    ws = open_workspace(data_paths.data_dir)
    folder = ws.paths.logs_dir
    stop = threading.Event()
    errors: list[BaseException] = []

    def dashboard() -> None:
        try:
            while not stop.is_set():
                ws.refresh(min_interval=0)
                time.sleep(0.05)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    reader = threading.Thread(target=dashboard)
    reader.start()
    n = 0
    written: set[str] = set()
    try:
        for pattern in PATTERNS:
            ends = time.monotonic() + 12
            rotations = 0
            while time.monotonic() < ends:
                with open(folder / "b.jsonl", "ab") as f:  # the engine: one snapshot per run step
                    for _ in range(50):
                        n += 1
                        written.add(f"{pattern}-{n // 3}")
                        f.write(line(f"{pattern}-{n // 3}", n, "finished" if n % 3 == 2 else "running"))
                time.sleep(0.05)
                if n % 1000 < 50:
                    rotate(folder, pattern, rotations)
                    rotations += 1
            assert rotations >= 3, pattern
    finally:
        stop.set()
        reader.join()
    assert not errors, errors
    ws.ingest_logs()
    expected, _ = independent_read(folder)
    assert set(expected) == written  # the files as rotation left them hold every run
    assert runs(ws.store) == expected  # every run there, at its latest snapshot
    cur = ws.store.db.cursor()
    assert cur.execute("SELECT sum(lines) FROM fg.ingests").fetchall() == [(n,)]  # every line read once
    assert cur.execute("SELECT count(*) FROM fg.rejects").fetchall() == [(0,)]
    ws.store.close()


def test_a_folder_that_cannot_be_searched_for_a_while_retires_nothing_and_reads_nothing_twice(store, logs,
                                                                                             unreadable):
    folder, ingest = logs
    sub = folder / "sub"
    sub.mkdir()
    append(sub / "x.jsonl", line("r1", 1), line("r2", 2))
    ingest()
    unreadable(sub)
    ingest()  # x.jsonl cannot be found or listed: it may be there, so it is left as it is
    sub.chmod(0o755)
    assert ingest().lines == 0
    cur = store.db.cursor()
    assert cur.execute("SELECT count(*) FROM fg.files WHERE gone").fetchall() == [(0,)]
    assert cur.execute("SELECT sum(lines) FROM fg.ingests").fetchall() == [(2,)]


def test_a_dated_copy_made_before_the_truncate_is_not_read_and_then_gives_the_tail(store, logs):
    folder, ingest = logs
    b = folder / "b.jsonl"
    append(b, line("r1", 1))
    ingest()
    append(b, line("r1", 2, "finished"))
    shutil.copyfile(b, folder / "b-20261203.jsonl")  # copytruncate with dateext: the copy is a log file's name
    report = ingest()
    assert report.copies == ["b-20261203.jsonl"]
    assert report.lines == 1  # r1's end, read from b.jsonl itself, once
    os.truncate(b, 0)
    append(b, line("r2", 3))
    report = ingest()
    assert report.followed == ["b.jsonl → b-20261203.jsonl"] and report.lines == 1  # only r2: nothing twice
    assert runs(store) == {"r1": "finished", "r2": "running"}
    assert store.db.cursor().execute("SELECT sum(lines) FROM fg.ingests").fetchall() == [(3,)]


def test_a_rotated_file_that_cannot_be_opened_waits_and_its_name_goes_to_the_new_file(store, logs, unreadable):
    folder, ingest = logs
    b = folder / "b.jsonl"
    append(b, line("r1", 1))
    ingest()
    append(b, line("r1", 2, "finished"))
    b.rename(folder / "b.jsonl.1")
    unreadable(folder / "b.jsonl.1")
    append(b, line("r2", 3))
    report = ingest()  # the new b.jsonl is read; the old one's tail waits (it was a UNIQUE(path) crash)
    assert report.unreadable == ["b.jsonl.1: Permission denied"]
    assert runs(store) == {"r1": "running", "r2": "running"}
    (folder / "b.jsonl.1").chmod(0o644)
    assert ingest().lines == 1
    assert runs(store) == {"r1": "finished", "r2": "running"}
    assert ingest().lines == 0
