"""SIGKILL the agent at random points of visits: nothing submitted is lost.

Each trial starts ``kiosk agent`` as a process, checks that the first screen
shows no half session, drives a visit over HTTP and kills the process with
SIGKILL after a random delay. At the end the agent runs once more until its
outbox is drained; the office must hold every request the kiosk accepted,
exactly once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud_bridge.config import BridgeConfig
from tests.edge.stack import Office

pytestmark = [
    pytest.mark.slow,
    pytest.mark.broker,
    pytest.mark.hsm,
    pytest.mark.timeout(900),
]

TRIALS = 50
ACTIONS = [
    ("start", "welcome"),
    ("read_card", "identify"),
    ("check_face", "face"),
    ("take_page", "capture"),
    ("use_page", "page"),
    ("pages_done", "capture"),
    ("review", "review"),
    ("submit", "confirm"),
]
REVIEW = {"document_type": "diploma", "copies": "1", "delivery": "wallet"}
RUNNER = "from edge.agent import agent_command; agent_command()"


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """Write a nested dict as TOML (enough for an agent configuration)."""
    lines, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    out = "\n".join(lines) + "\n"
    for key, value in tables:
        name = f"{prefix}.{key}" if prefix else key
        out += f"\n[{name}]\n" + to_toml(value, name)
    return out


@pytest.fixture
def office(tmp_path: Path, bridge_config: BridgeConfig) -> Iterator[Office]:
    built = Office(tmp_path, bridge_config)
    yield built
    built.close()


class AgentProcess:
    """``kiosk agent`` in its own process."""

    def __init__(self, config_file: Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-c", RUNNER, "--config", str(config_file), "--silent"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=Path(__file__).resolve().parents[2],
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.url + "/api/state", timeout=1)
                return
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the agent did not start"
                assert self.process.poll() is None, "the agent exited"
                time.sleep(0.1)

    def kill(self) -> None:
        """Kill it without warning."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def drive(url: str, submitted: list[int]) -> None:
    """Run visit actions until the agent dies; count confirmed submits.

    An action at the wrong step is ignored and still answered with a
    redirect (a visit resumed at "waiting" after a kill starts that way), so
    a submit counts only when it took the visit on from "confirm".
    """
    with httpx.Client(base_url=url, timeout=10) as client:
        try:
            while True:
                for name, step in ACTIONS:
                    data = {"step": step, **(REVIEW if name == "review" else {})}
                    before = current_step(client) if name == "submit" else ""
                    answer = client.post(f"/action/{name}", data=data)
                    if (
                        name == "submit"
                        and answer.status_code == 303
                        and before == "confirm"
                        and current_step(client) != "confirm"
                    ):
                        submitted.append(1)
                client.post("/action/finish", data={"step": "waiting"})
        except httpx.HTTPError:
            return


def current_step(client: httpx.Client) -> str:
    return str(client.get("/api/state").json()["step"])


def outbox(db: Path) -> list[tuple[str, bool]]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT request_id, acked_at IS NOT NULL FROM outbox "
            "WHERE kind = 'request' ORDER BY seq"
        ).fetchall()
    return [(row[0], bool(row[1])) for row in rows]


def test_sigkill_at_random_points_loses_and_duplicates_nothing(
    office: Office, tmp_path: Path
) -> None:
    config = office.kiosk_config(tmp_path)
    config_file = tmp_path / "agent.toml"
    config_file.write_text(to_toml(config.model_dump(mode="json", exclude_none=True)))
    db = config.data_dir / "agent.db"
    rng = random.Random(5)
    submitted: list[int] = []

    started = time.monotonic()
    for _trial in range(TRIALS):
        agent = AgentProcess(config_file, config.port)
        first = httpx.get(agent.url + "/", timeout=10).text
        state = httpx.get(agent.url + "/api/state", timeout=10).json()
        assert state["step"] in ("welcome", "waiting"), state
        assert "Nguyễn Văn An" not in first
        driver = threading.Thread(
            target=drive, args=(agent.url, submitted), daemon=True
        )
        driver.start()
        time.sleep(rng.uniform(0.0, 2.0))
        agent.kill()
        driver.join(15)

    print(f"{TRIALS} trials in {time.monotonic() - started:.0f} s")
    agent = AgentProcess(config_file, config.port)
    try:
        deadline = time.monotonic() + 120
        while not all(acked for _, acked in outbox(db)):
            assert time.monotonic() < deadline, outbox(db)
            time.sleep(0.5)
    finally:
        agent.kill()

    entries = outbox(db)
    ids = [request_id for request_id, _ in entries]
    stored = office.bridge.store.list_requests(limit=1000)
    assert len(ids) == len(set(ids))
    assert len(ids) >= len(submitted) > 0
    assert sorted(r.request_id for r in stored) == sorted(ids)
