"""The bridge's intake: requests over MQTT 5 with mutual TLS, pages over HTTPS."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from cloud_bridge.config import BridgeConfig
from cloud_bridge.intake.blobs import intake_router
from cloud_bridge.intake.service import IntakeService
from cloud_bridge.intake.tables import intake_requests
from protocol.envelope import new_message, parse_message
from protocol.requests import (
    CertificationRequest,
    Decision,
    Delivery,
    FaceResult,
    LivenessResult,
    RequestAck,
    schema_of,
)
from tests.cloud_bridge.samples import jpeg_bytes, scan_page
from tests.edge.stack import Office, Officer_

pytestmark = [pytest.mark.broker, pytest.mark.hsm]


@pytest.fixture
def office(
    tmp_path: Path, bridge_config: BridgeConfig, trust_services: object
) -> Iterator[Office]:
    built = Office(tmp_path, bridge_config)
    yield built
    built.close()


class FakeKiosk:
    """A kiosk's MQTT client speaking the protocol by hand."""

    def __init__(self, office: Office, kiosk_id: str) -> None:
        identity = office.ca.issue(kiosk_id)
        self.kiosk_id = kiosk_id
        self.messages: list[bytes] = []
        self.arrived = threading.Condition()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=kiosk_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.tls_set(
            str(office.ca.ca_file), str(identity.cert), str(identity.key)
        )
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", office.broker.port)
        self.client.subscribe(f"office/{kiosk_id}/decisions", qos=1)
        self.client.loop_start()

    def _on_message(self, client: object, userdata: object, message: object) -> None:
        with self.arrived:
            self.messages.append(bytes(message.payload))  # type: ignore[attr-defined]
            self.arrived.notify_all()

    def wait(self, count: int, timeout: float = 20.0) -> list[bytes]:
        with self.arrived:
            assert self.arrived.wait_for(
                lambda: len(self.messages) >= count, timeout
            ), self.messages
            return list(self.messages)

    def send(
        self, request: CertificationRequest, topic_kiosk: str | None = None
    ) -> int:
        topic = f"kiosk/{topic_kiosk or self.kiosk_id}/requests"
        info = self.client.publish(topic, request.to_bytes(), qos=1)
        info.wait_for_publish(5)
        return info.rc

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def make_request(
    kiosk_id: str, digests: list[str], **changes: object
) -> CertificationRequest:
    fields: dict[str, object] = {
        "request_id": hashlib.md5(
            str(digests).encode() + kiosk_id.encode()
        ).hexdigest(),
        "kiosk_id": kiosk_id,
        "sequence": 1,
        "office_code": "PHUONG-MAU",
        "document_type": "birth_certificate",
        "citizen_name": "Nguyễn Văn An",
        "citizen_id_masked": "001******345",
        "page_sha256": digests,
        "face": FaceResult(matched=True, score=0.97, tries=1),
        "liveness": LivenessResult(passed=True, challenge="blink"),
        "fee_vnd": 4000,
        "delivery": Delivery(email="an@example.vn", copies=1),
    }
    fields.update(changes)
    return new_message(CertificationRequest, **fields)


def upload_pages(office: Office, count: int) -> list[str]:
    app = FastAPI()
    app.include_router(intake_router(office.bridge))
    digests = []
    with TestClient(app) as client:
        for seed in range(count):
            data = jpeg_bytes(scan_page(seed=seed + 1))
            digest = hashlib.sha256(data).hexdigest()
            assert client.head(f"/api/v1/kiosk/blobs/{digest}").status_code == 404
            bad = client.put(f"/api/v1/kiosk/blobs/{digest}", content=data + b"x")
            assert bad.status_code == 400
            assert (
                client.put(f"/api/v1/kiosk/blobs/{digest}", content=data).status_code
                == 201
            )
            assert client.head(f"/api/v1/kiosk/blobs/{digest}").status_code == 200
            assert client.get(f"/api/v1/kiosk/blobs/{digest}").content == data
            digests.append(digest)
        assert client.get("/api/v1/kiosk/blobs/nothex").status_code == 400
    return digests


def test_request_is_stored_once_acknowledged_twice_and_decided(office: Office) -> None:
    kiosk = FakeKiosk(office, "kiosk-intake-01")
    digests = upload_pages(office, 2)
    request = make_request(kiosk.kiosk_id, digests)

    kiosk.send(request)
    kiosk.send(request)
    acks = [parse_message(RequestAck, m) for m in kiosk.wait(2)]
    assert all(ack.accepted and ack.request_id == request.request_id for ack in acks)
    assert acks[0].queue_position == 0
    stored = office.bridge.store.list_requests(state="pending")
    assert [r.request_id for r in stored] == [request.request_id]
    assert stored[0].citizen_id_number == "001******345"
    details = IntakeService(office.bridge).details(request.request_id)
    assert details is not None
    assert details["face"]["score"] == 0.97 and details["fee_vnd"] == 4000
    assert details["delivery"]["email"] == "an@example.vn"

    Officer_(office.bridge).decide(request.request_id)
    messages = kiosk.wait(3)
    decision = parse_message(Decision, messages[2])
    assert decision.approved and decision.copy_id and decision.access_code
    assert decision.pdf_sha256 is not None
    pdf = office.bridge.archive.get(decision.pdf_sha256)
    assert pdf.startswith(b"%PDF")
    kiosk.close()


def test_bad_requests_are_refused_or_dropped(office: Office) -> None:
    kiosk = FakeKiosk(office, "kiosk-intake-02")
    digests = upload_pages(office, 1)
    refused = make_request(kiosk.kiosk_id, digests, document_type="recipe")
    kiosk.send(refused)
    ack = parse_message(RequestAck, kiosk.wait(1)[0])
    assert not ack.accepted and "recipe" in (ack.reason or "")

    kiosk.client.publish(f"kiosk/{kiosk.kiosk_id}/requests", b"{not json", qos=1)
    other = make_request("kiosk-intake-99", digests)
    assert kiosk.send(other, topic_kiosk=kiosk.kiosk_id) == 0
    ack = parse_message(RequestAck, kiosk.wait(2)[1])
    assert not ack.accepted and "another kiosk" in (ack.reason or "")
    assert office.consumer.dropped >= 1
    assert office.bridge.store.list_requests() == []
    with office.bridge.store.engine.connect() as connection:
        assert connection.execute(intake_requests.select()).all() == []
    kiosk.close()


def test_a_kiosk_cannot_publish_for_another(office: Office) -> None:
    kiosk = FakeKiosk(office, "kiosk-intake-03")
    digests = upload_pages(office, 1)
    request = make_request("kiosk-intake-04", digests)
    kiosk.send(request, topic_kiosk="kiosk-intake-04")
    kiosk.send(make_request(kiosk.kiosk_id, digests))
    messages = kiosk.wait(1)
    assert schema_of(messages[0]) == "request_ack"
    assert parse_message(RequestAck, messages[0]).request_id != request.request_id
    assert [r.kiosk_id for r in office.bridge.store.list_requests()] == [kiosk.kiosk_id]
    kiosk.close()
