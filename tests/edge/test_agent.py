"""The agent assembled from configuration, without the office."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from drivers.gpio import SimulatedLineDriver
from edge.agent import build_agent
from edge.speech import RecordingSpeaker
from edge.visit import Step
from tests.edge.conftest import agent_config


def test_presence_sensor_counts_as_a_touch_and_offline_visit_is_kept(
    tmp_path: Path,
) -> None:
    speaker = RecordingSpeaker()
    agent = build_agent(
        agent_config(
            tmp_path, office={"mqtt_port": 1, "https_url": "https://127.0.0.1:1"}
        ),
        speaker,
    )
    agent.start()
    try:
        controller = agent.controller
        client = TestClient(agent.ui.app)
        client.post("/action/start", data={"step": "welcome"})
        assert controller.step is Step.IDENTIFY
        offset = [0.0]
        controller.clock = lambda: time.monotonic() + offset[0]
        offset[0] = 70.0
        assert controller.warning_due()
        assert client.get("/api/state").json()["warning"] is True
        assert client.post("/api/speak?idle=1").json() == {"spoken": True}
        assert "Bạn còn ở đây không?" in speaker.spoken[-1][0]

        driver = agent.devices.pins.driver
        assert isinstance(driver, SimulatedLineDriver)
        driver.drive("presence", True)
        deadline = time.monotonic() + 5
        while controller.warning_due() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not controller.warning_due()

        client.post("/action/speech_on", data={"step": "identify"})
        assert client.post("/api/speak").json() == {"spoken": True}
        assert "Đặt thẻ căn cước" in speaker.spoken[-1][0]
        page = client.get("/").text
        assert 'lang="vi"' in page and "Gọi nhân viên" in page
    finally:
        agent.stop()


def test_models_that_cannot_load_are_logged_and_the_agent_still_says_ready(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    empty = tmp_path / "no-models"
    empty.mkdir()
    config = agent_config(
        tmp_path,
        office={"mqtt_port": 1, "https_url": "https://127.0.0.1:1"},
        vision={"face_checker": "models", "model_dir": str(empty)},
    )
    agent = build_agent(config, RecordingSpeaker())
    agent.start()
    try:
        assert agent.models_ready.wait(30)
    finally:
        agent.stop()
    assert "run `kiosk models fetch`" in caplog.text
