"""The fleet manager's pages, JSON, /metrics, alerts and the fleet commands."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloud_bridge.config import BridgeConfig
from cloud_bridge.fleet.alerts import view
from cloud_bridge.fleet.cli import broker_config_command, fleet_group
from cloud_bridge.fleet.registry import Batch, KioskRecord
from cloud_bridge.fleet.service import Fleet
from cloud_bridge.fleet.web import fleet_router
from protocol.envelope import new_message
from protocol.telemetry import DeviceHealth, Health, Status

TOKEN = "fleet-test-token"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A bridge configuration file with a fleet token, on SQLite."""
    path = tmp_path / "bridge.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        "[database]\n"
        f'url = "sqlite:///{tmp_path / "bridge.db"}"\n'
        "[fleet]\n"
        f'api_token = "{TOKEN}"\n'
        'model_version = "2.0"\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def fleet(config_file: Path) -> Iterator[Fleet]:
    """A fleet with three kiosks in different conditions."""
    from cloud_bridge.config import load_bridge_config

    opened = Fleet(load_bridge_config(config_file))
    registry = opened.registry
    for kiosk_id in ("kiosk-ok1", "kiosk-paper", "kiosk-gone"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = opened.ca.issue_for_key(kiosk_id, key.public_key(), timedelta(days=30))
        registry.record_certificate(kiosk_id, cert)
    printer = DeviceHealth(state="failed", reason="paper out")
    batch = Batch(
        health=[
            new_message(
                Health,
                kiosk_id="kiosk-ok1",
                paper_percent=80.0,
                model_version="2.0",
                cpu_temp_c=50.0,
            ),
            new_message(
                Health,
                kiosk_id="kiosk-paper",
                devices={"printer": printer},
                model_version="1.0",
            ),
        ],
        statuses=[new_message(Status, kiosk_id="kiosk-gone", state="offline")],
    )
    registry.store(batch)
    yield opened
    opened.close()


@pytest.fixture
def http(fleet: Fleet) -> Iterator[TestClient]:
    """A client of an app with the fleet router."""
    app = FastAPI()
    app.include_router(fleet_router(fleet))
    with TestClient(app) as client:
        yield client


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_pages_need_the_token(http: TestClient) -> None:
    assert http.get("/fleet/").status_code == 401
    assert http.get("/metrics").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert http.get("/fleet/api/kiosks", headers=wrong).status_code == 401
    assert http.get("/fleet/", auth=("manager", TOKEN)).status_code == 200


def test_pages_are_off_without_a_configured_token(tmp_path: Path) -> None:
    config = BridgeConfig.model_validate(
        {"data_dir": str(tmp_path), "database": {"url": f"sqlite:///{tmp_path}/x.db"}}
    )
    app = FastAPI()
    app.include_router(fleet_router(Fleet(config)))
    with TestClient(app) as client:
        assert client.get("/fleet/", headers=AUTH).status_code == 503


def test_json_lists_states_and_alerts(http: TestClient) -> None:
    rows = {
        r["kiosk_id"]: r for r in http.get("/fleet/api/kiosks", headers=AUTH).json()
    }
    assert rows["kiosk-ok1"]["state"] == "online"
    assert rows["kiosk-ok1"]["alerts"] == []
    assert rows["kiosk-gone"]["state"] == "offline"
    assert "paper_out" in rows["kiosk-paper"]["alerts"]
    assert "device_failed" in rows["kiosk-paper"]["alerts"]
    assert "model_behind" in rows["kiosk-paper"]["alerts"]


def test_list_page_filters_and_sorts(http: TestClient) -> None:
    page = http.get("/fleet/?alert=paper_out", headers=AUTH).text
    assert "kiosk-paper" in page
    assert "kiosk-ok1" not in page
    offline = http.get("/fleet/?state=offline", headers=AUTH).text
    assert "kiosk-gone" in offline and "kiosk-paper" not in offline
    by_alerts = http.get("/fleet/?sort=alerts", headers=AUTH).text
    assert by_alerts.index("kiosk-paper") < by_alerts.index("kiosk-ok1")


def test_kiosk_page_has_charts_and_command_buttons(http: TestClient) -> None:
    page = http.get("/fleet/kiosks/kiosk-ok1", headers=AUTH).text
    assert "<svg" in page and "Paper (%)" in page
    assert 'value="restart_agent"' in page
    assert http.get("/fleet/kiosks/nobody", headers=AUTH).status_code == 404


def test_metrics_count_states_and_alerts(http: TestClient) -> None:
    text = http.get("/metrics", headers=AUTH).text
    assert 'kiosk_fleet_kiosks{state="online"} 2.0' in text
    assert 'kiosk_fleet_kiosks{state="offline"} 1.0' in text
    assert 'kiosk_fleet_alerts{alert="paper_out"} 1.0' in text


def test_certificate_expiring_and_outbox_alerts(fleet: Fleet) -> None:
    now = datetime.now(UTC)
    record = KioskRecord(
        "kiosk-x01",
        now,
        None,
        "online",
        now,
        "1",
        "2.0",
        {"outbox_depth": 10_000, "devices": {}},
        now + timedelta(days=1),
    )
    alerts = view(record, fleet.config.fleet, now).alerts
    assert "certificate_expiring" in alerts
    assert "outbox_growing" in alerts


def test_fleet_commands(config_file: Path, fleet: Fleet, tmp_path: Path) -> None:
    runner = CliRunner()
    token = runner.invoke(
        fleet_group, ["enroll-token", "kiosk-new", "--config", str(config_file)]
    )
    assert token.exit_code == 0, token.output
    assert token.output.startswith("kiosk-new.")
    listed = runner.invoke(fleet_group, ["ls", "--json", "--config", str(config_file)])
    assert {r["kiosk_id"] for r in json.loads(listed.output)} >= {"kiosk-ok1"}
    table = runner.invoke(fleet_group, ["ls", "--config", str(config_file)])
    assert "kiosk-paper" in table.output
    revoked = runner.invoke(
        fleet_group, ["revoke", "kiosk-ok1", "--config", str(config_file)]
    )
    assert revoked.exit_code == 0, revoked.output
    assert fleet.registry.kiosk("kiosk-ok1").revoked_at is not None
    unknown = runner.invoke(
        fleet_group, ["revoke", "nobody", "--config", str(config_file)]
    )
    assert unknown.exit_code != 0
    crl = runner.invoke(fleet_group, ["crl", "--config", str(config_file)])
    assert crl.exit_code == 0, crl.output
    assert "CRL written" in crl.output
    out = tmp_path / "broker"
    written = runner.invoke(
        broker_config_command, ["--config", str(config_file), "--out", str(out)]
    )
    assert written.exit_code == 0, written.output
    conf = (out / "mosquitto.conf").read_text()
    assert "require_certificate true" in conf
    assert "use_identity_as_username true" in conf
    assert "allow_anonymous false" in conf
    assert "crlfile" in conf
