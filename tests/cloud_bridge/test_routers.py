"""The bridge app with every part's routes: who may see the fleet pages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from cloud_bridge.config import BridgeConfig
from cloud_bridge.context import Bridge
from cloud_bridge.http.app import create_app
from cloud_bridge.http.routers import bridge_routers
from tests.cloud_bridge.consoles import add_account, login


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
