"""The health check on real model files: pass, slow model, damaged file."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from models.files import is_intact
from models.manifest import Manifest, load_manifest
from ota.bundle import BundleManifest
from ota.config import OtaClientSection
from ota.health import ModelHealthCheck

MODEL_DIR = Path(
    os.environ.get(
        "KIOSK_MODELS_DIR", Path(__file__).resolve().parents[2] / "var/models"
    )
)


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    """The packaged manifest, with its files fetched."""
    manifest = load_manifest()
    missing = [e.file for e in manifest.model if not is_intact(e, MODEL_DIR)]
    if missing:
        pytest.fail(f"model files {missing} are missing; run `kiosk models fetch`")
    return manifest


def _slot(
    tmp_path: Path, manifest: Manifest, names: list[str]
) -> tuple[Path, BundleManifest]:
    entries = [manifest.get_model(name) for name in names]
    models = tmp_path / "slot" / "models"
    models.mkdir(parents=True)
    for entry in entries:
        (models / entry.file).symlink_to(MODEL_DIR / entry.file)
    return tmp_path / "slot", BundleManifest(bundle_version="t", model=entries)


def test_current_models_pass(tmp_path: Path, manifest: Manifest) -> None:
    names = ["yunet", "sface", "ocr_detection", "ocr_recognition", "ocr_charset"]
    slot, bundle = _slot(tmp_path, manifest, names)

    report = ModelHealthCheck(OtaClientSection())(slot, bundle)

    assert report.passed, report.failures()
    checked = {result.name for result in report.results}
    assert {"ocr accuracy", "ocr latency", "face detector", "face embedder"} <= checked
    assert any("face-match" in item for item in report.not_checked)


def test_a_model_over_its_latency_budget_fails(
    tmp_path: Path, manifest: Manifest
) -> None:
    slot, bundle = _slot(tmp_path, manifest, ["yunet"])
    settings = OtaClientSection(model_latency_ms=0.001)

    report = ModelHealthCheck(settings)(slot, bundle)

    assert not report.passed and "latency yunet" in report.failures()


def test_a_damaged_model_file_fails(tmp_path: Path, manifest: Manifest) -> None:
    slot, bundle = _slot(tmp_path, manifest, ["yunet"])
    path = slot / "models" / manifest.get_model("yunet").file
    path.unlink()
    shutil.copy(MODEL_DIR / path.name, path)
    with path.open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\xff\xff")

    report = ModelHealthCheck(OtaClientSection())(slot, bundle)

    assert not report.passed and "SHA-256" in report.failures()
