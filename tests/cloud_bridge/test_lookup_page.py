"""The public lookup page: verification with the code, consent, guessing limits."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from cloud_bridge.config import BridgeConfig
from cloud_bridge.context import Bridge
from cloud_bridge.copies import IssuedCopy, Officer
from cloud_bridge.http.app import create_app
from cloud_bridge.trust_services import RunningTrustServices
from tests.cloud_bridge.consoles import add_request


@pytest.fixture
def bridge(
    bridge_config: BridgeConfig, trust_services: RunningTrustServices
) -> Iterator[Bridge]:
    """A bridge with small limits: 3 guesses a minute, 2 kB uploads."""
    data = bridge_config.model_dump()
    data["lookup"] = {"attempts_per_minute": 3}
    data["http"] = {**data["http"], "max_upload_bytes": 2000}
    bridge = Bridge(BridgeConfig.model_validate(data))
    yield bridge
    bridge.close()


@pytest.fixture
def issued(bridge: Bridge) -> IssuedCopy:
    """One issued copy."""
    request = add_request(bridge, citizen_name="Phạm Minh Đức")
    return bridge.copies.certify(request.request_id, Officer("Lê Văn An", "Công chức"))


def test_code_opens_the_copy_with_its_verification(
    bridge: Bridge, issued: IssuedCopy
) -> None:
    client = TestClient(create_app(bridge))

    page = client.post(
        f"/c/{issued.copy_id}?lang=en", data={"access_code": issued.access_code}
    )

    assert page.status_code == 200
    assert 'id="verification"' in page.text
    assert "The digital signature is valid." in page.text
    assert "Download the copy (PDF)" in page.text
    assert "Phạm Minh Đức" not in page.text


def test_citizen_creates_a_consent_code(bridge: Bridge, issued: IssuedCopy) -> None:
    client = TestClient(create_app(bridge))

    page = client.post(
        f"/c/{issued.copy_id}/consent", data={"access_code": issued.access_code}
    )

    assert page.status_code == 200
    assert re.search(r'id="consent-token">[A-Z0-9]{4}-', page.text)


def test_guessing_codes_is_slowed_down_with_a_clear_message(
    bridge: Bridge, issued: IssuedCopy
) -> None:
    client = TestClient(create_app(bridge))
    url = f"/c/{issued.copy_id}"

    answers = [client.post(url, data={"access_code": "WRONG-CODE"}) for _ in range(3)]
    blocked = client.post(url, data={"access_code": issued.access_code})

    assert [answer.status_code for answer in answers] == [403, 403, 403]
    assert blocked.status_code == 429
    assert "quá nhiều lần" in blocked.text
    assert "Too many attempts" in blocked.text
    assert blocked.headers["retry-after"]


def test_guessing_identifiers_is_slowed_down(bridge: Bridge) -> None:
    client = TestClient(create_app(bridge))

    answers = [client.get(f"/c/UNKNOWN{n}") for n in range(4)]

    assert [answer.status_code for answer in answers] == [404, 404, 404, 429]


def test_oversized_upload_is_refused(bridge: Bridge) -> None:
    client = TestClient(create_app(bridge))

    form = client.post(
        "/verify", files={"file": ("big.pdf", b"%PDF" + b"0" * 5000, "application/pdf")}
    )
    api = client.post("/api/v1/verify", content=b"0" * 5000)

    assert form.status_code == 413
    assert "quá lớn" in form.text
    assert api.status_code == 413


def test_guessing_is_limited_across_two_instances(bridge: Bridge) -> None:
    other = Bridge(bridge.config)  # a second instance on the same database
    apps = [TestClient(create_app(bridge)), TestClient(create_app(other))]

    answers = [apps[n % 2].get(f"/c/UNKNOWN{n}") for n in range(4)]

    assert [answer.status_code for answer in answers] == [404, 404, 404, 429]
    other.close()
