"""The generated broker configuration, against a real Mosquitto with TLS."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from cloud_bridge.fleet.broker_config import acl_text
from cloud_bridge.fleet.ca import KioskCa, RevokedSerial
from tests.broker import (
    Identity,
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


def _bridge_config_file(
    tmp_path: Path, broker: RunningBroker, fleet_extra: str
) -> Path:
    config = tmp_path / "bridge.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "bridge"}"\n'
        f'[database]\nurl = "sqlite:///{tmp_path / "bridge.db"}"\n'
        f'[fleet]\nca_dir = "{broker.ca_dir}"\nbroker_port = {broker.port}\n'
        + fleet_extra,
        encoding="utf-8",
    )
    return config


def _registered(ca: KioskCa, tmp_path: Path, config: Path, name: str) -> Identity:
    from cryptography import x509

    from cloud_bridge.config import load_bridge_config
    from cloud_bridge.fleet.service import Fleet

    identity = client_identity(ca, tmp_path / "ids", name)
    fleet = Fleet(load_bridge_config(config))
    try:
        cert = x509.load_pem_x509_certificate(identity.certificate.read_bytes())
        fleet.registry.record_certificate(name, cert)
    finally:
        fleet.close()
    return identity


def _refused_soon(broker: RunningBroker, identity: Identity) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not try_connect(broker, identity):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("how", ["pid_file", "command"])
def test_fleet_revoke_pushes_the_crl_and_the_broker_refuses_the_kiosk(
    broker: RunningBroker, ca: KioskCa, tmp_path: Path, how: str
) -> None:
    from click.testing import CliRunner

    from cloud_bridge.fleet.cli import fleet_group

    pid_file = tmp_path / "mosquitto.pid"
    pid_file.write_text(f"{broker.process.pid}\n", encoding="ascii")
    extra = (
        f'broker_pid_file = "{pid_file}"\n'
        if how == "pid_file"
        else f'broker_reload_command = ["kill", "-HUP", "{broker.process.pid}"]\n'
    )
    config = _bridge_config_file(tmp_path, broker, extra)
    (tmp_path / "bridge").mkdir()
    doomed = _registered(ca, tmp_path, config, "kiosk-doomed")
    other = _registered(ca, tmp_path, config, "kiosk-other")
    assert try_connect(broker, doomed)
    crl_before = ca.crl_path.read_bytes()

    result = CliRunner().invoke(
        fleet_group, ["revoke", "kiosk-doomed", "--config", str(config)]
    )

    assert result.exit_code == 0, result.output
    assert "broker reloaded" in result.output
    assert ca.crl_path.read_bytes() != crl_before
    assert not list(ca.crl_path.parent.glob(f".{ca.crl_path.name}.*"))
    assert _refused_soon(broker, doomed)
    assert try_connect(broker, other)
    assert broker.process.poll() is None


def test_a_broker_that_cannot_be_reloaded_is_reported(
    broker: RunningBroker, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from cloud_bridge.fleet.cli import fleet_group

    config = _bridge_config_file(
        tmp_path, broker, f'broker_pid_file = "{tmp_path / "missing.pid"}"\n'
    )
    (tmp_path / "bridge").mkdir()

    result = CliRunner().invoke(fleet_group, ["crl", "--config", str(config)])

    assert result.exit_code != 0
    assert "CRL is written but the broker did not reload" in result.output
    assert "missing.pid" in result.output


def test_broker_config_names_the_pid_file(tmp_path: Path) -> None:
    from cloud_bridge.fleet.broker_config import config_text

    text = config_text(
        tmp_path, tmp_path / "acl", "127.0.0.1", 8883, pid_file=tmp_path / "m.pid"
    )

    assert f"pid_file {tmp_path / 'm.pid'}\n" in text
