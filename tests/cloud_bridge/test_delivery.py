"""Delivery by email (a local aiosmtpd server) and by signed wallet webhook."""

from __future__ import annotations

import asyncio
import email
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

from cloud_bridge.config import BridgeConfig
from cloud_bridge.console.tables import delivery_leases
from cloud_bridge.context import Bridge
from cloud_bridge.copies import IssuedCopy, Officer
from cloud_bridge.delivery.leases import DeliveryLeases
from cloud_bridge.delivery.service import DeliveryService
from cloud_bridge.http.app import create_app
from cloud_bridge.store import RequestRecord
from cloud_bridge.trust_services import RunningTrustServices
from tests.cloud_bridge.consoles import CLEAN_METADATA, add_account, add_request, login
from tests.conftest import free_port

WALLET_SECRET = "test-wallet-secret"


class Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the message."""
        parsed = email.message_from_bytes(envelope.content, policy=default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    """A running SMTP server on 127.0.0.1 and its port."""
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


class FlakyWallet(BaseHTTPRequestHandler):
    """A wallet that fails twice, then accepts; it keeps what it was sent."""

    calls: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    accepted: ClassVar[dict[str, bytes]] = {}

    def do_POST(self) -> None:
        """Fail the first two posts with 503, accept the rest once per key."""
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).calls.append((dict(self.headers), body))
        if len(type(self).calls) <= 2:
            self.send_response(503)
        else:
            type(self).accepted.setdefault(self.headers["Idempotency-Key"], body)
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def wallet() -> Iterator[tuple[type[FlakyWallet], int]]:
    """The flaky wallet served on a free port."""
    FlakyWallet.calls = []
    FlakyWallet.accepted = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyWallet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield FlakyWallet, server.server_address[1]
    server.shutdown()
    server.server_close()


def _with_delivery(config: BridgeConfig, delivery: dict[str, Any]) -> BridgeConfig:
    return BridgeConfig.model_validate({**config.model_dump(), "delivery": delivery})


def _issue(
    config: BridgeConfig, delivery: dict[str, Any]
) -> tuple[Bridge, RequestRecord, IssuedCopy]:
    bridge = Bridge(config)
    request = add_request(bridge, metadata={**CLEAN_METADATA, "delivery": delivery})
    issued = bridge.copies.certify(
        request.request_id, Officer("Lê Văn An", "Công chức")
    )
    return bridge, request, issued


def test_email_carries_the_link_code_and_pdf(
    bridge_config: BridgeConfig,
    trust_services: RunningTrustServices,
    inbox: tuple[Inbox, int],
) -> None:
    handler, port = inbox
    config = _with_delivery(bridge_config, {"smtp": {"port": port}})
    bridge, request, issued = _issue(
        config, {"email": "duc@example.vn", "attach_pdf": True}
    )
    service = DeliveryService(config, bridge.store, bridge.archive)

    service.enqueue(request, issued.copy_id, issued.access_code)
    start = time.perf_counter()
    delivered = service.run_due()
    elapsed = time.perf_counter() - start
    print(f"email send time: {elapsed * 1000:.0f} ms")

    assert delivered == 1
    assert len(handler.messages) == 1
    message = handler.messages[0]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert config.copies.lookup_url + issued.copy_id in text
    assert issued.access_code in text
    assert "Mã truy cập" in text and "Access code" in text
    attachments = list(message.iter_attachments())
    assert attachments[0].get_content() == issued.pdf
    assert service.listing()[0].state == "delivered"
    bridge.close()


def test_wallet_failing_twice_receives_exactly_one_copy(
    bridge_config: BridgeConfig,
    trust_services: RunningTrustServices,
    wallet: tuple[type[FlakyWallet], int],
) -> None:
    endpoint, port = wallet
    wallet_settings = {"url": f"http://127.0.0.1:{port}/hook", "secret": WALLET_SECRET}
    config = _with_delivery(
        bridge_config, {"wallet": wallet_settings, "first_retry_s": 0.05}
    )
    bridge, request, issued = _issue(config, {"wallet": "ihanoi:0912345678"})
    service = DeliveryService(config, bridge.store, bridge.archive)
    service.enqueue(request, issued.copy_id, issued.access_code)
    service.enqueue(request, issued.copy_id, issued.access_code)  # no duplicate

    failed_seen = False
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not endpoint.accepted:
        service.run_due()
        failed_seen = failed_seen or bool(service.listing(failed_only=True))
        time.sleep(0.05)
    for _ in range(3):
        service.run_due()

    assert failed_seen
    assert len(endpoint.calls) == 3
    assert list(endpoint.accepted) == [issued.copy_id]
    bodies = {body for _, body in endpoint.calls}
    assert len(bodies) == 1
    headers, body = endpoint.calls[-1]
    expected = hmac.new(WALLET_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Signature"] == f"sha256={expected}"
    assert json.loads(body)["copy_id"] == issued.copy_id
    assert service.listing()[0].state == "delivered"
    bridge.close()


def test_failed_delivery_is_shown_in_the_console_and_kept(
    bridge_config: BridgeConfig, trust_services: RunningTrustServices
) -> None:
    wallet_settings = {
        "url": f"http://127.0.0.1:{free_port()}/hook",
        "secret": WALLET_SECRET,
        "timeout_s": 2,
    }
    config = _with_delivery(bridge_config, {"wallet": wallet_settings})
    bridge, request, issued = _issue(config, {"wallet": "ihanoi:0912345678"})
    service = DeliveryService(config, bridge.store, bridge.archive)
    service.enqueue(request, issued.copy_id, issued.access_code)
    client = TestClient(create_app(bridge, deliveries=service))
    login(client, add_account(bridge, "supervisor"))

    delivered = service.run_due()
    page = client.get("/console/deliveries")
    supervision = client.get("/console/supervisor")

    assert delivered == 0
    assert "Lỗi, sẽ thử lại" in page.text
    assert "unreachable" in page.text
    assert service.listing()[0].state == "pending"
    assert service.listing()[0].attempts == 1
    assert "Gửi bản sao đang lỗi</dt><dd>1</dd>" in supervision.text
    bridge.close()


class SlowInbox(Inbox):
    """An inbox that takes a moment per message, so two senders overlap."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the message after a short wait."""
        await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


