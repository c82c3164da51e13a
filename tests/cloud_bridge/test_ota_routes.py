"""Tests of the bridge's OTA routes: metadata, ranged targets, assignments, reports."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloud_bridge.config import BridgeConfig
from cloud_bridge.context import Bridge
from cloud_bridge.ota_routes import ota_router
from ota.bundle import build_bundle
from ota.director import Director
from ota.publish import publish_bundle
from ota.repository import init_repository, open_repository
from protocol.envelope import new_message
from protocol.updates import InstallReport
from tests.ota.conftest import model_files


def test_routes_serve_a_bridge_repository(tmp_path: Path) -> None:
    config = BridgeConfig(data_dir=tmp_path)
    settings = config.ota
    init_repository(
        config.path(settings.repo_dir),
        config.path(settings.root_key_dir),
        config.path(settings.key_dir),
        settings,
    )
    bridge = Bridge(config)
    try:
        app = FastAPI()
        app.include_router(ota_router(bridge))
        http = TestClient(app)
        repository = open_repository(
            config.path(settings.repo_dir), config.path(settings.key_dir), settings
        )
        director = Director(bridge.store.engine, settings)
        bundle = tmp_path / "b.tar"
        build_bundle(
            bundle, tmp_path / "src", model_files(tmp_path / "src", "2.0"), "2.0"
        )
        release = publish_bundle(repository, director, bundle, cohort=100)
        digest = repository.targets()[release.target].hashes["sha256"]

        root = http.get("/ota/v1/metadata/1.root.json")
        assert root.status_code == 200 and b'"_type":"root"' in root.content
        assert http.get("/ota/v1/metadata/..%2Fkeys.json").status_code == 404
        assert http.get("/ota/v1/metadata/secret.json").status_code == 404

        url = f"/ota/v1/targets/{digest}.{release.target}"
        whole = http.get(url)
        part = http.get(url, headers={"Range": "bytes=100-"})
        assert whole.status_code == 200
        assert part.status_code == 206 and part.content == whole.content[100:]
        assert http.get(f"/ota/v1/targets/{'0' * 64}.x.tar").status_code == 404

        answer = http.get("/ota/v1/kiosks/kiosk-hn-001/assignment").json()
        assert answer["target"] == release.target
        report = new_message(
            InstallReport,
            kiosk_id="kiosk-hn-001",
            target=release.target,
            state="installed",
            running_version="2.0",
        )
        sent = http.post(
            "/ota/v1/kiosks/kiosk-hn-001/reports", content=report.to_bytes()
        )
        assert sent.status_code == 204
        forged = http.post(
            "/ota/v1/kiosks/kiosk-hn-002/reports", content=report.to_bytes()
        )
        assert forged.status_code == 403
        assert (
            http.post("/ota/v1/kiosks/kiosk-hn-001/reports", content=b"{}").status_code
            == 422
        )
        assert [s.state for s in director.states()] == ["installed"]
    finally:
        bridge.close()
