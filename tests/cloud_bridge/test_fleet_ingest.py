"""Bridge ingestion against a real TLS Mosquitto, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud_bridge.fleet import schema
from cloud_bridge.fleet.ca import KioskCa
from cloud_bridge.fleet.ingest import Ingestor
from cloud_bridge.fleet.mqtt_client import BrokerAddress
from cloud_bridge.fleet.registry import FleetRegistry
from protocol.envelope import new_message
from protocol.telemetry import Event, Health, Status
from tests.broker import RunningBroker, client_identity, connect, start_broker

KIOSKS = ("kiosk-a01", "kiosk-b02")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RunningBroker]:
    """A private Mosquitto with the fleet configuration."""
    running = start_broker(tmp_path)
    yield running
    running.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def registry(
    request: pytest.FixtureRequest, tmp_path: Path, broker: RunningBroker
) -> Iterator[FleetRegistry]:
    """A migrated fleet registry on each engine, with two kiosks registered."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fleet.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    opened = FleetRegistry.open(url)
    ca = KioskCa(broker.ca_dir)
    for kiosk_id in KIOSKS:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = ca.issue_for_key(kiosk_id, key.public_key(), timedelta(days=1))
        opened.record_certificate(kiosk_id, cert)
    yield opened
    opened.close()


def bridge_address(broker: RunningBroker) -> BrokerAddress:
    """The broker with the bridge's certificate."""
    identity = broker.bridge_identity
    return BrokerAddress(
        broker.host, broker.port, identity.ca, identity.certificate, identity.key
    )


def kiosk_client(broker: RunningBroker, kiosk_id: str, tmp_path: Path) -> mqtt.Client:
    """A connected client with a certificate for ``kiosk_id``."""
    identity = client_identity(KioskCa(broker.ca_dir), tmp_path / "ids", kiosk_id)
    return connect(broker, identity)


def wait_until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait until ``check()`` holds, or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail("condition not reached in time")


def event(kiosk_id: str, n: int) -> Event:
    """A numbered event."""
    return new_message(
        Event,
        kiosk_id=kiosk_id,
        event_type="copy_printed",
        occurred_at=datetime.now(UTC),
        detail={"n": n},
    )


def test_two_instances_share_the_load_exactly_once(
    broker: RunningBroker, registry: FleetRegistry, tmp_path: Path
) -> None:
    address = bridge_address(broker)
    first = Ingestor(registry, address, keep_ids=True, batch_wait_ms=20)
    second = Ingestor(registry, address, keep_ids=True, batch_wait_ms=20)
    first.start()
    second.start()
    clients = [kiosk_client(broker, k, tmp_path) for k in KIOSKS]
    sent: set[str] = set()
    try:
        for n in range(100):
            for kiosk_id, client in zip(KIOSKS, clients, strict=True):
                message = event(kiosk_id, n)
                sent.add(message.message_id)
                client.publish(f"kiosk/{kiosk_id}/events", message.to_bytes(), qos=1)
        health = new_message(Health, kiosk_id=KIOSKS[0], paper_percent=42.0)
        sent.add(health.message_id)
        clients[0].publish(f"kiosk/{KIOSKS[0]}/telemetry", health.to_bytes(), qos=1)
        wait_until(lambda: registry.count(schema.events) == 200)
        wait_until(lambda: registry.count(schema.health) == 1)
    finally:
        for client in clients:
            client.disconnect()
            client.loop_stop()
        first.stop()
        second.stop()

    one, two = first.stats.handled_ids or set(), second.stats.handled_ids or set()
    assert one | two == sent
    assert not one & two
    assert one and two, "both instances should have taken part"
    kiosk = registry.kiosk(KIOSKS[0])
    assert kiosk.last_health is not None
    assert kiosk.last_health["paper_percent"] == 42.0


