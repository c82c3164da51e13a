"""Enrollment end to end: token, CSR, certificate, then the real broker."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloud_bridge.config import BridgeConfig
from cloud_bridge.fleet.service import Fleet
from cloud_bridge.fleet.web import fleet_router
from provisioning.enroll import kiosk_id_from_token, provision, renew, renew_if_due
from provisioning.errors import EnrollmentRefusedError, ProvisioningError
from provisioning.identity import load_identity
from tests.broker import Identity, RunningBroker, start_broker, try_connect

BRIDGE = "http://bridge.test"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RunningBroker]:
    """A private Mosquitto with the fleet configuration."""
    running = start_broker(tmp_path)
    yield running
    running.stop()


@pytest.fixture
def fleet(tmp_path: Path, broker: RunningBroker) -> Iterator[Fleet]:
    """The bridge's fleet side on SQLite, using the broker's kiosk CA."""
    config = BridgeConfig.model_validate(
        {
            "data_dir": str(tmp_path / "bridge"),
            "database": {"url": f"sqlite:///{tmp_path / 'bridge.db'}"},
            "fleet": {
                "ca_dir": str(broker.ca_dir),
                "broker_port": broker.port,
                "api_token": "test-fleet-token",
            },
        }
    )
    opened = Fleet(config)
    yield opened
    opened.close()


@pytest.fixture
def http(fleet: Fleet) -> Iterator[TestClient]:
    """An HTTP client talking to an app with the fleet router."""
    app = FastAPI()
    app.include_router(fleet_router(fleet))
    with TestClient(app, base_url=BRIDGE) as client:
        yield client


def identity_of(directory: Path) -> Identity:
    """The broker-test view of a provisioned kiosk's files."""
    kiosk = load_identity(directory)
    return Identity(
        kiosk.kiosk_id, kiosk.certificate_path, kiosk.key_path, kiosk.ca_path
    )


def test_enrolled_kiosk_connects_and_key_stays_home(
    fleet: Fleet, http: TestClient, broker: RunningBroker, tmp_path: Path
) -> None:
    token = fleet.registry.create_token("kiosk-101", timedelta(hours=1))
    identity = provision(tmp_path / "kiosk", BRIDGE, token, http)

    assert identity.kiosk_id == "kiosk-101"
    assert identity.broker_port == broker.port
    assert (identity.key_path.stat().st_mode & 0o777) == 0o600
    key_pem = identity.key_path.read_bytes()
    assert b"PRIVATE KEY" in key_pem
    assert fleet.registry.kiosk("kiosk-101").certificate_expires_at is not None
    assert identity.expires_at() - identity.certificate().not_valid_before_utc > (
        timedelta(days=29)
    )
    assert try_connect(broker, identity_of(tmp_path / "kiosk"))


def test_token_is_one_time(fleet: Fleet, http: TestClient, tmp_path: Path) -> None:
    token = fleet.registry.create_token("kiosk-102", timedelta(hours=1))
    provision(tmp_path / "a", BRIDGE, token, http)
    with pytest.raises(EnrollmentRefusedError, match="403"):
        provision(tmp_path / "b", BRIDGE, token, http)


def test_forged_and_malformed_tokens_are_refused(
    fleet: Fleet, http: TestClient, tmp_path: Path
) -> None:
    fleet.registry.create_token("kiosk-103", timedelta(hours=1))
    with pytest.raises(EnrollmentRefusedError):
        provision(tmp_path / "a", BRIDGE, "kiosk-103." + "A" * 32, http)
    with pytest.raises(ProvisioningError):
        kiosk_id_from_token("NOT A TOKEN")


def test_renewal_replaces_key_and_certificate(
    fleet: Fleet, http: TestClient, broker: RunningBroker, tmp_path: Path
) -> None:
    token = fleet.registry.create_token("kiosk-104", timedelta(hours=1))
    first = provision(tmp_path / "k", BRIDGE, token, http)
    old_serial = first.certificate().serial_number
    old_key = first.key_path.read_bytes()

    assert renew_if_due(tmp_path / "k", timedelta(days=1), http) is None
    renewed = renew_if_due(tmp_path / "k", timedelta(days=40), http)

    assert renewed is not None
    assert renewed.certificate().serial_number != old_serial
    assert renewed.key_path.read_bytes() != old_key
    assert try_connect(broker, identity_of(tmp_path / "k"))


def test_renewal_needs_the_current_key(
    fleet: Fleet, http: TestClient, tmp_path: Path
) -> None:
    token = fleet.registry.create_token("kiosk-105", timedelta(hours=1))
    identity = provision(tmp_path / "k", BRIDGE, token, http)
    body = {
        "certificate_pem": identity.certificate_path.read_text(),
        "csr_pem": identity.certificate_path.read_text(),
        "proof": base64.b64encode(b"x" * 64).decode(),
    }
    answer = http.post(f"{BRIDGE}/fleet/renew", json=body)
    assert answer.status_code == 403


def test_revoked_kiosk_is_refused_by_broker_and_bridge(
    fleet: Fleet, http: TestClient, broker: RunningBroker, tmp_path: Path
) -> None:
    token = fleet.registry.create_token("kiosk-106", timedelta(hours=1))
    identity = provision(tmp_path / "k", BRIDGE, token, http)
    assert try_connect(broker, identity_of(tmp_path / "k"))

    fleet.enrollment.revoke("kiosk-106")
    broker.reload()

    assert not try_connect(broker, identity_of(tmp_path / "k"))
    with pytest.raises(EnrollmentRefusedError, match="revoked"):
        renew(identity, http)
    crl = http.get(f"{BRIDGE}/fleet/crl.pem")
    assert crl.status_code == 200
    from cryptography import x509

    loaded = x509.load_pem_x509_crl(crl.content)
    serial = identity.certificate().serial_number
    assert loaded.get_revoked_certificate_by_serial_number(serial) is not None
