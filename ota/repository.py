"""Build and sign the TUF repository the bridge serves to kiosks.

The layout uses consistent snapshots: ``metadata/N.root.json``,
``metadata/N.targets.json``, ``metadata/N.snapshot.json`` and
``metadata/timestamp.json``, and each target stored as
``targets/<sha256>.<name>``. Root is signed only by :func:`init_repository`
with the offline root keys; publishing signs targets, snapshot and timestamp
with the online keys. Unversioned copies of the latest metadata sit beside
the versioned ones so the repository can be read back without walking it.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuf.api.exceptions import RepositoryError as TufRepositoryError
from tuf.api.serialization import DeserializationError
from tuf.api.serialization.json import JSONSerializer

from ota.config import OtaRepositorySection
from ota.errors import KeyFileError, RepositoryError
from ota.keys import ONLINE_ROLES, create_key, key_path, load_role_keys
from ota.tufapi import (
    Metadata,
    MetaFile,
    Root,
    Signed,
    Signer,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)

if TYPE_CHECKING:
    from cloud_bridge.hsm import HsmToken

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
SERIALIZER = JSONSerializer(compact=True)


def utc_now() -> datetime:
    """Return the current time in UTC, without microseconds."""
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Lifetimes:
    """How long each role's metadata stays valid after signing."""

    root: timedelta = timedelta(days=365)
    targets: timedelta = timedelta(days=90)
    snapshot: timedelta = timedelta(days=7)
    timestamp: timedelta = timedelta(hours=24)

    @classmethod
    def from_settings(cls, settings: OtaRepositorySection) -> Lifetimes:
        """Return the lifetimes configured for the bridge."""
        return cls(
            root=timedelta(days=settings.root_days),
            targets=timedelta(days=settings.targets_days),
            snapshot=timedelta(days=settings.snapshot_days),
            timestamp=timedelta(hours=settings.timestamp_hours),
        )


