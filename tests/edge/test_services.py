"""The agent's background services against a TLS Mosquitto and a real bridge.

A bridge process-in-a-thread serves enrollment, renewal and the update
repository over HTTP on a free port; its fleet consumer reads the private
Mosquitto; the kiosk is enrolled through the real endpoint and the agent is
built and started as ``kiosk agent`` builds it, with simulated devices.
"""

from __future__ import annotations

import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from fastapi import FastAPI

from cloud_bridge.fleet import schema
from cloud_bridge.fleet.ca import (
    BROKER_CERTIFICATE,
    BROKER_KEY,
    CA_CERTIFICATE,
    KioskCa,
    RevokedSerial,
    ensure_kiosk_ca,
)
from cloud_bridge.fleet.ingest import Ingestor
from cloud_bridge.fleet.mqtt_client import BrokerAddress
from cloud_bridge.fleet.service import Fleet
from cloud_bridge.fleet.web import fleet_router
from cloud_bridge.ota_routes import create_ota_router
from edge.agent import Agent, build_agent
from edge.config import OfficeLinkSection
from edge.link import HttpsBlobs
from edge.speech import RecordingSpeaker
from ota.client import UpdateClient
from ota.config import OtaClientSection
from ota.health import ModelHealthCheck
from ota.notices import notify_release
from provisioning.enroll import provision
from provisioning.identity import KioskIdentity
from tests.broker import RunningBroker, client_identity, start_broker
from tests.conftest import free_port
from tests.edge.conftest import agent_config
from tests.edge.stack import ServerThread, fleet_config
from tests.ota.conftest import Office, make_office, model_files

pytestmark = pytest.mark.broker

KIOSK = "kiosk-svc-01"


@dataclass
class Bridge:
    """The office side of these tests."""

    broker: RunningBroker
    fleet: Fleet
    ingestor: Ingestor
    office: Office
    server: ServerThread

    @property
    def url(self) -> str:
        """The bridge's HTTP address."""
        return f"http://127.0.0.1:{self.server.port}"

    def enroll(self, directory: Path, kiosk_id: str = KIOSK) -> KioskIdentity:
        """Enroll a kiosk through the bridge's endpoint."""
        token = self.fleet.registry.create_token(kiosk_id, timedelta(hours=1))
        with httpx.Client(timeout=10) as http:
            return provision(directory, self.url, token, http)


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[Bridge]:
    """Broker, fleet consumer with a director, enrollment and OTA over HTTP."""
    broker = start_broker(tmp_path / "mqtt")
    config = fleet_config(tmp_path, broker.ca_dir, broker.port)
    fleet = Fleet(config)
    office = make_office(tmp_path / "office")
    ingestor = Ingestor(
        fleet.registry, BrokerAddress.for_bridge(config), batch_wait_ms=20
    )
    ingestor.director = office.director
    ingestor.start()
    app = FastAPI()
    app.include_router(fleet_router(fleet))
    app.include_router(create_ota_router(office.root / "repo", office.director))
    server = ServerThread(app, free_port())
    server.start()
    running = Bridge(broker, fleet, ingestor, office, server)
    yield running
    server.stop()
    ingestor.stop()
    fleet.close()
    office.director.engine.dispose()
    running.broker.stop()  # a test may have restarted it: stop the one running


def start_agent(
    bridge: Bridge, tmp_path: Path, **services: Any
) -> tuple[Agent, KioskIdentity, int]:
    """Enroll a kiosk, then build and start its agent with ``services``.

    Returns the agent, the kiosk's identity and its first certificate's serial.
    """
    data_dir = tmp_path / "kiosk"
    identity = bridge.enroll(data_dir / "identity")
    enrolled = serial(identity.certificate_path)
    config = agent_config(
        tmp_path,
        kiosk_id=KIOSK,
        port=free_port(),
        office={
            "mqtt_port": bridge.broker.port,
            "https_url": bridge.url.replace("http:", "https:"),
            "ca_file": str(identity.ca_path),
            "cert_file": str(identity.certificate_path),
            "key_file": str(identity.key_path),
        },
        vision={"ocr": "off", "face_checker": "simulated"},
        services={"updates": False, "health_interval_s": 1, **services},
    )
    agent = build_agent(config, RecordingSpeaker())
    agent.start()
    return agent, identity, enrolled


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait until ``check()`` holds, or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail("condition not reached in time")


