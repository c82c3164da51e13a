"""Fixtures for the update tests: a signed repository, a bridge, a kiosk."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloud_bridge.ota_routes import create_ota_router
from cloud_bridge.store import migrations
from cloud_bridge.store.engine import create_store_engine
from models.manifest import ModelEntry
from ota.bundle import BundleConfig, build_bundle
from ota.client import UpdateClient
from ota.config import OtaClientSection, OtaRepositorySection
from ota.director import Director
from ota.health import ModelHealthCheck
from ota.publish import publish_bundle
from ota.repository import UpdateRepository, init_repository
from protocol.updates import InstallReport
from tests.cloud_bridge.conftest import (  # noqa: F401  (fixtures)
    _session_token,
    bridge_base,
    bridge_config,
    hsm_token,
)

KIOSK = "kiosk-hn-001"
BASE = "http://bridge.test/ota/v1"


def model_files(
    directory: Path, version: str, sizes: tuple[int, ...] = (40_000, 3_000)
) -> list[ModelEntry]:
    """Write small data-file 'models' for ``version`` and return their entries."""
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for index, size in enumerate(sizes):
        name = f"model_{index}"
        data = (f"{version}-{index}-".encode() * size)[:size]
        file = f"{name}.bin"
        (directory / file).write_bytes(data)
        entries.append(
            ModelEntry(
                name=name,
                version=version,
                task="test data",
                runtime="none",
                file=file,
                sha256=hashlib.sha256(data).hexdigest(),
                size=size,
                package="test",
                member=file,
                licence="test",
                inputs=[],
                outputs=[],
            )
        )
    return entries


@dataclass
class Office:
    """The bridge side: repository, director and its HTTP app."""

    settings: OtaRepositorySection
    repository: UpdateRepository
    director: Director
    app: FastAPI
    root: Path
    work: Path

    def bundle(self, version: str, config: BundleConfig | None = None) -> Path:
        """Build a bundle of fresh test models for ``version``."""
        source = self.work / f"src-{version}"
        entries = model_files(source, version)
        out = self.work / f"bundle-{version}.tar"
        build_bundle(out, source, entries, version, config)
        return out

    def publish(
        self,
        version: str,
        cohort: int | None = None,
        kiosks: list[str] | None = None,
    ) -> str:
        """Publish a bundle of ``version``; return its target."""
        release = publish_bundle(
            self.repository,
            self.director,
            self.bundle(version),
            cohort=cohort,
            kiosks=kiosks,
        )
        return release.target


@dataclass
class Kiosk:
    """The kiosk side: its update client, settings and the reports it sent."""

    client: UpdateClient
    settings: OtaClientSection
    reports: list[InstallReport] = field(default_factory=list)
    busy: list[bool] = field(default_factory=lambda: [False])

    def model_bytes(self) -> dict[str, bytes]:
        """Return the running slot's model files, to show they are untouched."""
        models = self.client.slots.current_dir() / "models"
        return {path.name: path.read_bytes() for path in sorted(models.iterdir())}


def make_office(root: Path) -> Office:
    """Return a signed repository (targets threshold 2 of 2) and its bridge app."""
    settings = OtaRepositorySection(
        targets_keys=2,
        targets_threshold=2,
        min_reports=2,
        failure_threshold=0.3,
        rollout_stages=[10, 50, 100],
    )
    repository = init_repository(
        root / "repo", root / "root-keys", root / "keys", settings
    )
    engine = create_store_engine(f"sqlite:///{root / 'bridge.db'}")
    migrations.migrate(engine)
    director = Director(engine, settings)
    app = FastAPI()
    app.include_router(create_ota_router(root / "repo", director))
    work = root / "work"
    work.mkdir()
    return Office(settings, repository, director, app, root, work)


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Office]:
    """The office of the tests, with its own database."""
    made = make_office(tmp_path)
    yield made
    made.director.engine.dispose()


def make_kiosk(
    office: Office, home: Path, http: httpx.Client | None = None, kiosk_id: str = KIOSK
) -> Kiosk:
    """Return a kiosk seeded with version 1.0 that trusts ``office``'s root."""
    home.mkdir(parents=True, exist_ok=True)
    root = home / "trusted-root.json"
    root.write_bytes(office.repository.root_bytes())
    settings = OtaClientSection(
        ota_dir=home / "ota",
        trusted_root=root,
        base_url=BASE,
        probation_s=60,
        idle_poll_s=0.01,
        idle_wait_s=0.2,
        min_free_bytes=0,
    )
    kiosk = Kiosk(client=None, settings=settings)  # type: ignore[arg-type]
    kiosk.client = UpdateClient(
        kiosk_id,
        settings,
        http or TestClient(office.app, base_url="http://bridge.test"),
        health_check=ModelHealthCheck(settings),
        busy=lambda: kiosk.busy[0],
        reporter=kiosk.reports.append,
    )
    seed = model_files(home / "factory", "1.0")
    kiosk.client.seed(home / "factory", seed, "1.0")
    return kiosk


@pytest.fixture
def kiosk(office: Office, tmp_path: Path) -> Kiosk:
    """One kiosk running version 1.0."""
    return make_kiosk(office, tmp_path / "kiosk")