class UpdateRepository:
    """Publish targets into a TUF repository signed with the online keys."""

    def __init__(
        self,
        repo_dir: Path,
        signers: Mapping[str, Sequence[Signer]],
        lifetimes: Lifetimes | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.repo_dir = repo_dir
        self.signers = signers
        self.lifetimes = lifetimes or Lifetimes()
        self.clock = clock

    @property
    def metadata_dir(self) -> Path:
        """Return the directory of metadata files."""
        return self.repo_dir / "metadata"

    @property
    def targets_dir(self) -> Path:
        """Return the directory of target files."""
        return self.repo_dir / "targets"

    def root_bytes(self) -> bytes:
        """Return the current root metadata, the trust anchor kiosks install."""
        return (self.metadata_dir / "root.json").read_bytes()

    def targets(self) -> dict[str, TargetFile]:
        """Return the targets the repository currently lists."""
        return dict(self.load(Targets.type, Targets).signed.targets)

    def publish_target(
        self, name: str, source: Path, custom: Mapping[str, Any]
    ) -> TargetFile:
        """Add ``source`` as target ``name`` and sign new metadata for it."""
        target = TargetFile.from_file(name, str(source), ["sha256"])
        target.unrecognized_fields["custom"] = dict(custom)
        digest = target.hashes["sha256"]
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        stored = self.targets_dir / f"{digest}.{name}"
        _copy_durably(source, stored)

        targets = self.load(Targets.type, Targets)
        targets.signed.targets[name] = target
        self._sign_versioned(targets, self.lifetimes.targets)
        self._update_snapshot_and_timestamp(targets.signed.version)
        logger.info("published target %s (%s bytes)", name, target.length)
        return target

    def resign_timestamp(self) -> int:
        """Sign a new timestamp for the same snapshot; return its version."""
        snapshot = self.load(Snapshot.type, Snapshot)
        return self._sign_timestamp(snapshot.signed.version)

    def refresh_expiring(
        self, margin: timedelta, *, force_timestamp: bool = False
    ) -> dict[str, int]:
        """Re-sign the online roles that expire within ``margin``.

        Targets re-signed means a new snapshot, and a new snapshot a new
        timestamp, so kiosks always see a consistent set. Returns the new
        version of each role re-signed (empty when nothing was due).
        """
        deadline = self.clock() + margin
        signed: dict[str, int] = {}
        targets = self.load(Targets.type, Targets)
        if targets.signed.expires <= deadline:
            self._sign_versioned(targets, self.lifetimes.targets)
            signed[Targets.type] = int(targets.signed.version)
        snapshot = self.load(Snapshot.type, Snapshot)
        if signed or snapshot.signed.expires <= deadline:
            snapshot.signed.meta["targets.json"] = MetaFile(
                version=targets.signed.version
            )
            self._sign_versioned(snapshot, self.lifetimes.snapshot)
            signed[Snapshot.type] = int(snapshot.signed.version)
        timestamp = self.load(Timestamp.type, Timestamp)
        if signed or force_timestamp or timestamp.signed.expires <= deadline:
            signed[Timestamp.type] = self._sign_timestamp(snapshot.signed.version)
        for role, version in signed.items():
            logger.info("re-signed %s metadata, version %s", role, version)
        return signed

    def expiries(self) -> dict[str, datetime]:
        """Return when each online role's current metadata expires."""
        return {
            role: self.load(role, kind).signed.expires
            for role, kind in (
                (Targets.type, Targets),
                (Snapshot.type, Snapshot),
                (Timestamp.type, Timestamp),
            )
        }

    def load(self, role: str, kind: type[Signed]) -> Metadata[Any]:
        """Read the latest ``role`` metadata from the repository."""
        path = self.metadata_dir / f"{role}.json"
        try:
            metadata: Metadata[Any] = Metadata.from_file(str(path))
        except (OSError, DeserializationError) as exc:
            raise RepositoryError(
                f"cannot read {path}: {exc}; run 'kiosk ota init' first"
            ) from exc
        if not isinstance(metadata.signed, kind):
            raise RepositoryError(f"{path} does not hold {role} metadata")
        return metadata

    def _update_snapshot_and_timestamp(self, targets_version: int) -> None:
        snapshot = self.load(Snapshot.type, Snapshot)
        snapshot.signed.meta["targets.json"] = MetaFile(version=targets_version)
        self._sign_versioned(snapshot, self.lifetimes.snapshot)
        self._sign_timestamp(snapshot.signed.version)

    def _sign_timestamp(self, snapshot_version: int) -> int:
        timestamp = self.load(Timestamp.type, Timestamp)
        timestamp.signed.snapshot_meta = MetaFile(version=snapshot_version)
        timestamp.signed.version += 1
        timestamp.signed.expires = self.clock() + self.lifetimes.timestamp
        sign(timestamp, self.signers[Timestamp.type])
        write_metadata(self.metadata_dir, timestamp, versioned=False)
        return int(timestamp.signed.version)

    def _sign_versioned(self, metadata: Metadata[Any], lifetime: timedelta) -> None:
        metadata.signed.version += 1
        metadata.signed.expires = self.clock() + lifetime
        sign(metadata, self.signers[metadata.signed.type])
        write_metadata(self.metadata_dir, metadata, versioned=True)


def sign(metadata: Metadata[Any], signers: Sequence[Signer]) -> None:
    """Replace ``metadata``'s signatures with one from each signer."""
    metadata.signatures.clear()
    for signer in signers:
        metadata.sign(signer, append=True)


def write_metadata(directory: Path, metadata: Metadata[Any], versioned: bool) -> None:
    """Write ``metadata`` durably: ``N.role.json`` if versioned, and ``role.json``."""
    data = metadata.to_bytes(SERIALIZER)
    role = metadata.signed.type
    directory.mkdir(parents=True, exist_ok=True)
    if versioned:
        _write_durably(directory / f"{metadata.signed.version}.{role}.json", data)
    _write_durably(directory / f"{role}.json", data)


def init_repository(
    repo_dir: Path,
    root_key_dir: Path,
    key_dir: Path,
    settings: OtaRepositorySection,
    clock: Clock = utc_now,
    token: HsmToken | None = None,
) -> UpdateRepository:
    """Create keys (if missing) and sign version 1 of every role.

    With ``ota.key_backend = "pkcs11"`` the keys of ``ota.hsm_roles`` are
    made on ``token`` instead of in ``key_dir``.

    Raises:
        RepositoryError: the repository already exists or a threshold cannot
            be met by the configured number of keys.
    """
    if (repo_dir / "metadata" / "root.json").exists():
        raise RepositoryError(f"an update repository already exists in {repo_dir}")
    if settings.root_threshold > settings.root_keys:
        raise RepositoryError("ota.root_threshold is larger than ota.root_keys")
    if settings.targets_threshold > settings.targets_keys:
        raise RepositoryError("ota.targets_threshold is larger than ota.targets_keys")
    for index in range(settings.root_keys):
        create_key(key_path(root_key_dir, "root", index + 1))
    signers = online_signers(key_dir, settings, token, create=True)
    lifetimes = Lifetimes.from_settings(settings)
    thresholds = {
        "root": settings.root_threshold,
        "targets": settings.targets_threshold,
    }
    root = _new_root(
        load_role_keys(root_key_dir, "root"), signers, thresholds, lifetimes, clock
    )
    write_metadata(repo_dir / "metadata", root, versioned=True)
    repository = UpdateRepository(repo_dir, signers, lifetimes, clock)
    _write_first_versions(repository)
    logger.info("created the update repository in %s", repo_dir)
    return repository


def open_repository(
    repo_dir: Path,
    key_dir: Path,
    settings: OtaRepositorySection,
    token: HsmToken | None = None,
) -> UpdateRepository:
    """Open an existing repository with its online keys (files or ``token``)."""
    if not (repo_dir / "metadata" / "root.json").exists():
        raise RepositoryError(
            f"no update repository in {repo_dir}; run 'kiosk ota init' first"
        )
    signers = online_signers(key_dir, settings, token)
    return UpdateRepository(repo_dir, signers, Lifetimes.from_settings(settings))


def online_signers(
    key_dir: Path,
    settings: OtaRepositorySection,
    token: HsmToken | None,
    *,
    create: bool = False,
) -> dict[str, Sequence[Signer]]:
    """Return the signers of the online roles: HSM keys where configured, files else.

    Raises:
        KeyFileError: the pkcs11 backend is configured without a token, or a
            key is missing or unusable.
    """
    counts = {"targets": settings.targets_keys}
    signers: dict[str, Sequence[Signer]] = {}
    if settings.key_backend == "pkcs11":
        if token is None:
            raise KeyFileError(
                "ota.key_backend is pkcs11 but no token was opened; check the "
                "[hsm] section"
            )
        from ota.hsm_keys import hsm_signers

        signers.update(hsm_signers(token, settings, counts, create=create))
    for role in ONLINE_ROLES:
        if role in signers:
            continue
        if create:
            for index in range(counts.get(role, 1)):
                create_key(key_path(key_dir, role, index + 1))
        signers[role] = load_role_keys(key_dir, role)
    return signers


def _new_root(
    root_signers: Sequence[Signer],
    online: Mapping[str, Sequence[Signer]],
    thresholds: Mapping[str, int],
    lifetimes: Lifetimes,
    clock: Clock,
) -> Metadata[Root]:
    root = Root(expires=clock() + lifetimes.root, consistent_snapshot=True)
    for signer in root_signers:
        root.add_key(signer.public_key, Root.type)
    for role, signers in online.items():
        for signer in signers:
            root.add_key(signer.public_key, role)
    for role, threshold in thresholds.items():
        root.roles[role].threshold = threshold
    metadata = Metadata(root)
    sign(metadata, root_signers)
    try:
        metadata.signed.verify_delegate(
            Root.type, metadata.signed_bytes, metadata.signatures
        )
    except TufRepositoryError as exc:
        raise RepositoryError(f"the new root does not verify: {exc}") from exc
    return metadata


def _write_first_versions(repository: UpdateRepository) -> None:
    now = repository.clock()
    lifetimes = repository.lifetimes
    targets = Metadata(Targets(expires=now + lifetimes.targets))
    snapshot = Metadata(Snapshot(expires=now + lifetimes.snapshot))
    timestamp = Metadata(Timestamp(expires=now + lifetimes.timestamp))
    for metadata in (targets, snapshot):
        sign(metadata, repository.signers[metadata.signed.type])
        write_metadata(repository.metadata_dir, metadata, versioned=True)
    sign(timestamp, repository.signers[Timestamp.type])
    write_metadata(repository.metadata_dir, timestamp, versioned=False)


def _write_durably(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.tmp")
    with partial.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)


def _copy_durably(source: Path, destination: Path) -> None:
    partial = destination.with_name(f".{destination.name}.tmp")
    try:
        with source.open("rb") as reader, partial.open("wb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)
            writer.flush()
            os.fsync(writer.fileno())
    except OSError as exc:
        raise RepositoryError(f"cannot store target {destination.name}: {exc}") from exc
    partial.replace(destination)
