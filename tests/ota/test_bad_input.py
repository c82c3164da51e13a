"""Bad bundles, bad manifests and a full disk: clear errors, old version kept."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from ota.bundle import extract_bundle
from ota.errors import BundleError
from ota.publish import publish_bundle
from tests.ota.conftest import Kiosk, Office


def _publish_raw(office: Office, data: bytes, name: str = "models-bad-r50.tar") -> str:
    path = office.work / name
    path.write_bytes(data)
    office.repository.publish_target(name, path, {"sequence": 50})
    return name


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _failed(kiosk: Kiosk, target: str, words: str) -> None:
    before = kiosk.model_bytes()
    outcome = kiosk.client.install(target)
    assert outcome.state == "failed", outcome
    assert words in outcome.error, outcome.error
    assert kiosk.reports[-1].state == "failed" and kiosk.reports[-1].error
    assert kiosk.client.running_version() == "1.0"
    assert kiosk.model_bytes() == before
    assert not (kiosk.client.slots.root / "slots" / ".b.new").exists()


def test_corrupt_bundle(office: Office, kiosk: Kiosk) -> None:
    _failed(kiosk, _publish_raw(office, b"not a tar file" * 100), "corrupt")


def test_bundle_missing_a_file(office: Office, kiosk: Kiosk) -> None:
    good = office.bundle("2.0")
    with tarfile.open(good) as archive:
        members = {
            m.name: archive.extractfile(m).read()  # type: ignore[union-attr]
            for m in archive
            if m.name != "models/model_1.bin"
        }
    _failed(kiosk, _publish_raw(office, _tar(members)), "lacks files")


def test_manifest_that_does_not_validate(office: Office, kiosk: Kiosk) -> None:
    data = b"model"
    manifest = (
        'bundle_version = "2.0"\n[[model]]\nname = "Bad Name"\nfile = "m.bin"\n'
        f'sha256 = "{hashlib.sha256(data).hexdigest()}"\n'
    ).encode()
    target = _publish_raw(office, _tar({"bundle.toml": manifest, "models/m.bin": data}))
    _failed(kiosk, target, "does not validate")


def test_bundle_with_a_path_outside_the_slot(office: Office, kiosk: Kiosk) -> None:
    target = _publish_raw(office, _tar({"../../evil.sh": b"rm -rf /"}))
    _failed(kiosk, target, "unexpected member")
    assert not (kiosk.client.slots.root.parent / "evil.sh").exists()


def test_publishing_refuses_a_broken_bundle(office: Office) -> None:
    path = office.work / "broken.tar"
    path.write_bytes(_tar({"bundle.toml": b"bundle_version = 2"}))
    with pytest.raises(BundleError, match="does not validate"):
        publish_bundle(office.repository, office.director, path)
    assert office.repository.targets() == {}


def test_disk_fills_up_during_download(office: Office, kiosk: Kiosk) -> None:
    target = office.publish("2.0")
    digest = office.repository.targets()[target].hashes["sha256"]
    downloads = kiosk.settings.ota_dir / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    os.symlink("/dev/full", downloads / f"{digest}.part")  # every write: ENOSPC
    before = kiosk.model_bytes()

    outcome = kiosk.client.install(target)

    assert outcome.state == "failed" and "disk filled up" in outcome.error
    assert kiosk.client.running_version() == "1.0"
    assert kiosk.model_bytes() == before
    (downloads / f"{digest}.part").unlink()
    assert kiosk.client.install(target).state == "installed"  # retried later


def test_not_enough_free_space_is_found_before_downloading(
    office: Office, kiosk: Kiosk
) -> None:
    target = office.publish("2.0")
    kiosk.client.settings = kiosk.settings.model_copy(update={"min_free_bytes": 10**15})

    outcome = kiosk.client.install(target)

    assert outcome.state == "failed" and "bytes are free" in outcome.error
    assert kiosk.client.running_version() == "1.0"


def test_extract_refuses_a_bundle_larger_than_allowed(
    office: Office, tmp_path: Path
) -> None:
    with pytest.raises(BundleError, match="more than 1000 bytes"):
        extract_bundle(office.bundle("2.0"), tmp_path / "x", 1000)
