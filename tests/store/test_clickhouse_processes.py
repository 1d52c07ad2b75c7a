"""Two dashboard processes and two ingest processes on one ClickHouse database at once, and two processes claiming
the same runs: the real engine (chDB) behind ClickHouse's HTTP interface (tests/chserver.py), every client a process
of its own, speaking to it as to a server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fourgent.store.clickhouse import ClickHouseStore
from helpers import ROOT, snapshot_log
from ui.load import _free_port, load, served, visits_from_logs


@pytest.fixture
def server(tmp_path) -> Iterator[str]:
    """A ClickHouse URL: the engine on a folder of the test's own, served on a free 127.0.0.1 port."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "chserver.py"), str(tmp_path / "engine"), str(port)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield f"clickhouse://default:@127.0.0.1:{port}/fourgent"
    finally:
        proc.terminate()
        proc.wait(30)


def _logs(folder: Path, seed: int, runs: int, prefix: str) -> list[dict | str]:
    """Write the two halves of a snapshot log under folder/a and folder/b (one run's snapshots in both)."""
    lines: list[dict | str] = []
    for half, part in zip(("a", "b"), snapshot_log(seed, runs), strict=True):
        for line in part:
            if isinstance(line, dict):
                line["id"] = prefix + line["id"]
        path = folder / half / "logs" / "runs.jsonl"
        path.parent.mkdir(parents=True)
        path.write_text("".join(json.dumps(x) + "\n" if isinstance(x, dict) else x for x in part), encoding="utf-8")
        lines += part
    return lines


def _env(url: str, data: Path) -> dict[str, str]:
    return {**os.environ, "FOURGENT_STORE": url, "FOURGENT_DATA_DIR": str(data), "FOURGENT_DEMO_RUNS": "0",
            "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"}


def test_two_dashboards_and_two_ingest_workers_share_one_database(server, tmp_path):
    dash_lines = _logs(tmp_path / "dash", 21, 200, "d")
    work_lines = _logs(tmp_path / "work", 22, 200, "w")
    dashboards = [tmp_path / "dash" / half for half in ("a", "b")]
    reports: list[object] = []
    errors: list[str] = []

    def ingest(half: str) -> None:
        data = tmp_path / "work" / half
        done = subprocess.run([sys.executable, "-m", "fourgent", "ingest", "--json", str(data / "logs")], cwd=ROOT,
                              env=_env(server, data), capture_output=True, text=True, timeout=300)
        (reports if done.returncode == 0 else errors).append(json.loads(done.stdout) if done.returncode == 0
                                                             else done.stderr)

    with served(dashboards[0], env={"FOURGENT_STORE": server}) as (one, pid1), \
            served(dashboards[1], env={"FOURGENT_STORE": server}) as (two, pid2):
        workers = [threading.Thread(target=ingest, args=(half,)) for half in ("a", "b")]
        looked: dict[str, object] = {}

        def look(url: str, data: Path) -> None:
            looked[url] = load(url, visits_from_logs(data / "logs", 40), sessions=3, seconds=20, dwell=(0.1, 0.6))

        lookers = [threading.Thread(target=look, args=pair) for pair in ((one, dashboards[0]), (two, dashboards[1]))]
        for t in (*workers, *lookers):
            t.start()
        for t in (*workers, *lookers):
            t.join(300)
    assert not errors, errors
    for report in looked.values():
        assert not report.failed, report.summary()  # type: ignore[attr-defined]
        assert len(report.views) >= 6, report.summary()  # type: ignore[attr-defined]
    store = ClickHouseStore(server)
    try:
        runs = {x["id"] for x in (*dash_lines, *work_lines) if isinstance(x, dict)}
        assert store.run_count() == len(runs)  # one row per run, though two workers wrote some of them
        bad = sum(1 for x in (*dash_lines, *work_lines) if isinstance(x, str))
        assert store.counts()["rejects"] == bad and store.counts()["files"] == 4
        assert all(r["lines"] == r["snapshots"] + r["rejected"] for r in reports)  # type: ignore[index]
    finally:
        store.close()


CLAIMER = """
import json, sys, time
from fourgent.store.clickhouse import ClickHouseStore
store = ClickHouseStore(sys.argv[1])
ids = [f"r{i}" for i in range(400)]
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
print(json.dumps(sorted(store.claim(ids))))
"""


def test_two_processes_claiming_the_same_runs_at_the_same_moment_never_get_the_same_run(server):
    ClickHouseStore(server).close()  # the tables, made before the race
    at = str(time.time() + 3)
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, server, at], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}) for _ in range(2)]
    won = [set(json.loads(p.communicate(timeout=120)[0])) for p in procs]
    assert not won[0] & won[1]
    assert won[0] | won[1] == {f"r{i}" for i in range(400)}
