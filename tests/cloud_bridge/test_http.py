"""The bridge's HTTP app: lookup by identifier and code, verification upload."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from cloud_bridge.context import Bridge
from cloud_bridge.copies import CopyRequest, IssuedCopy, Officer
from cloud_bridge.http.app import create_app
from tests.cloud_bridge.samples import jpeg_bytes, scan_page


@pytest.fixture
def issued(bridge: Bridge) -> IssuedCopy:
    """One issued copy."""
    return bridge.copies.make_copy(
        [jpeg_bytes(scan_page(seed=5))],
        CopyRequest(
            document_type="diploma",
            citizen_name="Phạm Minh Đức",
            citizen_id_number="001085000123",
            page_count=1,
            office_code=bridge.config.office_code,
        ),
        Officer("Nguyễn Thị Hương", "Công chức Tư pháp - Hộ tịch"),
    )


@pytest.fixture
def client(bridge: Bridge) -> TestClient:
    """A client for the app over ``bridge``."""
    return TestClient(create_app(bridge))


def test_lookup_page_shows_status_but_nothing_personal(
    client: TestClient, issued: IssuedCopy
) -> None:
    response = client.get(f"/c/{issued.copy_id}")

    assert response.status_code == 200
    assert "còn hiệu lực" in response.text
    assert 'role="status"' in response.text
    assert "Phạm Minh Đức" not in response.text
    assert "Số chứng thực" not in response.text


def test_qr_address_in_upper_case_is_served(
    client: TestClient, issued: IssuedCopy
) -> None:
    response = client.get(f"/C/{issued.copy_id}?lang=en")

    assert response.status_code == 200
    assert "This copy is valid." in response.text


def test_wrong_access_code_is_refused(client: TestClient, issued: IssuedCopy) -> None:
    response = client.post(f"/c/{issued.copy_id}", data={"access_code": "AAAA-AAAA"})

    assert response.status_code == 403
    assert "Mã truy cập không đúng" in response.text


def test_right_access_code_opens_the_copy(
    client: TestClient, issued: IssuedCopy
) -> None:
    page = client.post(f"/c/{issued.copy_id}", data={"access_code": issued.access_code})
    pdf = client.post(
        f"/c/{issued.copy_id}/pdf", data={"access_code": issued.access_code}
    )

    assert page.status_code == 200
    assert issued.record.book in page.text
    assert pdf.status_code == 200
    assert pdf.content == issued.pdf


def test_json_lookup_needs_the_code(client: TestClient, issued: IssuedCopy) -> None:
    url = f"/api/v1/copies/{issued.copy_id}/lookup"
    refused = client.post(url, json={"access_code": "ZZZZ-ZZZZ"})
    granted = client.post(url, json={"access_code": issued.access_code.lower()})

    assert refused.status_code == 404
    assert granted.status_code == 200
    assert granted.json()["cert_number"] == issued.record.cert_number
    assert granted.json()["status"] == "valid"


def test_unknown_identifier_and_wrong_code_look_the_same(
    client: TestClient, issued: IssuedCopy
) -> None:
    url = "/api/v1/copies/{}/lookup"
    unknown = client.post(
        url.format("K7QF-2M9X-R4TD-W8ZN"), json={"access_code": "A" * 8}
    )
    wrong = client.post(url.format(issued.copy_id), json={"access_code": "A" * 8})

    assert unknown.status_code == wrong.status_code == 404
    assert unknown.json() == wrong.json()


def test_verify_upload_valid_then_revoked(
    client: TestClient, bridge: Bridge, issued: IssuedCopy
) -> None:
    before = client.post("/api/v1/verify", content=issued.pdf)
    bridge.copies.revoke(issued.copy_id, "cấp nhầm", "supervisor")
    after = client.post("/api/v1/verify", content=issued.pdf)
    status = client.get(
        f"/api/v1/copies/{issued.copy_id}/status",
        params={"sha256": after.json()["file_sha256"]},
    )

    assert before.json()["valid"] is True
    assert before.json()["level"] == "B-LTA"
    assert after.json()["valid"] is False
    assert after.json()["status"] == "revoked"
    assert status.json()["revoked"] is True
    assert status.json()["archive_match"] is True


def test_verify_page_upload(client: TestClient, issued: IssuedCopy) -> None:
    response = client.post(
        "/verify", files={"file": ("copy.pdf", issued.pdf, "application/pdf")}
    )

    assert response.status_code == 200
    assert "Bản sao hợp lệ." in response.text


def test_not_a_pdf_gets_a_clear_answer(client: TestClient) -> None:
    response = client.post("/api/v1/verify", content=b"GIF89a not a pdf")

    assert response.status_code == 200
    assert response.json()["valid"] is False
    assert "not a PDF" in response.json()["problems"][0]


def test_oversized_upload_is_refused(bridge: Bridge) -> None:
    http = bridge.config.http.model_copy(update={"max_upload_bytes": 1000})
    small = Bridge(bridge.config.model_copy(update={"http": http}))
    client = TestClient(create_app(small))

    response = client.post("/api/v1/verify", content=b"%PDF-" + b"0" * 2000)

    assert response.status_code == 413
    small.close()


def test_trust_list_is_published(client: TestClient) -> None:
    response = client.get("/trust-list.json")

    assert response.status_code == 200
    assert response.json()["keys"][0]["office_code"] == "PHUONG-MAU"
