"""The agent's TLS tunnel for a kiosk key on a PKCS#11 token (SoftHSM2).

Each test makes a SoftHSM2 token of its own, enrolls the kiosk with its key
on that token through the bridge's real endpoint (or has a certificate
issued for it), and talks through stunnel to the fleet's TLS Mosquitto,
whose ACL takes the user name from the certificate, and to an HTTPS server
that requires a client certificate from the kiosk CA. The token key is
only used in child processes (see :mod:`tests.edge.token_kiosk`).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI

from cloud_bridge.fleet.ca import (
    BROKER_CERTIFICATE,
    BROKER_KEY,
    CA_CERTIFICATE,
    KioskCa,
    ensure_kiosk_ca,
)
from cloud_bridge.fleet.service import Fleet
from cloud_bridge.fleet.web import fleet_router
from cloud_bridge.hsm import create_softhsm_token, write_softhsm_conf
from edge.agent import build_agent
from edge.config import ENV_PREFIX, AgentConfig, OfficeLinkSection
from edge.errors import TunnelError
from edge.link import HttpsBlobs, MqttLink
from edge.speech import RecordingSpeaker
from edge.tunnel import LocalAddress, TlsTunnel, TokenKey
from kiosk.errors import ConfigError
from kiosk.settings import load_settings
from protocol.topics import REQUESTS, STATUS, kiosk_topic
from provisioning.identity import KioskIdentity, load_identity
from tests.broker import RunningBroker, connect, start_broker
from tests.conftest import free_port
from tests.edge.conftest import agent_config
from tests.edge.stack import ServerThread, fleet_config
from tests.edge.test_services import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.hsm]

SOFTHSM = Path("/usr/lib/softhsm/libsofthsm2.so")
REPO = Path(__file__).parents[2]
KEY_LABEL = "kiosk-identity"


@dataclass(frozen=True)
class KioskToken:
    """A SoftHSM2 token of the kiosk's own, in a private token store."""

    conf: Path
    label: str
    pin: str

    def key(self, pin: str | None = None) -> TokenKey:
        """The tunnel's view of the kiosk key on this token."""
        return TokenKey(
            SOFTHSM,
            self.label,
            KEY_LABEL,
            pin or self.pin,
            {"SOFTHSM2_CONF": str(self.conf)},
        )

    def run(self, *args: str) -> str:
        """Run a step of :mod:`tests.edge.token_kiosk`; return what it printed."""
        env = {
            **os.environ,
            "SOFTHSM2_CONF": str(self.conf),
            "KIOSK_TEST_TOKEN": self.label,
            "KIOSK_TEST_KEY": KEY_LABEL,
            "KIOSK_TEST_PIN": self.pin,
        }
        done = subprocess.run(
            [sys.executable, "-m", "tests.edge.token_kiosk", *args],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout


@dataclass
class Office:
    """The fleet's broker and the bridge's enrollment endpoint over HTTP."""

    broker: RunningBroker
    fleet: Fleet
    server: ServerThread

    @property
    def url(self) -> str:
        """The bridge's HTTP address."""
        return f"http://127.0.0.1:{self.server.port}"

    def enroll(
        self, token: KioskToken, directory: Path, kiosk_id: str
    ) -> KioskIdentity:
        """Enroll ``kiosk_id`` with its key on ``token``."""
        secret = self.fleet.registry.create_token(kiosk_id, timedelta(hours=1))
        token.run("enroll", str(directory), self.url, secret)
        return load_identity(directory)


@dataclass
class BlobServer:
    """HTTPS needing a kiosk certificate; notes each request and its client."""

    server: socketserver.ThreadingTCPServer
    seen: list[tuple[str, str, int, bytes, bytes]] = field(default_factory=list)

    @property
    def port(self) -> int:
        """The port it listens on (127.0.0.1)."""
        return int(self.server.server_address[1])


@pytest.fixture
def kiosk_token(tmp_path: Path) -> KioskToken:
    """An empty SoftHSM2 token with a unique label in a private token store."""
    conf = tmp_path / "softhsm2.conf"
    write_softhsm_conf(conf, tmp_path / "tokens")
    token = KioskToken(conf, f"kiosk-{uuid.uuid4().hex[:10]}", "kiosk-pin-2468")
    create_softhsm_token(conf, token.label, token.pin, "kiosk-so-pin")
    return token


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Office]:
    """The fleet's TLS Mosquitto and the bridge's fleet endpoints."""
    broker = start_broker(tmp_path / "mqtt")
    config = fleet_config(tmp_path, broker.ca_dir, broker.port)
    fleet = Fleet(config)
    app = FastAPI()
    app.include_router(fleet_router(fleet))
    server = ServerThread(app, free_port())
    server.start()
    yield Office(broker, fleet, server)
    server.stop()
    fleet.close()
    broker.stop()