def serial(path: Path) -> int:
    """Return the serial number of the certificate in ``path``."""
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def test_agent_publishes_telemetry_that_the_fleet_stores(
    bridge: Bridge, tmp_path: Path
) -> None:
    agent, _identity, _serial = start_agent(bridge, tmp_path)
    try:
        assert agent.services is not None and agent.services.telemetry is not None
        registry = bridge.fleet.registry
        wait_until(lambda: registry.count(schema.health) >= 2)
        wait_until(lambda: registry.kiosk(KIOSK).status == "online")
        events = [e["kind"] for e in registry.recent_events(KIOSK, 10)]
        assert "agent_started" in events
        assert registry.kiosk(KIOSK).last_health is not None
        assert agent.link.connected.wait(10)
    finally:
        agent.stop()
    wait_until(lambda: bridge.fleet.registry.kiosk(KIOSK).status == "offline")


def test_agent_without_identity_runs_without_services(tmp_path: Path) -> None:
    config = agent_config(
        tmp_path,
        port=free_port(),
        vision={"ocr": "off", "face_checker": "simulated"},
    )
    agent = build_agent(config, RecordingSpeaker())
    assert agent.services is not None
    assert agent.services.telemetry is None
    assert agent.services.renewer is None
    assert agent.services.updates is None


def test_certificate_near_expiry_is_renewed_and_the_links_reconnect_with_it(
    bridge: Bridge, tmp_path: Path
) -> None:
    # 30-day certificates renewed 40 days ahead: due at once.
    agent, identity, enrolled = start_agent(bridge, tmp_path, renew_before_days=40)
    try:
        services = agent.services
        assert services is not None and services.renewer is not None
        renewer = services.renewer
        wait_until(lambda: renewer.renewals >= 1)
        assert serial(identity.certificate_path) != enrolled
        assert identity.expires_at() > datetime.now(UTC) + timedelta(days=29)

        # Only the renewed certificate may connect from now on: revoke the
        # enrollment one, then restart the broker so every link reconnects.
        revoked = RevokedSerial(enrolled, datetime.now(UTC))
        KioskCa(bridge.broker.ca_dir).write_crl([revoked])
        bridge.broker.stop()
        assert services.telemetry is not None
        publisher = services.telemetry.publisher
        wait_until(lambda: not publisher.connected.is_set())
        agent.link.connected.clear()
        bridge.broker = start_broker(
            tmp_path / "mqtt", bridge.broker.ca_dir, port=bridge.broker.port
        )
        before = bridge.fleet.registry.count(schema.health)

        wait_until(publisher.connected.is_set, timeout=40)
        assert agent.link.connected.wait(30)
        wait_until(lambda: bridge.fleet.registry.count(schema.health) > before)
    finally:
        agent.stop()


def test_update_service_installs_a_release_the_bridge_announces(
    bridge: Bridge, tmp_path: Path
) -> None:
    home = tmp_path / "ota-home"
    home.mkdir()
    root = home / "trusted-root.json"
    root.write_bytes(bridge.office.repository.root_bytes())
    ota = OtaClientSection(
        ota_dir=home / "ota",
        trusted_root=root,
        base_url=f"{bridge.url}/ota/v1",
        idle_poll_s=0.05,
        idle_wait_s=5,
        min_free_bytes=0,
        check_interval_s=3600,
    )
    factory = UpdateClient(
        KIOSK,
        ota,
        httpx.Client(),
        health_check=ModelHealthCheck(ota),
        busy=lambda: False,
        reporter=lambda report: None,
    )
    factory.seed(home / "factory", model_files(home / "factory", "1.0"), "1.0")
    agent, _identity, _serial = start_agent(
        bridge, tmp_path, updates=True, ota=ota.model_dump(mode="json")
    )
    try:
        services = agent.services
        assert services is not None and services.telemetry is not None
        assert services.updates is not None
        assert services.telemetry.publisher.connected.wait(15)
        time.sleep(0.3)  # the subscription to office/<id>/updates is in place
        director = bridge.office.director

        target = bridge.office.publish("2.0", kiosks=[KIOSK])
        release = director.releases()[0]
        address = BrokerAddress.for_bridge(bridge.fleet.config)
        assert notify_release(address, director, release, [KIOSK]) == 1

        def installed() -> bool:
            states = {state.kiosk_id: state for state in director.states()}
            state = states.get(KIOSK)
            return state is not None and state.state == "installed"

        wait_until(installed, timeout=60)
        state = next(s for s in director.states() if s.kiosk_id == KIOSK)
        assert (state.target, state.running_version) == (target, "2.0")
        assert services.updates.client.running_version() == "2.0"
        assert director.release(release.sequence).state != "halted"
    finally:
        agent.stop()


