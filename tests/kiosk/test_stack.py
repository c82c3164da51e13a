"""``kiosk run`` (what ``make run`` starts) comes up from an empty directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from kiosk.stack import AGENT_PORT, PUBLIC_PORT

ROOT = Path(__file__).resolve().parents[2]


def kiosk(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    """Start ``kiosk ARGS`` in ``tmp_path`` (its var/ lands there)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "kiosk", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_the_embedded_stack_serves_the_kiosk_and_the_office(tmp_path: Path) -> None:
    init = kiosk(tmp_path, "bridge", "init")
    assert init.wait(timeout=120) == 0, init.stdout.read() if init.stdout else ""
    stack = kiosk(tmp_path, "run")
    try:
        seen = wait_for_lines(
            stack,
            ["The embedded stack is running", "connected to the office broker"],
            timeout=120,
        )
        kiosk_page = httpx.get(f"http://127.0.0.1:{AGENT_PORT}/", timeout=10)
        login = httpx.get(f"http://127.0.0.1:{PUBLIC_PORT}/console/login", timeout=10)
        ca = httpx.get(f"http://127.0.0.1:{PUBLIC_PORT}/fleet/ca.pem", timeout=10)
    finally:
        stack.send_signal(signal.SIGTERM)
        code = stack.wait(timeout=60)

    assert "connected to the office broker" in seen
    assert kiosk_page.status_code == 200
    assert 'lang="vi"' in kiosk_page.text
    assert login.status_code == 200
    assert ca.text.startswith("-----BEGIN CERTIFICATE-----")
    assert code == 0
    assert (tmp_path / "var/kiosk/identity").is_dir()


def wait_for_lines(
    process: subprocess.Popen[str], markers: list[str], timeout: float
) -> str:
    """Return the output up to the point every marker has been printed."""
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        text = "".join(seen)
        if all(marker in text for marker in markers):
            return text
    raise AssertionError("the stack did not come up:\n" + "".join(seen))