def _copy_ids(messages: list[EmailMessage]) -> list[str]:
    return [str(message["Subject"]).rsplit(" ", 1)[-1] for message in messages]


@pytest.mark.postgres
def test_two_delivery_loops_on_postgresql_send_each_email_once(
    bridge_config: BridgeConfig,
    trust_services: RunningTrustServices,
    postgres_url: str,
) -> None:
    handler = SlowInbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    config = _with_delivery(bridge_config, {"smtp": {"port": port}})
    config = config.model_copy(
        update={"database": config.database.model_copy(update={"url": postgres_url})}
    )
    bridge = Bridge(config)
    services = [
        DeliveryService(config, bridge.store, bridge.archive, owner=f"loop-{n}")
        for n in range(2)
    ]
    issued_ids = []
    for number in range(6):
        request = add_request(
            bridge,
            metadata={**CLEAN_METADATA, "delivery": {"email": f"c{number}@example.vn"}},
        )
        issued = bridge.copies.certify(request.request_id, Officer("Lê Văn An", "CC"))
        services[0].enqueue(request, issued.copy_id, issued.access_code)
        issued_ids.append(issued.copy_id)
    counts = [0, 0]
    start = threading.Barrier(2)

    def loop(index: int) -> None:
        start.wait()
        for _ in range(5):
            counts[index] += services[index].run_due()

    threads = [threading.Thread(target=loop, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    controller.stop()

    assert sorted(_copy_ids(handler.messages)) == sorted(issued_ids)
    assert sum(counts) == 6
    assert all(item.state == "delivered" for item in services[0].listing())
    with bridge.store.engine.connect() as connection:
        leases = connection.execute(sa.select(delivery_leases)).all()
    assert leases == []
    bridge.close()


def test_a_crashed_senders_lease_expires_and_another_finishes(
    bridge_config: BridgeConfig,
    trust_services: RunningTrustServices,
    inbox: tuple[Inbox, int],
) -> None:
    handler, port = inbox
    config = _with_delivery(bridge_config, {"smtp": {"port": port}, "lease_s": 60})
    bridge, request, issued = _issue(config, {"email": "duc@example.vn"})
    now = [datetime.now(UTC)]
    crashed = DeliveryService(
        config, bridge.store, bridge.archive, clock=lambda: now[0], owner="crashed"
    )
    survivor = DeliveryService(
        config, bridge.store, bridge.archive, clock=lambda: now[0], owner="survivor"
    )
    crashed.enqueue(request, issued.copy_id, issued.access_code)
    leased = DeliveryLeases(bridge.store.engine, "crashed", 60)
    delivery_id = crashed.listing()[0].delivery_id
    assert leased.claim(delivery_id, now[0]) is not None  # then it "crashes"

    held = survivor.run_due()
    now[0] += timedelta(seconds=61)
    finished = survivor.run_due()

    assert held == 0
    assert finished == 1
    assert _copy_ids(handler.messages) == [issued.copy_id]
    assert survivor.listing()[0].state == "delivered"
    bridge.close()
