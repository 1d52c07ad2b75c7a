"""A load client for the served dashboard: many sessions over Streamlit's own websocket, every page run timed,
every error a page showed kept, and the server's memory sampled.

It speaks the protocol the browser speaks (a `rerun_script` BackMsg per page view, ForwardMsgs until
`script_finished`), and fires the live table's auto-reruns while a session reads a page, as the browser's
timer does, so 20 sessions here load the server the way 20 tabs do without 20 Chromiums on the same 2 cores.

    python -m ui.load --data-dir DIR --sessions 20 --seconds 300    # serves DIR's store itself
    python -m ui.load --url http://127.0.0.1:8501 --pid PID ...     # or loads a dashboard already running
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent
RUNS = ""  # the default page's URL path: the Runs page is served at /
ANSWER_TIMEOUT_S = 120.0  # a page run that has not finished by then counts as an error, not as a slow run
LOST = "(connection lost)"  # the page of a PageRun that records a lost connection
DONE = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}


@dataclass(frozen=True)
class Visit:
    """One page view as the browser asks for it: the page's URL path ("" for the Runs page, the default) and
    its query string."""

    page: str
    query: str = ""

    def __str__(self) -> str:
        return f"/{self.page}" + (f"?{self.query}" if self.query else "")


@dataclass(frozen=True)
class PageRun:
    """One run of a page's script as a session saw it."""

    visit: Visit
    started: float  # seconds since the load began
    seconds: float
    errors: tuple[str, ...] = ()  # exceptions the page showed, a page not found, a run that never finished
    fragment: bool = False  # an auto-rerun of the live table, not a page view