def test_bad_payloads_are_dropped_and_counted(
    broker: RunningBroker, registry: FleetRegistry, tmp_path: Path
) -> None:
    ingestor = Ingestor(registry, bridge_address(broker), max_payload_bytes=4_000)
    ingestor.start()
    kiosk_id = KIOSKS[0]
    client = kiosk_client(broker, kiosk_id, tmp_path)
    good = event(kiosk_id, 1)
    try:
        topic = f"kiosk/{kiosk_id}/events"
        client.publish(topic, b"\xff\x00 not json", qos=1)
        client.publish(topic, b'{"schema_name": "event"}', qos=1)
        client.publish(topic, b"x" * 10_000, qos=1)
        client.publish(topic, event(KIOSKS[1], 2).to_bytes(), qos=1)
        naive = event(kiosk_id, 3).model_dump(mode="json")
        naive["sent_at"] = "2026-01-01T08:00:00"  # no offset: ambiguous
        client.publish(topic, json.dumps(naive).encode(), qos=1)
        client.publish(f"kiosk/{kiosk_id}/unknown-leaf", good.to_bytes(), qos=1)
        client.publish(topic, good.to_bytes(), qos=1)
        client.publish(topic, good.to_bytes(), qos=1)
        wait_until(lambda: registry.count(schema.events) == 1)
        wait_until(lambda: sum(ingestor.stats.dropped.values()) == 5)
    finally:
        client.disconnect()
        client.loop_stop()
        ingestor.stop()
    assert ingestor.stats.dropped["malformed"] == 3
    assert ingestor.stats.dropped["oversized"] == 1
    assert ingestor.stats.dropped["spoofed"] == 1
    assert registry.count(schema.events) == 1


def test_status_and_revoked_kiosks(
    broker: RunningBroker, registry: FleetRegistry, tmp_path: Path
) -> None:
    ingestor = Ingestor(registry, bridge_address(broker))
    ingestor.start()
    online = kiosk_client(broker, KIOSKS[0], tmp_path)
    revoked = kiosk_client(broker, KIOSKS[1], tmp_path)
    registry.revoke(KIOSKS[1])
    try:
        status = new_message(Status, kiosk_id=KIOSKS[0], state="online")
        online.publish(f"kiosk/{KIOSKS[0]}/status", status.to_bytes(), qos=1)
        revoked.publish(f"kiosk/{KIOSKS[1]}/events", event(KIOSKS[1], 1).to_bytes(), 1)
        wait_until(lambda: registry.kiosk(KIOSKS[0]).status == "online")
        wait_until(lambda: ingestor.stats.dropped["revoked"] == 1)
    finally:
        for client in (online, revoked):
            client.disconnect()
            client.loop_stop()
        ingestor.stop()
    assert registry.count(schema.events) == 0
    assert registry.kiosk(KIOSKS[1]).revoked_at is not None


def test_large_payloads_with_properties_are_read_whole(
    broker: RunningBroker, registry: FleetRegistry, tmp_path: Path
) -> None:
    ingestor = Ingestor(registry, bridge_address(broker))
    ingestor.start()
    kiosk_id = KIOSKS[0]
    client = kiosk_client(broker, kiosk_id, tmp_path)
    big = new_message(
        Event,
        kiosk_id=kiosk_id,
        event_type="fault",
        occurred_at=datetime.now(UTC),
        detail={f"line{n}": "x" * 1500 for n in range(20)},
    )
    assert len(big.to_bytes()) > 30_000  # several TLS records, 3-byte length
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.ContentType = "application/json"
    properties.UserProperty = [("agent", "1.4.0"), ("boot", "7")]
    small = [event(kiosk_id, n) for n in range(50)]
    try:
        topic = f"kiosk/{kiosk_id}/events"
        client.publish(topic, big.to_bytes(), qos=1, properties=properties)
        for message in small:
            client.publish(topic, message.to_bytes(), qos=0, properties=properties)
        wait_until(lambda: registry.count(schema.events) == 51)
    finally:
        client.disconnect()
        client.loop_stop()
        ingestor.stop()
    stored = registry.recent_events(kiosk_id, limit=100)
    detail = next(e["detail"] for e in stored if e["message_id"] == big.message_id)
    assert detail == big.detail
    assert sum(ingestor.stats.dropped.values()) == 0


def test_ingestion_resumes_after_the_broker_restarts(
    broker: RunningBroker, registry: FleetRegistry, tmp_path: Path
) -> None:
    ingestor = Ingestor(registry, bridge_address(broker))
    ingestor.start()
    kiosk_id = KIOSKS[0]
    topic = f"kiosk/{kiosk_id}/events"
    client = kiosk_client(broker, kiosk_id, tmp_path)
    client.publish(topic, event(kiosk_id, 1).to_bytes(), qos=1)
    wait_until(lambda: registry.count(schema.events) == 1)
    client.disconnect()
    client.loop_stop()
    ingestor.connected.clear()
    broker.stop()
    restarted = start_broker(tmp_path / "again", broker.ca_dir, broker.port)
    try:
        assert ingestor.connected.wait(40), "the bridge did not reconnect"
        client = kiosk_client(restarted, kiosk_id, tmp_path)
        client.publish(topic, event(kiosk_id, 2).to_bytes(), qos=1)
        wait_until(lambda: registry.count(schema.events) == 2)
        client.disconnect()
        client.loop_stop()
    finally:
        ingestor.stop()
        restarted.stop()