Watch = Callable[[str], list[bytes]]


@pytest.fixture
def watch(office: Office) -> Iterator[Watch]:
    """Subscribe as the bridge to a topic; return the list payloads land in."""
    clients = []

    def subscribe(topic: str) -> list[bytes]:
        received: list[bytes] = []
        client = connect(office.broker, office.broker.bridge_identity)
        clients.append(client)
        subscribed = threading.Event()
        client.on_message = lambda c, u, message: received.append(
            bytes(message.payload)
        )
        client.on_subscribe = lambda *args: subscribed.set()
        client.subscribe(topic, qos=1)
        assert subscribed.wait(10)
        return received

    yield subscribe
    for client in clients:
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def blob_server(office: Office) -> Iterator[BlobServer]:
    """An HTTPS blob endpoint trusting the kiosk CA only."""
    running = _serve_blobs(office.broker.ca_dir)
    yield running
    running.server.shutdown()
    running.server.server_close()


def test_mqtt_and_https_go_through_the_tunnel_with_the_token_key(
    office: Office,
    blob_server: BlobServer,
    kiosk_token: KioskToken,
    watch: Watch,
    tmp_path: Path,
) -> None:
    identity = office.enroll(kiosk_token, tmp_path / "identity", "kiosk-tun-01")
    assert not identity.key_path.exists()  # the key never left the token
    tunnel = TlsTunnel(kiosk_token.key(), identity.certificate_path, identity.ca_path)
    section = _office_section(identity, blob_server)
    mqtt_via = tunnel.route(identity.broker_host, identity.broker_port)
    https_via = tunnel.route("127.0.0.1", blob_server.port)
    received = watch(kiosk_topic(identity.kiosk_id, REQUESTS))
    tunnel.start()
    link = MqttLink(identity.kiosk_id, section, lambda t, p: None, via=mqtt_via)
    blobs = HttpsBlobs(section, via=https_via)
    try:
        link.start()
        assert link.connected.wait(20)
        topic = kiosk_topic(identity.kiosk_id, REQUESTS)
        assert link.publish(topic, b"request through the token", 10)
        wait_until(lambda: b"request through the token" in received)

        blobs.upload("ab" * 32, b"page image")
    finally:
        link.stop()
        blobs.close()
        tunnel.stop()

    certificate = identity.certificate()
    assert [(m, p, s, b) for m, p, s, b, _ in blob_server.seen] == [
        ("HEAD", "/api/v1/kiosk/blobs/" + "ab" * 32, certificate.serial_number, b""),
        (
            "PUT",
            "/api/v1/kiosk/blobs/" + "ab" * 32,
            certificate.serial_number,
            b"page image",
        ),
    ]
    assert blob_server.seen[0][4] == _spki(certificate)