@dataclass
class LoadReport:
    """What a load saw: every page run, and the server's resident memory over time."""

    sessions: int
    seconds: float
    runs: list[PageRun] = field(default_factory=list)
    memory: list[tuple[float, int]] = field(default_factory=list)  # (seconds since the start, bytes)

    @property
    def views(self) -> list[PageRun]:
        """Page views asked for (a lost connection is not one)."""
        return [r for r in self.runs if not r.fragment and r.visit.page != LOST]

    @property
    def failed(self) -> list[PageRun]:
        return [r for r in self.runs if r.errors]

    def quantile(self, q: float, runs: Sequence[PageRun] | None = None) -> float:
        """Of the page views (or `runs`) that finished without an error: one that never finished is an error,
        not a time."""
        times = sorted(r.seconds for r in (self.views if runs is None else runs) if not r.errors)
        if not times:
            return float("nan")
        return times[min(len(times) - 1, int(q * len(times)))]

    def summary(self) -> str:
        views, fragments = self.views, [r for r in self.runs if r.fragment]
        lines = [f"{self.sessions} sessions for {self.seconds:.0f} s: {len(views)} page views, "
                 f"{len(fragments)} live-table reruns, {len(self.failed)} with an error "
                 f"({100 * len(self.failed) / max(1, len(self.runs)):.2f}%)",
                 f"page view: median {self.quantile(0.5):.2f} s, p95 {self.quantile(0.95):.2f} s, "
                 f"max {self.quantile(1.0):.2f} s"]
        if fragments:
            lines.append(f"live-table rerun: median {self.quantile(0.5, fragments):.2f} s, "
                         f"p95 {self.quantile(0.95, fragments):.2f} s")
        by_page: dict[str, list[float]] = {}
        for r in views:
            if not r.errors:
                by_page.setdefault(r.visit.page, []).append(r.seconds)
        for page, times in sorted(by_page.items()):
            lines.append(f"  /{page or '?… (Runs)'}: {len(times)} views, median {statistics.median(times):.2f} s")
        if self.memory:
            mb = [b / 2**20 for _, b in self.memory]
            third = max(1, len(mb) // 3)
            first, last = statistics.median(mb[:third]), statistics.median(mb[-third:])
            lines.append(f"server memory: {mb[0]:.0f} MB at the start, median of the first third {first:.0f} MB, "
                         f"of the last third {last:.0f} MB, peak {max(mb):.0f} MB")
        for r in self.failed[:10]:
            lines.append(f"  error on {r.visit} at {r.started:.1f} s: {r.errors[0][:300]}")
        return "\n".join(lines)


def _rerun(visit: Visit, base_url: str, fragment_id: str = "") -> bytes:
    msg = BackMsg()
    state = msg.rerun_script
    state.query_string = visit.query
    state.page_name = visit.page
    state.fragment_id = fragment_id
    state.is_auto_rerun = bool(fragment_id)
    state.context_info.timezone = "UTC"
    state.context_info.timezone_offset = 0
    state.context_info.locale = "en-US"
    state.context_info.url = f"{base_url}{visit}"
    return msg.SerializeToString()


def _errors_in(msg: ForwardMsg) -> list[str]:
    kind = msg.WhichOneof("type")
    if kind == "page_not_found":
        return [f"page not found: {msg.page_not_found.page_name!r}"]
    if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
        element = msg.delta.new_element
        if element.WhichOneof("type") == "exception":
            return [f"{element.exception.type}: {element.exception.message}"]
    return []


def _open(base_url: str) -> ClientConnection:
    return connect(base_url.replace("http", "ws", 1) + "/_stcore/stream", subprotocols=["streamlit"],  # type: ignore[list-item]
                   max_size=None, open_timeout=60).__enter__()


class Session:
    """One browser tab's worth of connection to the dashboard (a context manager: it closes its socket)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.ws = _open(base_url)
        self.live: tuple[float, str] | None = None  # the live table's (interval, fragment id) on this page

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.ws.close()

    def run(self, visit: Visit, since: float, fragment_id: str = "") -> PageRun:
        """Ask for one run (a page view, or the live table's rerun) and read until it finishes."""
        started = time.monotonic()
        self.ws.send(_rerun(visit, self.base_url, fragment_id))
        errors: list[str] = []
        if not fragment_id:
            self.live = None
        while True:
            left = started + ANSWER_TIMEOUT_S - time.monotonic()
            try:
                raw = self.ws.recv(timeout=max(0.0, left))
            except TimeoutError:
                errors.append(f"no answer in {ANSWER_TIMEOUT_S:.0f} s")
                # A new tab, as a person would open: the late answer must not be read as the next run's.
                self.ws.close()
                self.ws = _open(self.base_url)
                self.live = None
                break
            msg = ForwardMsg()
            msg.ParseFromString(raw if isinstance(raw, bytes) else raw.encode())
            errors += _errors_in(msg)
            kind = msg.WhichOneof("type")
            if kind == "auto_rerun":
                self.live = (msg.auto_rerun.interval, msg.auto_rerun.fragment_id)
            elif kind == "script_finished":
                if msg.script_finished in DONE:
                    break
                if msg.script_finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                    errors.append("the script did not compile")
                    break
                # FINISHED_EARLY_FOR_RERUN: the page asked for a rerun (st.rerun); its next run follows.
        return PageRun(visit, started - since, time.monotonic() - started, tuple(errors), bool(fragment_id))

    def read(self, visit: Visit, dwell: float, since: float, out: list[PageRun]) -> None:
        """Stay on the page for `dwell` seconds, running the live table whenever its timer would."""
        until = time.monotonic() + dwell
        while self.live and time.monotonic() + self.live[0] < until:
            time.sleep(self.live[0])
            out.append(self.run(visit, since, fragment_id=self.live[1]))
        time.sleep(max(0.0, until - time.monotonic()))


def visits_from_logs(logs: Path, how_many: int = 200) -> list[Visit]:
    """An operator's mix of page views over the runs in `logs`: the Runs page as it opens and filtered (by
    status, by a workflow, by a search), run pages, the Overview, Workflows and How it works."""
    runs: list[str] = []
    workflows: set[str] = set()
    for path in sorted(logs.glob("*.jsonl*")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and isinstance(record.get("id"), str):
                    runs.append(record["id"])
                    workflow = record.get("workflow")
                    if isinstance(workflow, dict) and isinstance(workflow.get("id"), str):
                        workflows.add(workflow["id"])
                if len(runs) >= how_many:
                    break
        if len(runs) >= how_many:
            break
    if not runs:
        raise SystemExit(f"no runs in {logs} to visit")
    rng = random.Random(7)
    mix = [Visit(RUNS), Visit(RUNS), Visit(RUNS, "status=failed"), Visit(RUNS, "unresolved=1"),
           Visit(RUNS, "range=24h"), Visit("overview"), Visit("overview"), Visit("workflows"), Visit("how-it-works")]
    mix += [Visit(RUNS, urlencode({"workflow": w})) for w in sorted(workflows)]
    mix += [Visit(RUNS, urlencode({"q": r[-5:]})) for r in rng.sample(runs, min(3, len(runs)))]
    mix += [Visit("run", urlencode({"id": r})) for r in rng.sample(runs, min(8, len(runs)))]
    return mix


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def load(base_url: str, visits: Sequence[Visit], sessions: int = 20, seconds: float = 60.0,
         dwell: tuple[float, float] = (2.0, 8.0), pid: int | None = None, seed: int = 1) -> LoadReport:
    """`sessions` sessions at once, each opening pages from `visits` at random and reading each for a time in
    `dwell` (seconds), for `seconds`; the server process `pid`'s memory sampled every second."""
    report = LoadReport(sessions, seconds)
    since = time.monotonic()
    until = since + seconds
    lock = threading.Lock()
    stop = threading.Event()

    def one(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        time.sleep(rng.uniform(0, min(dwell[1], seconds / 4)))  # tabs are not opened in the same millisecond
        mine: list[PageRun] = []
        try:
            with Session(base_url) as session:
                while time.monotonic() < until:
                    visit = rng.choice(visits)
                    mine.append(session.run(visit, since))
                    session.read(visit, min(rng.uniform(*dwell), max(0.0, until - time.monotonic())), since, mine)
        except (ConnectionClosed, OSError) as exc:
            mine.append(PageRun(Visit(LOST), time.monotonic() - since, 0.0, (f"connection lost: {exc!r}",)))
        finally:
            with lock:
                report.runs += mine

    def sample() -> None:
        assert pid is not None
        while not stop.is_set():
            report.memory.append((time.monotonic() - since, _rss(pid)))
            stop.wait(1.0)

    threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in range(sessions)]
    sampler = threading.Thread(target=sample, daemon=True) if pid else None
    for t in [*threads, *([sampler] if sampler else [])]:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    if sampler:
        sampler.join()
    report.runs.sort(key=lambda r: r.started)
    return report


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(data_dir: Path, entry: str = "serve.py", cwd: Path = ROOT,
           env: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """The dashboard (`entry` in `cwd`) served on a free 127.0.0.1 port over `data_dir`: (its URL, its pid)."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", entry, "--server.port", str(port), "--server.address",
         "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--client.showErrorDetails", "full"],  # the report says which error, not Streamlit's redacted one
        cwd=cwd, env={**os.environ, "FOURGENT_DATA_DIR": str(data_dir), "FOURGENT_DEMO_RUNS": "0", **(env or {})},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"the dashboard did not start (exit code {proc.poll()})") from None
                time.sleep(0.3)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def warm(base_url: str, visits: Sequence[Visit]) -> list[PageRun]:
    """Each distinct page once, in one session, before the clock starts: the first visitor's cost (opening
    the store, filling the caches) is not what 20 sessions at once measure."""
    with Session(base_url) as session:
        return [session.run(v, time.monotonic()) for v in dict.fromkeys(Visit(v.page) for v in visits)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ui.load", description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--data-dir", type=Path, help="serve this data folder's store (its logs/ give the visits)")
    where.add_argument("--url", help="load a dashboard already served here (with --logs and --pid)")
    parser.add_argument("--logs", type=Path, help="the logs folder the visits are drawn from (with --url)")
    parser.add_argument("--pid", type=int, help="the server's process, whose memory is sampled (with --url)")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--json", type=Path, help="also write every page run and memory sample here")
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.seconds <= 0:
        parser.error("--sessions and --seconds must be positive")

    def run(url: str, pid: int | None, logs: Path) -> LoadReport:
        visits = visits_from_logs(logs)
        warmed = warm(url, visits)
        print("warm-up:", ", ".join(f"{r.visit} {r.seconds:.1f} s" for r in warmed), flush=True)
        return load(url, visits, args.sessions, args.seconds, pid=pid)

    if args.data_dir:
        with served(args.data_dir.resolve()) as (url, pid):
            report = run(url, pid, args.data_dir / "logs")
    else:
        if not args.logs:
            parser.error("--url needs --logs")
        report = run(args.url.rstrip("/"), args.pid, args.logs)
    print(report.summary())
    if args.json:
        args.json.write_text(json.dumps({
            "sessions": report.sessions, "seconds": report.seconds,
            "runs": [{"visit": str(r.visit), "started": r.started, "seconds": r.seconds, "errors": r.errors,
                      "fragment": r.fragment} for r in report.runs],
            "memory": report.memory}, indent=1))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
