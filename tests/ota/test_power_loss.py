"""Power cuts at each install step: a killed installer leaves a working kiosk."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloud_bridge.ota_routes import create_ota_router
from models.files import checked_path
from ota.bundle import read_manifest
from ota.client import STEPS, UpdateClient
from ota.config import OtaClientSection
from ota.health import ModelHealthCheck
from tests.ota.conftest import KIOSK, Kiosk, Office


def _install_then_cut(repo: str, settings_json: str, target: str, step: str) -> None:
    """Run an install in a forked child that kills itself when ``step`` is reached."""
    settings = OtaClientSection.model_validate_json(settings_json)
    app = FastAPI()
    app.include_router(create_ota_router(Path(repo), None))

    def cut(reached: str) -> None:
        if reached == step:
            os.kill(os.getpid(), signal.SIGKILL)

    client = UpdateClient(
        KIOSK,
        settings,
        TestClient(app, base_url="http://bridge.test"),
        health_check=ModelHealthCheck(settings),
        busy=lambda: False,
        reporter=lambda report: None,
        on_step=cut,
    )
    client.install(target)


@pytest.mark.parametrize("step", STEPS)
def test_power_cut_at_each_step_leaves_a_working_version(
    office: Office, kiosk: Kiosk, step: str
) -> None:
    target = office.publish("2.0")
    before = kiosk.model_bytes()
    args = [
        str(office.repository.repo_dir),
        kiosk.settings.model_dump_json(),
        target,
        step,
    ]

    child = multiprocessing.get_context("fork").Process(
        target=_install_then_cut, args=args
    )
    child.start()
    child.join(60)

    assert child.exitcode == -signal.SIGKILL
    outcome = kiosk.client.boot()
    assert kiosk.client.running_version() == "1.0"
    assert kiosk.model_bytes() == before
    current = kiosk.client.slots.current_dir()
    for entry in read_manifest(current).model:
        checked_path(entry, current / "models")
    if step in ("pending", "switch"):
        assert outcome is not None
        assert outcome.state == ("failed" if step == "pending" else "rolled_back")
        assert kiosk.reports[-1].state == outcome.state
    else:
        assert outcome is None
        assert kiosk.client.install(target).state == "installed"
        assert kiosk.client.running_version() == "2.0"


def test_stale_pieces_of_an_interrupted_install_are_replaced(
    office: Office, kiosk: Kiosk
) -> None:
    target = office.publish("2.0")
    staging = kiosk.client.slots.root / "slots" / ".b.new"
    (staging / "models").mkdir(parents=True)
    (staging / "models" / "junk.bin").write_bytes(b"half written")
    (kiosk.client.slots.root / "current.new").symlink_to(Path("slots") / "b")

    assert kiosk.client.install(target).state == "installed"
    assert not staging.exists()


class _KillMidTarget(httpx.BaseTransport):
    """Deliver the first 30,000 bytes of a target, then die as in a power cut."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if "/targets/" not in request.url.path:
            return response
        body = response.read()

        def pieces() -> Iterator[bytes]:
            yield body[:30_000]
            os.kill(os.getpid(), signal.SIGKILL)

        return httpx.Response(
            response.status_code, headers=response.headers, content=pieces()
        )


def _download_then_die(repo: str, settings_json: str, target: str) -> None:
    settings = OtaClientSection.model_validate_json(settings_json)
    app = FastAPI()
    app.include_router(create_ota_router(Path(repo), None))
    inner = TestClient(app, base_url="http://bridge.test")
    http = httpx.Client(
        transport=_KillMidTarget(inner._transport), base_url="http://bridge.test"
    )
    client = UpdateClient(
        KIOSK,
        settings,
        http,
        health_check=ModelHealthCheck(settings),
        busy=lambda: False,
        reporter=lambda report: None,
    )
    client.install(target)


def test_power_cut_during_download_resumes_afterwards(
    office: Office, kiosk: Kiosk
) -> None:
    target = office.publish("2.0")
    args = [str(office.repository.repo_dir), kiosk.settings.model_dump_json(), target]
    child = multiprocessing.get_context("fork").Process(
        target=_download_then_die, args=args
    )
    child.start()
    child.join(60)
    parts = list((kiosk.settings.ota_dir / "downloads").glob("*.part"))

    assert child.exitcode == -signal.SIGKILL
    assert kiosk.client.boot() is None
    assert kiosk.client.running_version() == "1.0"
    assert len(parts) == 1 and parts[0].stat().st_size == 30_000
    assert kiosk.client.install(target).state == "installed"
    assert not parts[0].exists()
