"""Shared fixtures: a fresh store per test, the shared sample logs, and a writer for hand-made log lines."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from fourgent.config import Paths
from fourgent.store import Store

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT.parent / "shared" / "samples"


@pytest.fixture
def samples() -> Path:
    if not (SAMPLES / "runs-small.jsonl").exists():
        pytest.skip(f"the shared samples are not at {SAMPLES}")
    return SAMPLES


@pytest.fixture
def sampled_app(tmp_path, monkeypatch, samples) -> Path:
    """A data folder holding the shared samples, for the app (pages under AppTest) to read; no demo runs."""
    import streamlit as st

    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True)
    for f in samples.glob("*.jsonl"):
        shutil.copy(f, data / "logs" / f.name)
    monkeypatch.setenv("FOURGENT_DATA_DIR", str(data))
    monkeypatch.setenv("FOURGENT_DEMO_RUNS", "0")
    monkeypatch.delenv("FOURGENT_SECRET_KEY", raising=False)
    st.cache_resource.clear()
    yield data
    st.cache_resource.clear()


@pytest.fixture
def data_paths(tmp_path: Path) -> Paths:
    return Paths(tmp_path / "data").ensure()


@pytest.fixture
def store(data_paths: Paths):
    s = Store(data_paths.db_path)
    yield s
    s.con.close()


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


@pytest.fixture
def write_log() -> Callable[..., Path]:
    def write(path: Path, *lines: dict | str | bytes, mode: str = "wb") -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, mode) as f:
            for line in lines:
                if isinstance(line, dict):
                    line = json.dumps(line, ensure_ascii=False) + "\n"
                if isinstance(line, str):
                    line = line.encode("utf-8")
                f.write(line)
        return path

    return write
