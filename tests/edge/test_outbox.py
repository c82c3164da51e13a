"""The outbox against the real broker and bridge: order, once, and outages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from cloud_bridge.config import BridgeConfig
from cloud_bridge.intake.tables import intake_requests
from edge.visit import Step, VisitController
from tests.edge.stack import Kiosk, Office

pytestmark = [pytest.mark.broker, pytest.mark.hsm]

REVIEW = {"document_type": "diploma", "copies": "1", "delivery": "wallet"}


def visit(controller: VisitController, pages: int = 1) -> str:
    """Walk one visit to the waiting screen and return its request id."""
    controller.begin("welcome")
    controller.read_card("identify")
    controller.check_face("face")
    for _ in range(pages):
        controller.take_page("capture")
        controller.use_page("page")
    controller.pages_done("capture")
    controller.save_review("review", REVIEW)
    controller.submit("confirm")
    assert controller.step is Step.WAITING, controller.view().data
    return str(controller.view().data["request_id"])


@pytest.fixture
def office(tmp_path: Path, bridge_config: BridgeConfig) -> Iterator[Office]:
    built = Office(tmp_path, bridge_config)
    yield built
    built.close()


def wait_for(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def received(office: Office) -> list[tuple[str, int]]:
    query = sa.select(intake_requests.c.request_id, intake_requests.c.sequence)
    with office.bridge.store.engine.connect() as connection:
        rows = connection.execute(query.order_by(intake_requests.c.received_at))
        return [(row[0], row[1]) for row in rows]


def test_requests_sent_in_order_once(office: Office, tmp_path: Path) -> None:
    kiosk = Kiosk(office.kiosk_config(tmp_path))
    try:
        ids = []
        for _ in range(3):
            ids.append(visit(kiosk.agent.controller))
            kiosk.agent.controller.finish()
        wait_for(lambda: len(received(office)) == 3)
        assert received(office) == [(ids[0], 1), (ids[1], 2), (ids[2], 3)]
        store = kiosk.agent.store
        wait_for(lambda: all(entry.acked for entry in store.entries()))
        assert store.outbox_pages(ids[0]) == []
    finally:
        kiosk.close()


@pytest.mark.slow
def test_broker_outage_delays_but_loses_nothing(office: Office, tmp_path: Path) -> None:
    kiosk = Kiosk(office.kiosk_config(tmp_path))
    try:
        assert kiosk.agent.link.connected.wait(10)
        office.broker.stop()
        wait_for(lambda: not kiosk.agent.link.connected.is_set())
        ids = []
        for number in range(3):
            ids.append(visit(kiosk.agent.controller))
            if number == 0:
                page = httpx.get(kiosk.url + "/").text
                assert "Mạng đang gián đoạn" in page
            kiosk.agent.controller.finish()
        time.sleep(2)
        assert received(office) == []
        assert [e.acked for e in kiosk.agent.store.entries()] == [False] * 3

        office.broker.start()
        wait_for(lambda: len(received(office)) == 3, timeout=60)
        time.sleep(2)
        assert received(office) == [(ids[0], 1), (ids[1], 2), (ids[2], 3)]
        pending = office.bridge.store.list_requests()
        assert sorted(r.request_id for r in pending) == sorted(ids)
        store = kiosk.agent.store
        wait_for(lambda: all(entry.acked for entry in store.entries()))
    finally:
        kiosk.close()
