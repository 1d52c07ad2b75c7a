"""serve.py, the README's server: it refuses to listen beyond this machine without sign-in, unless told to."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

from helpers import ROOT


def _start(tmp_path, address: str, **env: str) -> tuple[subprocess.Popen, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "serve.py", "--server.port", str(port), "--server.address",
         address, "--server.headless", "true"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env=dict(os.environ, FOURGENT_DATA_DIR=str(tmp_path / "data"), FOURGENT_DEMO_RUNS="0", **env))
    return proc, port


def test_every_interface_without_sign_in_is_refused_in_words(tmp_path):
    proc, _ = _start(tmp_path, "0.0.0.0")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "Refusing to serve Fourgent Runs on 0.0.0.0 without sign-in" in out and "FOURGENT_ALLOW_ANONYMOUS=1" in out


def test_allowing_anonymous_explicitly_serves(tmp_path):
    proc, port = _start(tmp_path, "0.0.0.0", FOURGENT_ALLOW_ANONYMOUS="1")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_the_default_address_is_this_machine_only():
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
