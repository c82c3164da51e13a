"""Tests of per-platform model variants chosen by configuration."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydantic
import pytest

from models.config import ModelsSection
from models.errors import ModelHashError, ModelMissingError, VariantRejectedError
from models.faces.verification import FaceVerifier
from models.files import file_sha256
from models.manifest import Manifest
from models.variants import INT8_DIR, record_variant, resolve_variant


def _record(model_dir: Path, source: Path, agreement: float) -> Path:
    target = model_dir / INT8_DIR / source.name.replace(".onnx", ".int8.onnx")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    record_variant(
        model_dir,
        {
            "model": "yunet",
            "path": target,
            "sha256": file_sha256(target),
            "size": target.stat().st_size,
            "agreement": agreement,
            "agreement_bound": 0.98,
        },
    )
    return target


def test_fp32_is_the_manifest_entry(manifest: Manifest, model_dir: Path) -> None:
    entry = manifest.get_model("yunet")
    assert resolve_variant(entry, model_dir) == (entry, model_dir)


def test_missing_and_rejected_variants_are_refused(
    manifest: Manifest, model_dir: Path, tmp_path: Path
) -> None:
    entry = manifest.get_model("yunet")
    with pytest.raises(ModelMissingError, match="kiosk models quantize"):
        resolve_variant(entry, tmp_path, "int8")
    _record(tmp_path, model_dir / entry.file, agreement=0.9)
    with pytest.raises(VariantRejectedError, match="under its bound"):
        resolve_variant(entry, tmp_path, "int8")


def test_a_recorded_variant_loads_and_is_hash_checked(
    manifest: Manifest, model_dir: Path, tmp_path: Path
) -> None:
    for name in ("yunet", "sface"):
        shutil.copyfile(model_dir / manifest.get_model(name).file, tmp_path / name)
        (tmp_path / manifest.get_model(name).file).symlink_to(tmp_path / name)
    target = _record(tmp_path, model_dir / manifest.get_model("yunet").file, 0.99)
    verifier = FaceVerifier.from_manifest(
        manifest, tmp_path, variants={"yunet": "int8"}
    )
    assert verifier.detector.model.path == target
    target.write_bytes(target.read_bytes()[:-1] + b"\0")
    with pytest.raises(ModelHashError):
        FaceVerifier.from_manifest(manifest, tmp_path, variants={"yunet": "int8"})


def test_configuration_accepts_only_known_precisions() -> None:
    assert ModelsSection(variants={"sface": "int8"}).variants == {"sface": "int8"}
    with pytest.raises(pydantic.ValidationError):
        ModelsSection.model_validate({"variants": {"sface": "int4"}})