def test_renewal_recertifies_the_token_key_and_the_tunnel_reloads(
    office: Office,
    blob_server: BlobServer,
    kiosk_token: KioskToken,
    watch: Watch,
    tmp_path: Path,
) -> None:
    identity = office.enroll(kiosk_token, tmp_path / "identity", "kiosk-tun-02")
    first = identity.certificate()
    tunnel = TlsTunnel(kiosk_token.key(), identity.certificate_path, identity.ca_path)
    section = _office_section(identity, blob_server)
    mqtt_via = tunnel.route(identity.broker_host, identity.broker_port)
    https_via = tunnel.route("127.0.0.1", blob_server.port)
    topic = kiosk_topic(identity.kiosk_id, REQUESTS)
    received = watch(topic)
    tunnel.start()
    link = MqttLink(identity.kiosk_id, section, lambda t, p: None, via=mqtt_via)
    blobs = HttpsBlobs(section, via=https_via)
    try:
        link.start()
        assert link.connected.wait(20)
        blobs.upload("cd" * 32, b"before")

        kiosk_token.run("renew", str(identity.dir))
        renewed = identity.certificate()
        assert renewed.serial_number != first.serial_number
        assert _spki(renewed) == _spki(first)  # the same key, on the token
        assert not identity.key_path.exists()
        assert not identity.key_path.with_name("kiosk.key.new").exists()

        for user in (tunnel, link, blobs):  # AgentServices' order
            user.reload_certificate()
        blobs.upload("ef" * 32, b"after")
        assert link.connected.wait(20)
        wait_until(lambda: link.publish(topic, b"after renewal", 5))
        wait_until(lambda: b"after renewal" in received)
    finally:
        link.stop()
        blobs.close()
        tunnel.stop()

    serials = [(body, serial) for _, _, serial, body, _ in blob_server.seen if body]
    assert serials == [
        (b"before", first.serial_number),
        (b"after", renewed.serial_number),
    ]


def test_agent_with_a_token_key_connects_everything_through_the_tunnel(
    office: Office,
    blob_server: BlobServer,
    kiosk_token: KioskToken,
    watch: Watch,
    tmp_path: Path,
) -> None:
    kiosk_id = "kiosk-tun-03"
    identity = office.enroll(kiosk_token, tmp_path / "kiosk" / "identity", kiosk_id)
    status = watch(kiosk_topic(kiosk_id, STATUS))
    config = agent_config(
        tmp_path,
        kiosk_id=kiosk_id,
        port=free_port(),
        office={
            "mqtt_port": office.broker.port,
            "https_url": f"https://127.0.0.1:{blob_server.port}",
            "ca_file": str(identity.ca_path),
            "cert_file": str(identity.certificate_path),
        },
        vision={"ocr": "off", "face_checker": "simulated"},
        services={
            "updates": False,
            "key": {
                "key_backend": "pkcs11",
                "pkcs11_token_label": kiosk_token.label,
                "key_label": KEY_LABEL,
                "pkcs11_pin": kiosk_token.pin,
                "pkcs11_environment": {"SOFTHSM2_CONF": str(kiosk_token.conf)},
            },
        },
    )
    agent = build_agent(config, RecordingSpeaker())
    tunnel = agent.tunnel
    assert tunnel is not None and agent.link.via is not None
    assert agent.services is not None and agent.services.telemetry is not None
    publisher = agent.services.telemetry.publisher
    assert publisher.link.tunnelled
    assert agent.services.links[0] is tunnel  # reloads before the links
    agent.start()
    try:
        directory = tunnel.directory
        assert directory is not None
        assert agent.link.connected.wait(20)
        assert publisher.connected.wait(20)
        wait_until(lambda: any(b"online" in message for message in status))
        agent.blobs.upload("01" * 32, b"agent page")
    finally:
        agent.stop()

    assert tunnel.pid is None and not directory.exists()
    assert blob_server.seen[-1][3] == b"agent page"


