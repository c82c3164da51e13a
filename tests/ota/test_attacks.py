"""The attacks TUF defends against, each attempted and refused.

Every test asserts that the kiosk refuses, reports it, and keeps running
version 1.0 with its model files byte for byte unchanged.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from ota.keys import load_key
from ota.repository import sign, utc_now, write_metadata
from ota.tufapi import Metadata, MetaFile, Snapshot, TargetFile, Targets, Timestamp
from tests.ota.conftest import Kiosk, Office, make_kiosk, make_office


def _refused(kiosk: Kiosk, target: str, before: dict[str, bytes], words: str) -> None:
    outcome = kiosk.client.install(target)
    assert outcome.state == "refused", outcome
    assert words in outcome.error, outcome.error
    assert kiosk.reports[-1].state == "refused"
    assert kiosk.client.running_version() == "1.0"
    assert kiosk.model_bytes() == before


def test_targets_metadata_with_a_bad_signature(office: Office, kiosk: Kiosk) -> None:
    target = office.publish("2.0")
    path = office.repository.metadata_dir / "2.targets.json"
    data = json.loads(path.read_bytes())
    data["signed"]["targets"][target]["length"] += 1
    path.write_text(json.dumps(data))

    _refused(kiosk, target, kiosk.model_bytes(), "UnsignedMetadataError")


def test_target_with_the_wrong_hash(office: Office, kiosk: Kiosk) -> None:
    target = office.publish("2.0")
    stored = next(office.repository.targets_dir.glob(f"*.{target}"))
    data = bytearray(stored.read_bytes())
    data[-600] ^= 0xFF
    stored.write_bytes(bytes(data))

    _refused(kiosk, target, kiosk.model_bytes(), "does not match its signed")


def test_rollback_to_older_metadata(office: Office, kiosk: Kiosk) -> None:
    old_target = office.publish("2.0")
    timestamp = office.repository.metadata_dir / "timestamp.json"
    old_timestamp = timestamp.read_bytes()
    new_target = office.publish("3.0")
    assert kiosk.client.install(new_target).state == "installed"
    kiosk.client.clock = lambda: 1e12
    assert kiosk.client.confirm()
    before = kiosk.model_bytes()
    timestamp.write_bytes(old_timestamp)

    outcome = kiosk.client.install(old_target)

    assert outcome.state == "refused" and "BadVersionNumberError" in outcome.error
    assert kiosk.client.running_version() == "3.0"
    assert kiosk.model_bytes() == before


def test_rollback_to_an_older_release_with_fresh_metadata(
    office: Office, kiosk: Kiosk
) -> None:
    old_target = office.publish("2.0")
    assert kiosk.client.install(office.publish("3.0")).state == "installed"
    kiosk.client.clock = lambda: 1e12
    kiosk.client.confirm()

    outcome = kiosk.client.install(old_target)

    assert outcome.state == "refused" and "refusing a rollback" in outcome.error
    assert kiosk.client.running_version() == "3.0"


def test_freeze_with_expired_timestamp(office: Office, kiosk: Kiosk) -> None:
    target = office.publish("2.0")
    office.repository.clock = lambda: utc_now() - timedelta(days=2)
    office.repository.resign_timestamp()

    _refused(kiosk, target, kiosk.model_bytes(), "ExpiredMetadataError")


def test_mix_and_match_metadata(office: Office, kiosk: Kiosk) -> None:
    office.publish("2.0")
    target = office.publish("3.0")
    metadata = office.repository.metadata_dir
    (metadata / "3.targets.json").write_bytes(
        (metadata / "2.targets.json").read_bytes()
    )

    _refused(kiosk, target, kiosk.model_bytes(), "BadVersionNumberError")


def test_endless_timestamp_metadata(office: Office, kiosk: Kiosk) -> None:
    target = office.publish("2.0")
    (office.repository.metadata_dir / "timestamp.json").write_bytes(b" " * 2_000_000)

    _refused(kiosk, target, kiosk.model_bytes(), "larger than allowed")


def test_endless_target_download(office: Office, kiosk: Kiosk) -> None:
    target = office.publish("2.0")
    stored = next(office.repository.targets_dir.glob(f"*.{target}"))
    with stored.open("ab") as handle:
        handle.write(b"\0" * 5_000_000)

    _refused(kiosk, target, kiosk.model_bytes(), "more than the")
    assert not list((kiosk.settings.ota_dir / "downloads").glob("*.part"))


def test_one_targets_key_is_below_the_threshold(office: Office, kiosk: Kiosk) -> None:
    office.publish("2.0")
    stolen = load_key(office.root / "keys" / "targets-1.pem")
    evil = office.bundle("6.6.6")
    directory = office.repository.metadata_dir
    targets: Metadata[Targets] = Metadata.from_file(str(directory / "targets.json"))
    name = "models-evil-r99.tar"
    info = TargetFile.from_file(name, str(evil), ["sha256"])
    info.unrecognized_fields["custom"] = {"sequence": 99}
    targets.signed.targets[name] = info
    targets.signed.version += 1
    sign(targets, [stolen])
    write_metadata(directory, targets, versioned=True)
    snapshot: Metadata[Snapshot] = Metadata.from_file(str(directory / "snapshot.json"))
    snapshot.signed.meta["targets.json"] = MetaFile(version=targets.signed.version)
    snapshot.signed.version += 1
    sign(snapshot, office.repository.signers["snapshot"])
    write_metadata(directory, snapshot, versioned=True)
    timestamp: Metadata[Timestamp] = Metadata.from_file(
        str(directory / "timestamp.json")
    )
    timestamp.signed.snapshot_meta = MetaFile(version=snapshot.signed.version)
    timestamp.signed.version += 1
    sign(timestamp, office.repository.signers["timestamp"])
    write_metadata(directory, timestamp, versioned=False)
    stored = office.repository.targets_dir / f"{info.hashes['sha256']}.{name}"
    stored.write_bytes(evil.read_bytes())

    _refused(kiosk, name, kiosk.model_bytes(), "UnsignedMetadataError")


def test_metadata_from_another_repository(office: Office, tmp_path: Path) -> None:
    other_root = tmp_path / "other"
    other_root.mkdir()
    other = make_office(other_root)
    target = other.publish("2.0")
    kiosk = make_kiosk(
        office, tmp_path / "k", TestClient(other.app, base_url="http://bridge.test")
    )

    _refused(kiosk, target, kiosk.model_bytes(), "UnsignedMetadataError")
