"""The reuse API: client credentials, consent tokens, rate limits, audit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from cloud_bridge.audit import recent
from cloud_bridge.config import BridgeConfig
from cloud_bridge.context import Bridge
from cloud_bridge.copies import IssuedCopy, Officer
from cloud_bridge.http.app import create_app
from cloud_bridge.reuse.consents import create_consent
from cloud_bridge.reuse.credentials import NewClient, create_client
from cloud_bridge.trust_services import RunningTrustServices
from tests.cloud_bridge.consoles import add_request

TOKEN = "/api/reuse/v1/token"


@pytest.fixture
def bridge(
    bridge_config: BridgeConfig, trust_services: RunningTrustServices
) -> Iterator[Bridge]:
    """A bridge with its token and trust services."""
    bridge = Bridge(bridge_config)
    yield bridge
    bridge.close()


@pytest.fixture
def issued(bridge: Bridge) -> IssuedCopy:
    """One issued copy."""
    request = add_request(bridge)
    return bridge.copies.certify(request.request_id, Officer("Lê Văn An", "Công chức"))


@pytest.fixture
def service(bridge: Bridge) -> NewClient:
    """A registered public service allowed 5 requests a minute."""
    return create_client(bridge.store.engine, "Sở Giáo dục", 5)


def _bearer(client: TestClient, service: NewClient) -> dict[str, str]:
    answer = client.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": service.client.client_id,
            "client_secret": service.secret,
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "Bearer"
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_wrong_secret_gets_no_token(bridge: Bridge, service: NewClient) -> None:
    client = TestClient(create_app(bridge))

    answer = client.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": service.client.client_id,
            "client_secret": "guess",
        },
    )

    assert answer.status_code == 401


def test_copy_refused_without_consent_and_granted_with_it(
    bridge: Bridge, issued: IssuedCopy, service: NewClient
) -> None:
    client = TestClient(create_app(bridge))
    headers = _bearer(client, service)
    url = f"/api/reuse/v1/copies/{issued.copy_id}"
    consent = create_consent(bridge.store.engine, issued.copy_id, 30, "citizen")

    refused = client.get(url, headers=headers)
    forged = client.get(url, headers={**headers, "X-Consent-Token": "AAAA-BBBB"})
    unauthenticated = client.get(url, headers={"X-Consent-Token": consent})
    granted = client.get(url, headers={**headers, "X-Consent-Token": consent})
    pdf = client.get(url + "/pdf", headers={**headers, "X-Consent-Token": consent})

    assert refused.status_code == 403, refused.text
    assert "consent" in refused.json()["detail"]
    assert forged.status_code == 403
    assert unauthenticated.status_code == 401
    assert granted.status_code == 200
    assert granted.json()["cert_number"] == issued.record.cert_number
    assert pdf.content == issued.pdf
    actions = [entry.action for entry in recent(bridge.store.engine)]
    assert actions.count("reuse.refused") == 2
    assert "reuse.fetch" in actions and "reuse.pdf" in actions


def test_consent_is_bound_to_one_copy(
    bridge: Bridge, issued: IssuedCopy, service: NewClient
) -> None:
    client = TestClient(create_app(bridge))
    other = create_consent(bridge.store.engine, "OTHERCOPY", 30, "citizen")

    answer = client.get(
        f"/api/reuse/v1/copies/{issued.copy_id}",
        headers={**_bearer(client, service), "X-Consent-Token": other},
    )

    assert answer.status_code == 403


def test_verify_and_rate_limit(
    bridge: Bridge, issued: IssuedCopy, service: NewClient
) -> None:
    client = TestClient(create_app(bridge))
    headers = _bearer(client, service)

    verified = client.post("/api/reuse/v1/verify", content=issued.pdf, headers=headers)
    answers = [
        client.get(f"/api/reuse/v1/copies/{issued.copy_id}", headers=headers)
        for _ in range(5)
    ]

    assert verified.status_code == 200
    assert verified.json()["valid"] is True
    assert answers[-1].status_code == 429
    assert "Retry-After" in answers[-1].headers


def test_openapi_describes_the_reuse_api(bridge: Bridge) -> None:
    schema = TestClient(create_app(bridge)).get("/openapi.json").json()

    assert "/api/reuse/v1/token" in schema["paths"]
    assert "/api/reuse/v1/copies/{copy_id}" in schema["paths"]
    schemes = schema["components"]["securitySchemes"]
    assert any("clientCredentials" in s.get("flows", {}) for s in schemes.values())
