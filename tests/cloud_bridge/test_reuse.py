"""The reuse API: client credentials, consent tokens, rate limits, audit."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from cloud_bridge.audit import recent
from cloud_bridge.config import BridgeConfig
from cloud_bridge.console.tables import rate_windows
from cloud_bridge.context import Bridge
from cloud_bridge.copies import IssuedCopy, Officer
from cloud_bridge.http.app import create_app
from cloud_bridge.ratelimit import SharedRateLimiter
from cloud_bridge.reuse.consents import create_consent
from cloud_bridge.reuse.credentials import NewClient, create_client
from cloud_bridge.store import CopyStore
from cloud_bridge.trust_services import RunningTrustServices
from tests.cloud_bridge.consoles import add_request

TOKEN = "/api/reuse/v1/token"


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


@pytest.mark.postgres
def test_rate_limit_is_shared_by_two_instances_on_postgresql(
    bridge_config: BridgeConfig,
    trust_services: RunningTrustServices,
    postgres_url: str,
) -> None:
    database = bridge_config.database.model_copy(update={"url": postgres_url})
    config = bridge_config.model_copy(update={"database": database})
    first, second = Bridge(config), Bridge(config)
    service = create_client(first.store.engine, "Sở Tư pháp", 4)
    apps = [TestClient(create_app(first)), TestClient(create_app(second))]
    headers = _bearer(apps[0], service)
    url = "/api/reuse/v1/copies/A0B1-0000-0000-0000"

    answers = [apps[n % 2].get(url, headers=headers) for n in range(6)]

    # Authenticated but without consent (403) until the shared limit of 4.
    assert [a.status_code for a in answers] == [403, 403, 403, 403, 429, 429]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    first.close()
    second.close()


def test_shared_limit_slides_with_the_clock(tmp_path: Path) -> None:
    store = CopyStore(f"sqlite:///{tmp_path / 'limits.db'}")
    store.migrate()
    now = [6000.0]  # the start of a 60 s window
    limiter = SharedRateLimiter(store.engine, "t", 3, 60.0, clock=lambda: now[0])

    first = [limiter.allow("k") for _ in range(4)]
    blocked_wait = limiter.retry_after("k")
    now[0] += 60  # next window: the previous one still weighs fully
    at_boundary = limiter.allow("k")
    now[0] += 30  # half of the previous window still counts: 1.5 < 3
    halfway = limiter.allow("k")
    other_key = limiter.allow("other")

    assert first == [True, True, True, False]
    assert blocked_wait == 60
    assert at_boundary is False
    assert halfway is True
    assert other_key is True
    assert limiter.blocked("k", limit=2)
    assert not limiter.blocked("k", limit=10)
    with store.engine.connect() as connection:
        keys = connection.execute(sa.select(rate_windows.c.key_hash)).scalars()
        assert all(len(key) == 64 and key != "k" for key in keys)
    store.close()


def test_old_rate_windows_are_pruned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cloud_bridge.ratelimit.PRUNE_EVERY", 1)
    store = CopyStore(f"sqlite:///{tmp_path / 'limits.db'}")
    store.migrate()
    now = [6000.0]
    limiter = SharedRateLimiter(store.engine, "t", 3, 60.0, clock=lambda: now[0])

    limiter.allow("a")
    now[0] += 60
    limiter.allow("b")
    now[0] += 120  # a's window and the one after it have passed
    limiter.allow("c")

    with store.engine.connect() as connection:
        windows = connection.execute(sa.select(rate_windows.c.window)).scalars()
        assert sorted(windows) == [101, 103]
    store.close()