def test_tunnel_files_are_private_and_a_dead_stunnel_is_restarted(
    kiosk_token: KioskToken, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="edge.tunnel")
    certificate, ca = _certificate_for_token(kiosk_token, tmp_path)
    server = _echo_tls_server(tmp_path / "ca")
    tunnel = TlsTunnel(kiosk_token.key(), certificate, ca, [("127.0.0.1", server.port)])
    local = tunnel.local_address("127.0.0.1", server.port)
    tunnel.start()
    try:
        directory = tunnel.directory
        assert directory is not None
        assert (directory.stat().st_mode & 0o777) == 0o700
        config = directory / "stunnel.conf"
        assert (config.stat().st_mode & 0o777) == 0o600
        assert ((directory / "pin").stat().st_mode & 0o777) == 0o600
        assert kiosk_token.pin not in config.read_text()
        assert _greeting(local) == b"hello kiosk-tun-04\n"

        first = tunnel.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: tunnel.restarts == 1 and tunnel.pid not in (None, first))
        assert _greeting(local) == b"hello kiosk-tun-04\n"
    finally:
        tunnel.stop()
        server.server.shutdown()
        server.server.server_close()

    assert tunnel.pid is None and not directory.exists()
    assert "stunnel:" in caplog.text  # stunnel's output was logged ...
    assert kiosk_token.pin not in caplog.text  # ... but never the PIN


def test_an_agent_that_exits_without_stopping_leaves_no_stunnel(
    kiosk_token: KioskToken, tmp_path: Path
) -> None:
    certificate, ca = _certificate_for_token(kiosk_token, tmp_path)
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from edge.tunnel import TlsTunnel, TokenKey\n"
        "key = TokenKey(Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4],"
        " {'SOFTHSM2_CONF': sys.argv[5]})\n"
        "tunnel = TlsTunnel(key, Path(sys.argv[6]), Path(sys.argv[7]),"
        " [('127.0.0.1', int(sys.argv[8]))])\n"
        "tunnel.start()\n"
        "print(tunnel.pid, tunnel.directory)\n"
    )
    token = kiosk_token.key()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(token.module),
            token.token_label,
            token.key_label,
            token.pin,
            str(kiosk_token.conf),
            str(certificate),
            str(ca),
            str(free_port()),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    pid, directory = done.stdout.split()

    assert not Path(f"/proc/{pid}").exists() or "stunnel" not in Path(
        f"/proc/{pid}/cmdline"
    ).read_text(errors="replace")
    assert not Path(directory).exists()


