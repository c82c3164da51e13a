"""The review queue, request page, approval, rejection and review timing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from cloud_bridge.audit import recent, verify_chain
from cloud_bridge.console.tables import review_times
from cloud_bridge.context import Bridge
from cloud_bridge.decisions import mark_published, pending_decisions
from cloud_bridge.http.app import create_app
from tests.cloud_bridge.consoles import (
    CLEAN_METADATA,
    add_account,
    add_request,
    csrf_of,
    login,
)

HOSTILE_NAME = '<script>alert("x")</script><b>Đức</b>'


@pytest.fixture
def officer_client(bridge: Bridge) -> TestClient:
    """A client logged in as an officer named Nguyễn Thị Hương."""
    client = TestClient(create_app(bridge))
    login(client, add_account(bridge, "officer", "Nguyễn Thị Hương"))
    return client


def test_queue_lists_the_longest_waiting_first(
    bridge: Bridge, officer_client: TestClient
) -> None:
    first = add_request(bridge, citizen_name="Người Thứ Nhất")
    second = add_request(bridge, citizen_name="Người Thứ Hai", metadata={})

    items = officer_client.get("/console/queue.json").json()["items"]

    assert [item["request_id"] for item in items] == [
        first.request_id,
        second.request_id,
    ]
    assert [item["clean"] for item in items] == [True, False]


def test_citizen_name_with_markup_is_shown_inert(
    bridge: Bridge, officer_client: TestClient
) -> None:
    request = add_request(bridge, citizen_name=HOSTILE_NAME)

    page = officer_client.get(f"/console/requests/{request.request_id}")
    queue = officer_client.get("/console/queue")

    assert page.status_code == 200
    assert HOSTILE_NAME not in page.text
    assert "&lt;script&gt;alert(" in page.text
    assert "<script>alert" not in queue.text


def test_request_page_shows_findings_and_full_id_to_officers(
    bridge: Bridge, officer_client: TestClient
) -> None:
    metadata = {
        **CLEAN_METADATA,
        "mismatches": [{"field": "full_name", "id_card": "A", "document": "B"}],
        "liveness": {"passed": False},
    }
    request = add_request(bridge, metadata=metadata)

    page = officer_client.get(f"/console/requests/{request.request_id}")
    image = officer_client.get(f"/console/requests/{request.request_id}/pages/1")

    assert "001085000123" in page.text
    assert "Không khớp: Trường: Họ và tên; Trên căn cước: A" in page.text
    assert "KHÔNG ĐẠT" in page.text
    assert "62%" in page.text  # low-confidence field shown with its confidence
    assert "2.000 đ" in page.text
    assert image.headers["content-type"] == "image/jpeg"
    actions = [entry.action for entry in recent(bridge.store.engine)]
    assert "request.view" in actions
    assert "request.page" in actions


def test_approval_signs_in_the_officers_name_and_tells_the_kiosk(
    bridge: Bridge, officer_client: TestClient
) -> None:
    request = add_request(bridge)
    page = officer_client.get(f"/console/requests/{request.request_id}")

    answer = officer_client.post(
        f"/console/requests/{request.request_id}/approve",
        data={"csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )

    assert answer.status_code == 303
    copy = bridge.store.find_copy_by_request(request.request_id)
    assert copy is not None and copy.issued
    assert copy.officer_name == "Nguyễn Thị Hương"
    outbox = pending_decisions(bridge.store.engine)
    assert [(d.decision, d.copy_id) for d in outbox] == [("approved", copy.copy_id)]
    assert outbox[0].payload["access_code"]
    mark_published(bridge.store.engine, [outbox[0].outbox_id])
    assert pending_decisions(bridge.store.engine) == []
    with bridge.store.engine.connect() as connection:
        seconds = connection.execute(sa.select(review_times.c.seconds)).scalar()
    assert seconds is not None and seconds >= 0
    assert verify_chain(bridge.store.engine).ok


def test_rejection_with_a_written_reason(
    bridge: Bridge, officer_client: TestClient
) -> None:
    request = add_request(bridge)
    page = officer_client.get(f"/console/requests/{request.request_id}")

    officer_client.post(
        f"/console/requests/{request.request_id}/reject",
        data={
            "csrf_token": csrf_of(page.text),
            "reason": bridge.config.console.reject_reasons[0],
            "custom_reason": "Trang 2 bị che khuất.",
        },
    )

    stored = bridge.store.get_request(request.request_id)
    assert stored.state == "rejected"
    assert stored.decision_reason == "Trang 2 bị che khuất."
    outbox = pending_decisions(bridge.store.engine)
    assert outbox[0].payload == {
        "request_id": request.request_id,
        "decision": "rejected",
        "reason": "Trang 2 bị che khuất.",
    }


def test_batch_approval_takes_only_clean_requests(
    bridge: Bridge, officer_client: TestClient
) -> None:
    clean = add_request(bridge)
    unclean = add_request(bridge, metadata={**CLEAN_METADATA, "quality": ["blur"]})
    csrf = csrf_of(officer_client.get("/console/queue").text)

    answer = officer_client.post(
        "/console/approve-batch",
        data={"csrf_token": csrf, "request_id": [clean.request_id, unclean.request_id]},
    )

    assert answer.status_code == 200
    assert bridge.store.get_request(clean.request_id).state == "approved"
    assert bridge.store.get_request(unclean.request_id).state == "pending"
    assert "Đã duyệt 1" in answer.text


def test_supervisor_page_shows_the_median_review_time(bridge: Bridge) -> None:
    supervisor = TestClient(create_app(bridge))
    login(supervisor, add_account(bridge, "supervisor"))
    officer = TestClient(create_app(bridge))
    login(officer, add_account(bridge, "officer"))
    request = add_request(bridge)
    page = officer.get(f"/console/requests/{request.request_id}")
    officer.post(
        f"/console/requests/{request.request_id}/reject",
        data={"csrf_token": csrf_of(page.text), "reason": "Ảnh mờ"},
    )

    answer = supervisor.get("/console/supervisor")

    assert answer.status_code == 200
    assert 'id="median">—' not in answer.text
    assert " s</dd>" in answer.text


def test_every_view_of_citizen_data_is_in_the_audit_log(bridge: Bridge) -> None:
    client = TestClient(create_app(bridge))
    officer = add_account(bridge, "officer", "Nguyễn Thị Hương")
    login(client, officer)
    first = add_request(bridge, citizen_name="Người Thứ Nhất")

    client.get("/console/queue")
    client.get("/console/queue.json")  # a refresh showing the same list
    second = add_request(bridge, citizen_name="Người Thứ Hai")
    client.get("/console/queue.json")  # the list changed
    client.get(f"/console/requests/{first.request_id}")
    client.get(f"/console/requests/{first.request_id}/pages/1")

    entries = [e for e in reversed(recent(bridge.store.engine)) if e.seq > 2]
    views = [(e.actor, e.action, e.subject) for e in entries]
    assert views == [
        (officer.username, "queue.view", "list"),
        (officer.username, "queue.view", "list"),
        (officer.username, "request.view", first.request_id),
        (officer.username, "request.page", first.request_id),
    ]
    assert first.request_id in entries[0].detail
    assert second.request_id not in entries[0].detail
    assert second.request_id in entries[1].detail
    assert '"page": 1' in entries[3].detail
    assert all(entry.at for entry in entries)
    assert verify_chain(bridge.store.engine).ok


def test_request_page_names_fields_in_vietnamese_and_english(
    bridge: Bridge, officer_client: TestClient
) -> None:
    metadata = {
        **CLEAN_METADATA,
        "fields": {**CLEAN_METADATA["fields"], "new_kiosk_field": "x"},
        "delivery": {"email": "duc@example.vn", "attach_pdf": True},
    }
    request = add_request(bridge, metadata=metadata)
    url = f"/console/requests/{request.request_id}"

    vietnamese = officer_client.get(url).text
    english = officer_client.get(url + "?lang=en").text

    assert ">Họ và tên<" in vietnamese
    assert ">Số hiệu giấy tờ<" in vietnamese
    assert ">new kiosk field<" in vietnamese
    assert "full_name" not in vietnamese and "document_number" not in vietnamese
    assert "<dt>Đính kèm PDF</dt><dd>Có</dd>" in vietnamese
    assert ">Full name<" in english
    assert ">Document number<" in english
