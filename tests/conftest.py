"""Shared fixtures: a fresh store per test, the sample logs (tests/data), and a writer for hand-made log lines."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fourgent.config import Paths
from fourgent.store.duckdb import DuckDBStore
from helpers import CHROMIUM, CHROMIUM_ARGS, SAMPLES, record_sample_lineage


@pytest.fixture
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def dashboard(tmp_path, monkeypatch, samples) -> Iterator[Callable[..., Path]]:
    """Points the app (its pages under AppTest) at a fresh data folder: `dashboard(3000)` has it write 3,000 demo
    runs on its first start, `dashboard(samples=True)` gives it the sample logs; extra keywords set variables."""
    import streamlit as st

    def setup(demo_runs: int = 0, *, with_samples: bool = False, **env: str) -> Path:
        data = tmp_path / "data"
        (data / "logs").mkdir(parents=True, exist_ok=True)
        if with_samples:
            for f in samples.glob("*.jsonl"):
                shutil.copy(f, data / "logs" / f.name)
            ledger = DuckDBStore(Paths(data).db_path)  # as if this dashboard had run the samples' re-triggers
            record_sample_lineage(ledger)
            ledger.close()
        monkeypatch.setenv("FOURGENT_DATA_DIR", str(data))
        monkeypatch.setenv("FOURGENT_DEMO_RUNS", str(demo_runs))
        monkeypatch.delenv("FOURGENT_SECRET_KEY", raising=False)
        # No alert ticker thread per test's store unless a test asks for one (FOURGENT_ALERT_TICK="1").
        monkeypatch.setenv("FOURGENT_ALERT_TICK", "0")
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        st.cache_resource.clear()
        return data

    yield setup
    st.cache_resource.clear()


@pytest.fixture
def sampled_app(dashboard) -> Path:
    """A data folder holding the sample logs, for the app (pages under AppTest) to read; no demo runs."""
    return dashboard(with_samples=True)


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


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for a module of browser tests (they skip, saying why, without it)."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_CAP_V3 = 0x20080522
_DAC_BYPASS = (1 << 1) | (1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH: why root reads a file of mode 000


def _set_dac_bypass(on: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = _CapHeader(_CAP_V3, 0), (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    data[0].effective = data[0].effective | _DAC_BYPASS if on else data[0].effective & ~_DAC_BYPASS
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


@pytest.fixture
def unreadable() -> Iterator[Callable[..., Path]]:
    """`unreadable(path)` makes a file or folder unreadable (mode 000; `mode=0o555` read-only) for the rest of the
    test, also as root (CI runs as root): this thread gives up its capabilities to read and write past file
    modes, and threads it starts (the ingest's reader, AppTest's script) inherit that. Both are undone at the end."""
    made: list[Path] = []
    dropped = os.geteuid() == 0

    def make(path: Path, mode: int = 0) -> Path:
        path.chmod(mode)
        made.append(path)
        return path

    if dropped:
        _set_dac_bypass(False)
    try:
        yield make
    finally:
        if dropped:
            _set_dac_bypass(True)
        for path in made:
            path.chmod(0o755 if path.is_dir() else 0o644)


@pytest.fixture
def disk_full() -> Iterator[Callable[[bool], None]]:
    """`disk_full(True)` makes every write past 256 KB into any file fail (RLIMIT_FSIZE, "File too large"), as a
    full disk fails it; `disk_full(False)` gives the space back. Undone at the end."""
    import resource
    import signal

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    before = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel ends the process at the limit

    def full(on: bool) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 10 if on else soft, hard))

    try:
        yield full
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, before)
