"""Tests of the kiosk's update client: install, notice, idle, probation, resume."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from ota.bundle import BundleConfig
from protocol.envelope import new_message
from protocol.updates import UpdateNotice
from tests.ota.conftest import KIOSK, Kiosk, Office, make_kiosk


def test_notice_installs_the_bundle_and_reports_it(
    office: Office, kiosk: Kiosk
) -> None:
    target = office.publish("2.0")
    notice = new_message(
        UpdateNotice,
        kiosk_id=KIOSK,
        target=target,
        bundle_version="2.0",
        channel="stable",
    )

    outcome = kiosk.client.handle_notice(notice)

    assert outcome is not None and outcome.state == "installed", outcome
    assert kiosk.client.running_version() == "2.0"
    assert kiosk.client.slots.current_slot() == "b"
    assert kiosk.reports[-1].state == "installed"
    assert kiosk.reports[-1].running_version == "2.0"
    assert set(outcome.timings_ms) >= {
        "refresh",
        "download",
        "verify",
        "health",
        "switch",
    }
    assert kiosk.client.handle_notice(notice) is None  # already running it


def test_periodic_check_finds_the_assignment(office: Office, kiosk: Kiosk) -> None:
    office.publish("2.0", cohort=100)

    outcome = kiosk.client.check()

    assert outcome is not None and outcome.state == "installed"
    assert kiosk.client.check() is None


def test_waits_while_a_citizen_is_served(office: Office, kiosk: Kiosk) -> None:
    target = office.publish("2.0")
    kiosk.busy[0] = True

    outcome = kiosk.client.install(target)

    assert outcome.state == "waiting"
    assert kiosk.client.running_version() == "1.0"
    kiosk.busy[0] = False
    assert kiosk.client.install(target).state == "installed"


def test_restart_on_probation_rolls_back(office: Office, kiosk: Kiosk) -> None:
    target = office.publish("2.0")
    assert kiosk.client.install(target).state == "installed"

    outcome = kiosk.client.boot()  # the kiosk crashed and restarted

    assert outcome is not None and outcome.state == "rolled_back"
    assert kiosk.client.running_version() == "1.0"
    assert kiosk.client.install(target).state == "refused"  # not retried


def test_confirm_ends_probation_after_its_time(office: Office, kiosk: Kiosk) -> None:
    target = office.publish("2.0")
    kiosk.client.install(target)
    assert not kiosk.client.confirm()

    kiosk.client.clock = lambda: 1e12
    assert kiosk.client.confirm()
    assert kiosk.client.boot() is None
    assert kiosk.client.running_version() == "2.0"


def test_failed_health_check_keeps_the_old_version(
    office: Office, kiosk: Kiosk
) -> None:
    target = office.publish("2.0")
    bad = office.bundle("3.0", BundleConfig(face_threshold=0.95))
    from ota.publish import publish_bundle

    release = publish_bundle(office.repository, office.director, bad)
    before = kiosk.model_bytes()

    outcome = kiosk.client.install(release.target)

    assert outcome.state == "failed" and outcome.phase == "health"
    assert "face threshold" in outcome.error
    assert kiosk.client.running_version() == "1.0"
    assert kiosk.model_bytes() == before
    assert kiosk.reports[-1].state == "failed"
    assert kiosk.client.install(release.target).state == "refused"  # not retried
    assert kiosk.client.install(target).state == "installed"  # the good one still is


class CutOnce(httpx.BaseTransport):
    """Cut the first target download after ``limit`` bytes, as a lost link."""

    def __init__(self, inner: httpx.BaseTransport, limit: int) -> None:
        self.inner = inner
        self.limit = limit
        self.cut = False
        self.ranges: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if "/targets/" not in request.url.path:
            return response
        self.ranges.append(request.headers.get("range", ""))
        if self.cut:
            return response
        self.cut = True
        body = response.read()[: self.limit]

        def broken() -> object:
            yield body
            raise httpx.ReadError("connection reset", request=request)

        return httpx.Response(
            response.status_code, headers=response.headers, stream=_Stream(broken())
        )


class _Stream(httpx.SyncByteStream):
    def __init__(self, chunks: object) -> None:
        self.chunks = chunks

    def __iter__(self):  # type: ignore[no-untyped-def]
        yield from self.chunks  # type: ignore[misc]


def test_interrupted_download_resumes(office: Office, tmp_path: Path) -> None:
    inner = TestClient(office.app, base_url="http://bridge.test")
    transport = CutOnce(inner._transport, 10_000)
    http = httpx.Client(transport=transport, base_url="http://bridge.test")
    kiosk = make_kiosk(office, tmp_path / "k2", http)
    target = office.publish("2.0")

    outcome = kiosk.client.install(target)

    assert outcome.state == "installed", outcome
    assert transport.ranges[0] == ""
    assert transport.ranges[1] == "bytes=10000-"


def test_service_installs_a_queued_notice(office: Office, kiosk: Kiosk) -> None:
    from ota.service import UpdateService

    target = office.publish("2.0", kiosks=["nobody-else"])
    service = UpdateService(kiosk.client, tick_s=0.05)
    notice = new_message(
        UpdateNotice,
        kiosk_id=KIOSK,
        target=target,
        bundle_version="2.0",
        channel="stable",
    )
    service.start()
    try:
        service.notify(notice.to_bytes())
        for _ in range(200):
            if kiosk.reports:
                break
            threading.Event().wait(0.05)
    finally:
        service.stop()

    assert [r.state for r in kiosk.reports] == ["installed"]
    assert kiosk.client.running_version() == "2.0"