def test_a_wrong_pin_is_a_clear_error_that_is_not_logged(
    kiosk_token: KioskToken, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    certificate, ca = _certificate_for_token(kiosk_token, tmp_path)
    wrong = "wrong-pin-9753"
    tunnel = TlsTunnel(
        kiosk_token.key(pin=wrong), certificate, ca, [("127.0.0.1", free_port())]
    )

    with pytest.raises(TunnelError, match="refused the PIN") as raised:
        tunnel.start()

    assert wrong not in str(raised.value) and wrong not in caplog.text
    assert tunnel.pid is None and tunnel.directory is None


def test_a_missing_key_stunnel_or_engine_is_named(
    kiosk_token: KioskToken, tmp_path: Path
) -> None:
    certificate, ca = _certificate_for_token(kiosk_token, tmp_path)
    endpoints = [("127.0.0.1", free_port())]
    other_key = replace(kiosk_token.key(), key_label="no-such-key")
    missing = {
        "was not found on the token": TlsTunnel(other_key, certificate, ca, endpoints),
        "install stunnel4 and libengine-pkcs11-openssl": TlsTunnel(
            kiosk_token.key(),
            certificate,
            ca,
            endpoints,
            command="/nonexistent/stunnel",
        ),
        "cannot load OpenSSL's pkcs11-absent engine; install stunnel4 and "
        "libengine-pkcs11-openssl": TlsTunnel(
            kiosk_token.key(), certificate, ca, endpoints, engine="pkcs11-absent"
        ),
    }
    for message, tunnel in missing.items():
        with pytest.raises(TunnelError, match=message):
            tunnel.start()
        assert tunnel.pid is None


def test_a_token_key_needs_certificate_ca_and_pin_in_the_configuration() -> None:
    prefix = f"{ENV_PREFIX}__SERVICES__KEY__"
    environ = {f"{prefix}KEY_BACKEND": "pkcs11", f"{prefix}PKCS11_PIN": "'pin-7319'"}

    with pytest.raises(ConfigError, match=r"office\.cert_file, office\.ca_file"):
        load_settings(AgentConfig, None, ENV_PREFIX, environ)

    environ[f"{ENV_PREFIX}__OFFICE__CERT_FILE"] = "/etc/kiosk/identity/kiosk.pem"
    environ[f"{ENV_PREFIX}__OFFICE__CA_FILE"] = "/etc/kiosk/identity/ca.pem"
    config = load_settings(AgentConfig, None, ENV_PREFIX, environ)
    pin = config.services.key.pkcs11_pin
    assert pin is not None and pin.get_secret_value() == "pin-7319"
    assert "pin-7319" not in repr(config)
    assert load_settings(
        AgentConfig, None, ENV_PREFIX, {}
    ).services.key.key_backend == ("file")


def _office_section(identity: KioskIdentity, blobs: BlobServer) -> OfficeLinkSection:
    return OfficeLinkSection(
        mqtt_host=identity.broker_host,
        mqtt_port=identity.broker_port,
        https_url=f"https://127.0.0.1:{blobs.port}",
        ca_file=identity.ca_path,
        cert_file=identity.certificate_path,
    )


def _spki(certificate: x509.Certificate) -> bytes:
    return certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _certificate_for_token(token: KioskToken, tmp_path: Path) -> tuple[Path, Path]:
    """Make the key on the token and have a test kiosk CA certify it."""
    ensure_kiosk_ca(tmp_path / "ca", ["127.0.0.1"])
    ca = KioskCa(tmp_path / "ca")
    issued = ca.issue(token.run("csr", "kiosk-tun-04"), "kiosk-tun-04")
    path = tmp_path / "kiosk.pem"
    path.write_bytes(issued.public_bytes(serialization.Encoding.PEM))
    return path, ca.dir / CA_CERTIFICATE


def _server_context(ca_dir: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(ca_dir / BROKER_CERTIFICATE, ca_dir / BROKER_KEY)
    context.load_verify_locations(ca_dir / CA_CERTIFICATE)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


class _TlsServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    context: ssl.SSLContext

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        return self.context.wrap_socket(sock, server_side=True), address


def _client_certificate(connection: ssl.SSLSocket) -> x509.Certificate:
    der = connection.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _serve_blobs(ca_dir: Path) -> BlobServer:
    """Answer HEAD with 404 and PUT with 201, noting the client's certificate."""
    seen: list[tuple[str, str, int, bytes, bytes]] = []

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            client = _client_certificate(self.connection)
            while True:
                request = self.rfile.readline().decode("ascii").split()
                if not request:
                    return
                length = 0
                while (line := self.rfile.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("ascii").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                body = self.rfile.read(length)
                seen.append(
                    (request[0], request[1], client.serial_number, body, _spki(client))
                )
                status = "404 Not Found" if request[0] == "HEAD" else "201 Created"
                self.wfile.write(
                    f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode("ascii")
                )

    server = _TlsServer(("127.0.0.1", 0), Handler)
    server.context = _server_context(ca_dir)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return BlobServer(server, seen)


def _echo_tls_server(ca_dir: Path) -> BlobServer:
    """Greet each TLS client by its certificate's common name."""

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            client = _client_certificate(self.connection)
            name = client.subject.rfc4514_string().removeprefix("CN=")
            self.wfile.write(f"hello {name}\n".encode())

    server = _TlsServer(("127.0.0.1", 0), Handler)
    server.context = _server_context(ca_dir)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return BlobServer(server)


def _greeting(local: LocalAddress) -> bytes:
    with socket.create_connection(local, timeout=10) as sock:
        return sock.makefile("rb").readline()
