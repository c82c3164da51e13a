"""The bridge app with every part's routes: who may see the fleet pages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from pydantic import SecretStr

from cloud_bridge.config import BridgeConfig
from cloud_bridge.context import Bridge
from cloud_bridge.fleet.service import Fleet
from cloud_bridge.http.app import create_app
from cloud_bridge.http.routers import bridge_routers
from tests.cloud_bridge.consoles import add_account, csrf_of, login


@pytest.fixture
def bridge(bridge_config: BridgeConfig) -> Iterator[Bridge]:
    """A bridge whose fleet pages also accept an API token."""
    fleet = bridge_config.fleet.model_copy(update={"api_token": SecretStr("t0ken")})
    bridge = Bridge(bridge_config.model_copy(update={"fleet": fleet}))
    yield bridge
    bridge.close()


def app_client(bridge: Bridge) -> TestClient:
    """A client of the full app."""
    return TestClient(create_app(bridge, routers=bridge_routers(bridge)))


def test_fleet_manager_signed_in_to_the_console_sees_the_fleet(bridge: Bridge) -> None:
    client = app_client(bridge)
    login(client, add_account(bridge, "fleet_manager"))

    redirected = client.get("/console/fleet", follow_redirects=False)
    page = client.get("/fleet/")

    assert redirected.headers["location"] == "/fleet/"
    assert page.status_code == 200
    assert "fleet.css" in page.text
    assert client.get("/fleet/static/fleet.css").status_code == 200


def test_an_officer_does_not_see_the_fleet(bridge: Bridge) -> None:
    client = app_client(bridge)
    login(client, add_account(bridge, "officer"))

    assert client.get("/fleet/").status_code == 401


def test_metrics_take_the_api_token(bridge: Bridge) -> None:
    client = app_client(bridge)

    refused = client.get("/metrics")
    granted = client.get("/metrics", headers={"Authorization": "Bearer t0ken"})

    assert refused.status_code == 401
    assert granted.status_code == 200
    assert "# TYPE" in granted.text


def test_fleet_commands_need_the_session_csrf_token(bridge: Bridge) -> None:
    fleet = Fleet(bridge.config)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = fleet.ca.issue_for_key("kiosk-csrf-01", key.public_key(), timedelta(days=1))
    fleet.registry.record_certificate("kiosk-csrf-01", cert)
    client = app_client(bridge)
    login(client, add_account(bridge, "fleet_manager"))
    csrf = csrf_of(client.get("/fleet/kiosks/kiosk-csrf-01").text)
    url = "/fleet/kiosks/kiosk-nowhere-01/commands"

    missing = client.post(url, data={"name": "ping"}, follow_redirects=False)
    wrong = client.post(
        url, data={"name": "ping", "csrf_token": "x" * 43}, follow_redirects=False
    )
    # with the token the command goes on and meets the unknown kiosk
    right = client.post(
        url, data={"name": "ping", "csrf_token": csrf}, follow_redirects=False
    )

    assert (missing.status_code, wrong.status_code) == (403, 403)
    assert "reload" in missing.json()["detail"]
    assert right.status_code == 404


def test_the_api_token_sends_commands_without_a_csrf_token(bridge: Bridge) -> None:
    client = app_client(bridge)

    sent = client.post(
        "/fleet/kiosks/kiosk-nowhere-01/commands",
        data={"name": "ping"},
        headers={"Authorization": "Bearer t0ken"},
        follow_redirects=False,
    )

    assert sent.status_code == 404  # past the checks, at the unknown kiosk
