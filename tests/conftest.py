"""Shared fixtures: a fresh store per test, the sample logs (tests/data), and a writer for hand-made log lines."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from fourgent.config import Paths
from fourgent.store.duckdb import DuckDBStore
from helpers import SAMPLES


@pytest.fixture
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def sampled_app(tmp_path, monkeypatch, samples) -> Path:
    """A data folder holding the sample logs, for the app (pages under AppTest) to read; no demo runs."""
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
    s = DuckDBStore(data_paths.db_path)
    yield s
    s.close()


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
