"""Start a private Mosquitto with TLS, client certificates and the fleet ACL.

Other tests reuse it: :func:`start_broker` writes the configuration that
``kiosk bridge broker-config`` writes (plus ``user root`` so the broker can
read keys in a test's private directory), starts Mosquitto on a free port
and waits until it accepts connections; :meth:`RunningBroker.stop` ends it.
:func:`client_identity` issues a client certificate from the kiosk CA and
:func:`connect` opens an MQTT 5 client with it.
"""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from cloud_bridge.fleet.broker_config import write_broker_config
from cloud_bridge.fleet.ca import (
    BRIDGE_CERTIFICATE,
    BRIDGE_KEY,
    CA_CERTIFICATE,
    KioskCa,
    ensure_kiosk_ca,
)
from tests.conftest import free_port

MOSQUITTO = "/usr/sbin/mosquitto"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Identity:
    """A client certificate and key on disk, with the CA to trust."""

    name: str
    certificate: Path
    key: Path
    ca: Path


@dataclass
class RunningBroker:
    """A Mosquitto process started for one test."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    ca_dir: Path
    config: Path
    log: Path

    @property
    def bridge_identity(self) -> Identity:
        """The bridge's own client certificate (full access)."""
        return Identity(
            "bridge",
            self.ca_dir / BRIDGE_CERTIFICATE,
            self.ca_dir / BRIDGE_KEY,
            self.ca_dir / CA_CERTIFICATE,
        )

    def reload(self) -> None:
        """Send SIGHUP so the broker reads its CRL and ACL again."""
        self.process.send_signal(signal.SIGHUP)
        time.sleep(0.3)

    def stop(self) -> None:
        """Stop the broker and wait for it to exit."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_broker(
    work_dir: Path, ca_dir: Path | None = None, port: int | None = None
) -> RunningBroker:
    """Start Mosquitto with the fleet's configuration (on a free port by default)."""
    ca_dir = ca_dir or work_dir / "fleet-ca"
    ensure_kiosk_ca(ca_dir, [HOST])
    port = port or free_port()
    files = write_broker_config(work_dir / "broker", ca_dir, HOST, port, run_as="root")
    log = work_dir / "broker" / f"mosquitto-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [MOSQUITTO, "-c", str(files.config)], stdout=sink, stderr=sink
        )
    broker = RunningBroker(process, HOST, port, ca_dir, files.config, log)
    _wait_listening(broker)
    return broker


def client_identity(
    ca: KioskCa,
    out_dir: Path,
    name: str,
    validity: timedelta = timedelta(days=1),
    not_before: datetime | None = None,
) -> Identity:
    """Issue a client certificate named ``name`` and write it with its key."""
    out_dir.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = ca.issue_for_key(name, key.public_key(), validity, not_before)
    stem = f"{name}-{uuid.uuid4().hex[:6]}"
    key_path = out_dir / f"{stem}.key"
    cert_path = out_dir / f"{stem}.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Identity(name, cert_path, key_path, ca.dir / CA_CERTIFICATE)


def tls_client(identity: Identity, client_id: str | None = None) -> mqtt.Client:
    """Return an MQTT 5 client set up with ``identity`` (not connected)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or f"{identity.name}-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )
    client.tls_set(
        ca_certs=str(identity.ca),
        certfile=str(identity.certificate),
        keyfile=str(identity.key),
        tls_version=ssl.PROTOCOL_TLS_CLIENT,
    )
    return client


def connect(
    broker: RunningBroker, identity: Identity, timeout: float = 10.0
) -> mqtt.Client:
    """Connect ``identity`` to the broker with a network loop running."""
    client = tls_client(identity)
    connected = threading.Event()
    failure: list[str] = []

    def on_connect(
        _c: mqtt.Client, _u: object, _f: object, code: ReasonCode, _p: object
    ) -> None:
        if code.is_failure:
            failure.append(str(code))
        connected.set()

    client.on_connect = on_connect
    client.connect(broker.host, broker.port, keepalive=30)
    client.loop_start()
    if not connected.wait(timeout) or failure:
        client.loop_stop()
        raise ConnectionError(f"could not connect as {identity.name}: {failure}")
    return client


def try_connect(broker: RunningBroker, identity: Identity) -> bool:
    """Return whether ``identity`` can connect (TLS and MQTT accepted)."""
    try:
        client = connect(broker, identity, timeout=5.0)
    except (ConnectionError, OSError, ssl.SSLError):
        return False
    client.disconnect()
    client.loop_stop()
    return True


def _wait_listening(broker: RunningBroker, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if broker.process.poll() is not None:
            raise RuntimeError(
                f"mosquitto exited: {broker.log.read_text(errors='replace')}"
            )
        try:
            with socket.create_connection((broker.host, broker.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    broker.stop()
    raise RuntimeError(f"mosquitto did not listen on {broker.port}")
