"""Helpers the tests import: the repository's paths, the sample logs and a maker of valid run-log records."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# 369 lines: 304 runs over six workflows (every status and error kind, later snapshots, re-triggers) in
# runs-small.jsonl, and 60 lines with 8 broken as docs/run-log.md says must be reported.
SAMPLES = ROOT / "tests" / "data"
# Debian's Chromium, driven by Playwright (its own browser download cannot work here), with these flags.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def run_line(run_id: str = "run_1", **fields) -> dict:
    """A valid run-log record; keyword arguments replace or add fields (None removes one)."""
    record = {
        "id": run_id,
        "reference": "Acme Corp – Renewal 2026",
        "workflow": {"id": "hubspot-closed-won-quickbooks-invoice", "source": "HubSpot Closed Won",
                     "destination": "QuickBooks Invoice", "source_app": "HubSpot", "destination_app": "QuickBooks"},
        "status": "finished",
        "started_at": "2026-11-20T14:03:11.120Z",
        "finished_at": "2026-11-20T14:03:13.950Z",
        "trigger_payload": {"deal_id": "1893", "amount": "12000.00"},
        "steps": [{"name": "Fetch deal", "app": "HubSpot", "status": "finished", "attempts": 1,
                   "started_at": "2026-11-20T14:03:11.200Z", "finished_at": "2026-11-20T14:03:11.610Z",
                   "output": {"deal_id": "1893"}}],
    }
    for key, value in fields.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    return record


APP = str(ROOT / "app.py")


def open_app(**params: str | list[str]):
    """The dashboard under AppTest, opened at a URL with these query parameters (the Runs page by default)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def open_page(page: str, **params: str | list[str]):
    """One page of the dashboard under AppTest (e.g. "app_pages/overview.py"), at a URL with these parameters."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60).run()  # registers the navigation's pages
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def settle(at):
    """Once this session's single re-trigger (it runs in the background) has ended, the page rerun to show it."""
    jobs = at.session_state["retrigger_jobs"] if "retrigger_jobs" in at.session_state else {}  # noqa: SIM401
    for job in jobs.values():
        assert job.wait(60), "the re-trigger did not end"
    return at.run()


def metric(at, label: str) -> int:
    """A metric's value as a number (e.g. "Matching runs")."""
    return int(next(m.value for m in at.metric if m.label == label).replace(",", ""))


def button(at, starts: str):
    """The first button whose label starts with `starts`."""
    return next(b for b in at.button if b.label.startswith(starts))


def load_demo(store, logs: Path, runs: int, **options):
    """Demo logs written to `logs` and read into `store`, their re-triggers recorded first as Fourgent's
    (what loading the demo does): returns the ingest report."""
    from fourgent import demo

    written = demo.write_demo(logs, runs, **options)
    store.record_retriggers(written.retriggers)
    return store.ingest(written.files)


def record_as_ours(store, *lines: dict) -> None:
    """Record the re-triggers among these lines as ones Fourgent started (what the re-triggerer does before
    it runs them), so the store reads their lineage: a line's `retrigger_of` alone is only a claim."""
    from datetime import datetime

    from fourgent.store import Retrigger

    store.record_retriggers([Retrigger(line["id"], line["retrigger_of"], line.get("retriggered_by") or "tester",
                                       datetime.fromisoformat(line["started_at"]))
                             for line in lines if line.get("retrigger_of")])


def record_sample_lineage(store) -> None:
    """The sample logs' re-triggers recorded as Fourgent's, before the samples are read."""
    import json

    lines = [json.loads(text) for f in sorted(SAMPLES.glob("*.jsonl"))
             for text in f.read_text(encoding="utf-8").splitlines() if '"retrigger_of"' in text]
    record_as_ours(store, *lines)


def run_ids(frame) -> list[str]:
    """The run IDs of the Runs table (its ID cells are links to each run's page)."""
    from urllib.parse import unquote

    assert all(v.startswith("run?id=") for v in frame["ID"]), "each ID opens its run"
    return [unquote(v.removeprefix("run?id=")) for v in frame["ID"]]


class SlowApp:
    """An app on 127.0.0.1 that answers every POST 429 with a 60 s Retry-After, and records each request."""

    def __init__(self) -> None:
        self.posts: list[str] = []
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self._answer(200, {})

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("content-length") or 0))
                app.posts.append(self.path)
                self._answer(429, {"Retry-After": "60"})

            def _answer(self, status: int, headers: dict[str, str]) -> None:
                body = b'{"error": "slow down"}'
                self.send_response(status)
                for k, v in {"content-type": "application/json", "content-length": str(len(body)), **headers}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


T0 = datetime(2026, 9, 28, 23, 0, tzinfo=UTC)  # near a month's end: a changed start can move a run's partition


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def snapshot_log(seed: int, runs: int) -> list[list[dict | str]]:
    """Two files' lines: several snapshots per run in shuffled order, some without updated_at, some with another
    started_at, and a few lines that break the spec."""
    rng = random.Random(seed)
    lines: list[dict | str] = []
    for n in range(runs):
        start = T0 + timedelta(minutes=n * 7)
        for k in range(rng.randint(1, 4)):
            fields: dict = {"status": rng.choice(["running", "finished", "failed"]),
                            "started_at": _iso(start + timedelta(hours=rng.choice([0, 0, 0, 3]) * k))}
            if fields["status"] == "failed":
                fields["error"] = {"message": f"HTTP 500 number {k}", "step": 0}
            if rng.random() < 0.7:
                fields["updated_at"] = _iso(start + timedelta(seconds=rng.randint(0, 50)))
            lines.append(run_line(f"run_{n:04d}", **fields))
    rng.shuffle(lines)
    for i in range(0, len(lines), 97):
        lines.insert(i, "{not json\n" if i % 2 else '{"id": "no-workflow"}\n')
    half = len(lines) // 2
    return [lines[:half], lines[half:]]
