"""The generated broker configuration, against a real Mosquitto with TLS."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from cloud_bridge.fleet.broker_config import acl_text
from cloud_bridge.fleet.ca import KioskCa, RevokedSerial
from tests.broker import (
    RunningBroker,
    client_identity,
    connect,
    start_broker,
    try_connect,
)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RunningBroker]:
    """A private Mosquitto with the fleet configuration."""
    running = start_broker(tmp_path)
    yield running
    running.stop()


@pytest.fixture
def ca(broker: RunningBroker) -> KioskCa:
    """The kiosk CA the broker trusts."""
    return KioskCa(broker.ca_dir)


def publish_code(client: mqtt.Client, topic: str) -> int:
    """Publish at QoS 1 and return the PUBACK reason code (16: no subscribers)."""
    done = threading.Event()
    codes: list[int] = []

    def on_publish(
        _c: mqtt.Client, _u: object, _mid: int, code: object, _p: object
    ) -> None:
        codes.append(int(getattr(code, "value", 0)))
        done.set()

    client.on_publish = on_publish
    client.publish(topic, b"{}", qos=1)
    assert done.wait(5), "no PUBACK"
    return codes[0]


def test_acl_lets_kiosks_write_only_their_own_topics() -> None:
    text = acl_text()
    assert "pattern write kiosk/%u/#" in text
    assert "pattern read office/%u/#" in text
    assert "topic readwrite #" in text


def test_kiosk_may_publish_own_topic_but_not_another(
    broker: RunningBroker, ca: KioskCa, tmp_path: Path
) -> None:
    identity = client_identity(ca, tmp_path / "ids", "kiosk-001")
    client = connect(broker, identity)
    try:
        assert publish_code(client, "kiosk/kiosk-001/telemetry") < 128
        assert publish_code(client, "kiosk/kiosk-002/telemetry") == 135
        assert publish_code(client, "office/kiosk-001/commands") == 135
    finally:
        client.disconnect()
        client.loop_stop()


def test_kiosk_reads_only_its_own_commands(
    broker: RunningBroker, ca: KioskCa, tmp_path: Path
) -> None:
    kiosk = connect(broker, client_identity(ca, tmp_path / "ids", "kiosk-001"))
    office = connect(broker, broker.bridge_identity)
    got: list[str] = []
    arrived = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        got.append(message.topic)
        arrived.set()

    kiosk.on_message = on_message
    try:
        kiosk.subscribe("office/#", qos=1)
        kiosk.subscribe("office/kiosk-001/#", qos=1)
        threading.Event().wait(0.3)
        office.publish("office/kiosk-002/commands", b"x", qos=1).wait_for_publish(5)
        office.publish("office/kiosk-001/commands", b"y", qos=1).wait_for_publish(5)
        assert arrived.wait(5)
        threading.Event().wait(0.3)
        assert set(got) == {"office/kiosk-001/commands"}
    finally:
        for client in (kiosk, office):
            client.disconnect()
            client.loop_stop()


def test_expired_certificate_is_refused(
    broker: RunningBroker, ca: KioskCa, tmp_path: Path
) -> None:
    past = datetime.now(UTC) - timedelta(days=40)
    expired = client_identity(
        ca, tmp_path / "ids", "kiosk-old", timedelta(days=30), not_before=past
    )
    fresh = client_identity(ca, tmp_path / "ids", "kiosk-new")
    assert not try_connect(broker, expired)
    assert try_connect(broker, fresh)


def test_certificate_of_another_ca_is_refused(
    broker: RunningBroker, tmp_path: Path
) -> None:
    from cloud_bridge.fleet.ca import ensure_kiosk_ca

    ensure_kiosk_ca(tmp_path / "other-ca", ["127.0.0.1"])
    stranger = client_identity(KioskCa(tmp_path / "other-ca"), tmp_path, "kiosk-x")
    assert not try_connect(broker, stranger)


def test_revoked_certificate_is_refused_after_reload(
    broker: RunningBroker, ca: KioskCa, tmp_path: Path
) -> None:
    identity = client_identity(ca, tmp_path / "ids", "kiosk-rev")
    assert try_connect(broker, identity)
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(identity.certificate.read_bytes())
    ca.write_crl([RevokedSerial(cert.serial_number, datetime.now(UTC))])
    broker.reload()
    assert not try_connect(broker, identity)
    assert try_connect(broker, client_identity(ca, tmp_path / "ids", "kiosk-ok"))