def test_renew_command_is_answered_then_the_links_reconnect(
    bridge: Bridge, tmp_path: Path
) -> None:
    agent, identity, enrolled = start_agent(bridge, tmp_path)
    try:
        services = agent.services
        assert services is not None and services.telemetry is not None
        publisher = services.telemetry.publisher
        assert publisher.connected.wait(15)
        time.sleep(0.3)
        first_client = publisher.client
        sent = bridge.fleet.commander.send(KIOSK, "renew_certificate", urgent=True)

        def answered() -> bool:
            row = bridge.fleet.registry.command(sent.message_id)
            return row is not None and row["outcome"] is not None

        wait_until(answered)
        row = bridge.fleet.registry.command(sent.message_id)
        assert row is not None and row["outcome"] == "done", row
        assert serial(identity.certificate_path) != enrolled
        assert str(row["result"]["expires_at"]).startswith(
            f"{identity.expires_at():%Y-%m-%d}"
        )
        # The reconnection with the new certificate follows the answer.
        wait_until(lambda: publisher.client is not first_client, timeout=10)
        wait_until(publisher.connected.is_set, timeout=20)
    finally:
        agent.stop()


def test_https_link_presents_the_renewed_certificate(tmp_path: Path) -> None:
    ensure_kiosk_ca(tmp_path / "ca", ["127.0.0.1"])
    ca = KioskCa(tmp_path / "ca")
    first = client_identity(ca, tmp_path / "ids", KIOSK)
    second = client_identity(ca, tmp_path / "ids", KIOSK)
    cert_file, key_file = tmp_path / "kiosk.pem", tmp_path / "kiosk.key"
    cert_file.write_bytes(first.certificate.read_bytes())
    key_file.write_bytes(first.key.read_bytes())
    seen: list[int] = []
    server = _serve_tls_once_per_request(ca, seen)
    blobs = HttpsBlobs(
        OfficeLinkSection(
            https_url=f"https://127.0.0.1:{server.server_address[1]}",
            ca_file=ca.dir / CA_CERTIFICATE,
            cert_file=cert_file,
            key_file=key_file,
        )
    )
    try:
        blobs.fetch("a" * 64)
        cert_file.write_bytes(second.certificate.read_bytes())
        key_file.write_bytes(second.key.read_bytes())
        blobs.reload_certificate()
        blobs.fetch("b" * 64)
    finally:
        blobs.close()
        server.shutdown()

    assert seen == [serial(first.certificate), serial(second.certificate)]


def _serve_tls_once_per_request(
    ca: KioskCa, seen: list[int]
) -> socketserver.ThreadingTCPServer:
    """Serve HTTPS needing a client certificate; note each client's serial."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(ca.dir / BROKER_CERTIFICATE, ca.dir / BROKER_KEY)
    context.load_verify_locations(ca.dir / CA_CERTIFICATE)
    context.verify_mode = ssl.CERT_REQUIRED

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            der = self.connection.getpeercert(binary_form=True)
            assert der is not None
            seen.append(x509.load_der_x509_certificate(der).serial_number)
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
            self.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            )

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True

        def get_request(self) -> tuple[Any, Any]:
            sock, address = super().get_request()
            return context.wrap_socket(sock, server_side=True), address

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
