"""Store and forward through a broker outage, and commands over MQTT 5."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloud_bridge.config import BridgeConfig
from cloud_bridge.fleet import schema
from cloud_bridge.fleet.ingest import Ingestor
from cloud_bridge.fleet.mqtt_client import BrokerAddress
from cloud_bridge.fleet.service import Fleet
from cloud_bridge.fleet.web import fleet_router
from edge.telemetry.health import HealthSources
from edge.telemetry.outbox import Outbox
from edge.telemetry.service import TelemetryService
from protocol.envelope import new_message
from protocol.telemetry import Event
from provisioning.enroll import provision
from tests.broker import RunningBroker, start_broker

BRIDGE = "http://bridge.test"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RunningBroker]:
    """A private Mosquitto with the fleet configuration."""
    running = start_broker(tmp_path)
    yield running
    running.stop()


@pytest.fixture
def fleet(tmp_path: Path, broker: RunningBroker) -> Iterator[Fleet]:
    """The bridge's fleet side on SQLite, with the broker's CA and port."""
    config = BridgeConfig.model_validate(
        {
            "data_dir": str(tmp_path / "bridge"),
            "database": {"url": f"sqlite:///{tmp_path / 'bridge.db'}"},
            "fleet": {"ca_dir": str(broker.ca_dir), "broker_port": broker.port},
        }
    )
    opened = Fleet(config)
    yield opened
    opened.close()


@pytest.fixture
def ingestor(fleet: Fleet) -> Iterator[Ingestor]:
    """One bridge consumer, running."""
    running = Ingestor(
        fleet.registry, BrokerAddress.for_bridge(fleet.config), batch_wait_ms=20
    )
    running.start()
    yield running
    running.stop()


@pytest.fixture
def kiosk(fleet: Fleet, tmp_path: Path) -> Iterator[TelemetryService]:
    """A provisioned kiosk's telemetry service, started."""
    app = FastAPI()
    app.include_router(fleet_router(fleet))
    token = fleet.registry.create_token("kiosk-401", timedelta(hours=1))
    with TestClient(app, base_url=BRIDGE) as http:
        identity = provision(tmp_path / "kiosk", BRIDGE, token, http)
    service = TelemetryService(
        identity,
        Outbox(tmp_path / "kiosk" / "outbox.db"),
        HealthSources("kiosk-401", software_version="1.2.3"),
        actions={"check_devices": lambda _args: {"printer": "ok"}},
        interval_s=3600,
    )
    service.start()
    yield service
    service.stop()


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait until ``check()`` holds, or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail("condition not reached in time")


def test_events_queued_in_an_outage_arrive_exactly_once_in_order(
    fleet: Fleet,
    broker: RunningBroker,
    ingestor: Ingestor,
    kiosk: TelemetryService,
    tmp_path: Path,
) -> None:
    assert kiosk.publisher.connected.wait(10)
    for n in range(20):
        kiosk.event("copy_printed", n=n)
    kiosk.send_health()
    wait_until(lambda: fleet.registry.count(schema.events) == 20)
    wait_until(lambda: fleet.registry.kiosk("kiosk-401").status == "online")

    broker.stop()
    wait_until(lambda: not kiosk.publisher.connected.is_set())
    for n in range(20, 60):
        kiosk.event("copy_printed", n=n)
    assert kiosk.outbox.depth() == 40
    restarted = start_broker(tmp_path, broker.ca_dir, port=broker.port)
    try:
        wait_until(lambda: fleet.registry.count(schema.events) == 60, timeout=60)
        wait_until(lambda: kiosk.outbox.depth() == 0)
        time.sleep(0.5)
        assert fleet.registry.count(schema.events) == 60
        numbers = [
            e["detail"]["n"] for e in fleet.registry.recent_events("kiosk-401", 100)
        ]
        assert sorted(numbers) == list(range(60))
        assert fleet.registry.count(schema.health) == 1
    finally:
        restarted.stop()


def test_replayed_duplicates_are_stored_once(
    fleet: Fleet, ingestor: Ingestor, kiosk: TelemetryService
) -> None:
    event = new_message(
        Event,
        kiosk_id="kiosk-401",
        event_type="fault",
        occurred_at=datetime.now(UTC),
        detail={"device": "printer"},
    )
    for _ in range(3):
        kiosk.publisher.send_event(event)
    wait_until(lambda: kiosk.outbox.depth() == 0)
    wait_until(lambda: fleet.registry.count(schema.events) == 1)
    time.sleep(0.3)
    assert fleet.registry.count(schema.events) == 1


def test_command_round_trip_is_signed_answered_and_recorded(
    fleet: Fleet, ingestor: Ingestor, kiosk: TelemetryService
) -> None:
    assert kiosk.publisher.connected.wait(10)
    time.sleep(0.3)
    sent = fleet.commander.send("kiosk-401", "check_devices")

    def answered() -> bool:
        row = fleet.registry.command(sent.message_id)
        return row is not None and row["outcome"] is not None

    wait_until(answered)
    row = fleet.registry.command(sent.message_id)
    assert row is not None
    assert row["outcome"] == "done"
    assert row["result"] == {"printer": "ok"}
