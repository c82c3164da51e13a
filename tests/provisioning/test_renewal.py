"""Scheduled renewal: when it renews, how it backs off, how it recovers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloud_bridge.config import BridgeConfig
from cloud_bridge.fleet.ca import ensure_kiosk_ca
from cloud_bridge.fleet.service import Fleet
from cloud_bridge.fleet.web import fleet_router
from provisioning.enroll import finish_renewal, provision, renew
from provisioning.errors import ProvisioningError
from provisioning.identity import KioskIdentity, load_identity
from provisioning.keys import FileKey
from provisioning.renewal import CertificateRenewer

BRIDGE = "http://bridge.test"


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """The bridge's fleet side on SQLite with its own kiosk CA."""
    ensure_kiosk_ca(tmp_path / "ca", ["127.0.0.1"])
    config = BridgeConfig.model_validate(
        {
            "data_dir": str(tmp_path / "bridge"),
            "database": {"url": f"sqlite:///{tmp_path / 'bridge.db'}"},
            "fleet": {"ca_dir": str(tmp_path / "ca")},
        }
    )
    opened = Fleet(config)
    yield opened
    opened.close()


@pytest.fixture
def http(fleet: Fleet) -> Iterator[TestClient]:
    """A client of an app with the fleet router."""
    app = FastAPI()
    app.include_router(fleet_router(fleet))
    with TestClient(app, base_url=BRIDGE) as client:
        yield client


def enrolled(fleet: Fleet, http: TestClient, directory: Path) -> KioskIdentity:
    """Enroll kiosk-501 into ``directory``."""
    token = fleet.registry.create_token("kiosk-501", timedelta(hours=1))
    return provision(directory, BRIDGE, token, http)


def test_renews_only_inside_the_window_and_announces_it(
    fleet: Fleet, http: TestClient, tmp_path: Path
) -> None:
    identity = enrolled(fleet, http, tmp_path / "k")
    first = identity.certificate().serial_number
    announced: list[KioskIdentity] = []
    renewer = CertificateRenewer(
        tmp_path / "k",
        http,
        before=timedelta(days=10),
        check_s=600,
        on_renewed=announced.append,
    )

    wait = renewer.run_once()
    assert wait == 600 and renewer.renewals == 0 and not announced

    renewer.clock = lambda: datetime.now(UTC) + timedelta(days=25)
    wait = renewer.run_once()

    assert renewer.renewals == 1 and len(announced) == 1
    assert load_identity(tmp_path / "k").certificate().serial_number != first
    assert 1 <= wait <= 600


def test_failed_renewals_back_off_up_to_the_cap(
    fleet: Fleet, http: TestClient, tmp_path: Path
) -> None:
    enrolled(fleet, http, tmp_path / "k")
    unreachable = httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(503))
    )
    renewer = CertificateRenewer(
        tmp_path / "k",
        unreachable,
        before=timedelta(days=40),
        retry_min_s=10,
        retry_max_s=60,
    )

    delays = [renewer.run_once() for _ in range(6)]

    assert renewer.failures == 6 and renewer.renewals == 0
    assert 5 <= delays[0] <= 10
    assert 10 <= delays[1] <= 20
    assert all(30 <= delay <= 60 for delay in delays[3:])

    renewer.http = http
    renewer.run_once()
    assert renewer.failures == 0 and renewer.renewals == 1


def test_a_renewal_cut_between_certificate_and_key_is_completed(
    fleet: Fleet, http: TestClient, tmp_path: Path
) -> None:
    identity = enrolled(fleet, http, tmp_path / "k")
    fresh = FileKey(identity.key_path).replace()
    cert = fleet.ca.issue(fresh.csr_pem("kiosk-501"), "kiosk-501")
    identity.certificate_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    assert finish_renewal(tmp_path / "k")

    key = FileKey(identity.key_path)
    assert key.public_key() == identity.certificate().public_key()
    assert not fresh.path.exists()
    assert not finish_renewal(tmp_path / "k")


def test_a_stale_new_key_is_discarded(
    fleet: Fleet, http: TestClient, tmp_path: Path
) -> None:
    identity = enrolled(fleet, http, tmp_path / "k")
    before = identity.key_path.read_bytes()
    fresh = FileKey(identity.key_path).replace()

    assert not finish_renewal(tmp_path / "k")
    assert not fresh.path.exists()
    assert identity.key_path.read_bytes() == before


def test_a_key_kept_in_place_is_certified_again(
    fleet: Fleet, http: TestClient, tmp_path: Path
) -> None:
    identity = enrolled(fleet, http, tmp_path / "k")
    first = identity.certificate()
    key_pem = identity.key_path.read_bytes()
    renewer = CertificateRenewer(
        tmp_path / "k",
        http,
        before=timedelta(days=10),
        open_key=lambda: nullcontext(FileKey(identity.key_path)),
    )

    renewed = renewer.renew_now(announce=False).certificate()

    assert renewed.serial_number != first.serial_number
    assert _spki(renewed.public_key()) == _spki(first.public_key())
    assert identity.key_path.read_bytes() == key_pem
    assert not identity.key_path.with_name("kiosk.key.new").exists()


def test_a_kept_key_that_is_not_the_certificates_is_refused(
    fleet: Fleet, http: TestClient, tmp_path: Path
) -> None:
    identity = enrolled(fleet, http, tmp_path / "k")
    serial = identity.certificate().serial_number
    stranger = FileKey(tmp_path / "other.key")

    with pytest.raises(ProvisioningError, match="not the key of the current"):
        renew(identity, http, stranger)

    assert identity.certificate().serial_number == serial


def _spki(key: object) -> bytes:
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
