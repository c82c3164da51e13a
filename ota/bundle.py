"""Build, read and check update bundles: model files plus their manifest entries.

A bundle is an uncompressed tar (the model files are already dense) holding
``bundle.toml`` and ``models/<file>`` for each model it lists. ``bundle.toml``
names the bundle's version, lists each model with the same fields as the
model manifest (so every file has its SHA-256), and may carry configuration
such as a recalibrated face-match threshold. Extraction writes only the
members it expects, by name, never following paths or links from the tar.
"""

from __future__ import annotations

import io
import logging
import os
import tarfile
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.files import file_sha256
from models.manifest import ModelEntry
from ota.errors import BundleError

logger = logging.getLogger(__name__)

MANIFEST_NAME = "bundle.toml"
MODELS_DIR = "models"
CHUNK = 1 << 20


class BundleConfig(BaseModel):
    """Configuration a bundle may change on the kiosk."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    face_threshold: float | None = Field(
        None, ge=-1.0, le=1.0, description="New face-match cosine threshold."
    )


class BundleManifest(BaseModel):
    """What ``bundle.toml`` says: version, models and configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bundle_version: str = Field(pattern=r"^[0-9A-Za-z.\-+]{1,40}$")
    model: list[ModelEntry] = Field(min_length=1, max_length=100)
    config: BundleConfig = Field(default_factory=BundleConfig)


def manifest_toml(manifest: BundleManifest) -> str:
    """Return ``manifest`` as the TOML text stored in a bundle."""
    lines = [f'bundle_version = "{manifest.bundle_version}"', ""]
    if manifest.config.face_threshold is not None:
        lines += ["[config]", f"face_threshold = {manifest.config.face_threshold}", ""]
    for entry in manifest.model:
        lines.append("[[model]]")
        for key, value in entry.model_dump().items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def build_bundle(
    out: Path,
    model_dir: Path,
    entries: Sequence[ModelEntry],
    version: str,
    config: BundleConfig | None = None,
) -> BundleManifest:
    """Write a bundle of ``entries``' files from ``model_dir`` to ``out``.

    Raises:
        BundleError: a file is missing or differs from its entry's hash.
    """
    manifest = BundleManifest(
        bundle_version=version, model=list(entries), config=config or BundleConfig()
    )
    text = manifest_toml(manifest).encode("utf-8")
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as archive:
        _add_bytes(archive, MANIFEST_NAME, text)
        for entry in entries:
            path = model_dir / entry.file
            if not path.is_file() or file_sha256(path) != entry.sha256:
                raise BundleError(
                    f"{path} is missing or differs from its manifest entry; "
                    "run 'kiosk models fetch'"
                )
            archive.add(path, arcname=f"{MODELS_DIR}/{entry.file}", recursive=False)
    logger.info("built bundle %s with %s models", version, len(entries))
    return manifest


def extract_bundle(bundle: Path, dest: Path, max_bytes: int) -> BundleManifest:
    """Unpack ``bundle`` into the empty directory ``dest`` and check every file.

    Raises:
        BundleError: the tar is corrupt, holds unexpected or missing members,
            its manifest does not validate, or a file's hash differs.
    """
    dest.mkdir(parents=True, exist_ok=True)
    (dest / MODELS_DIR).mkdir(exist_ok=True)
    try:
        with tarfile.open(bundle, "r:") as archive:
            names = _extract_members(archive, dest, max_bytes)
    except (tarfile.TarError, EOFError) as exc:
        raise BundleError(f"update bundle {bundle.name} is corrupt: {exc}") from exc
    manifest = read_manifest(dest)
    _check_files(manifest, dest, names)
    return manifest


def read_manifest(slot: Path) -> BundleManifest:
    """Read and validate the ``bundle.toml`` of an unpacked bundle.

    Raises:
        BundleError: it is missing, not TOML, or does not validate.
    """
    path = slot / MANIFEST_NAME
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return BundleManifest.model_validate(data)
    except FileNotFoundError as exc:
        raise BundleError(f"the bundle has no {MANIFEST_NAME}") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BundleError(f"the bundle's {MANIFEST_NAME} is unreadable: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise BundleError(
            f"the bundle's {MANIFEST_NAME} does not validate: {where}: {first['msg']}"
        ) from exc


def _extract_members(archive: tarfile.TarFile, dest: Path, max_bytes: int) -> set[str]:
    names: set[str] = set()
    total = 0
    for member in archive:
        name = member.name
        if not member.isfile() or not _allowed_name(name):
            raise BundleError(f"the bundle holds an unexpected member {name!r}")
        if name in names:
            raise BundleError(f"the bundle holds {name!r} twice")
        total += member.size
        if total > max_bytes:
            raise BundleError(f"the bundle unpacks to more than {max_bytes} bytes")
        source = archive.extractfile(member)
        if source is None:
            raise BundleError(f"the bundle member {name!r} cannot be read")
        _write_member(source, dest / name, member.size)
        names.add(name)
    return names


def _allowed_name(name: str) -> bool:
    if name == MANIFEST_NAME:
        return True
    folder, _, file = name.partition("/")
    return (
        folder == MODELS_DIR
        and file != ""
        and "/" not in file
        and not file.startswith(".")
        and all(c.isalnum() or c in "_.-" for c in file)
    )


def _write_member(source: IO[bytes], path: Path, size: int) -> None:
    written = 0
    with path.open("wb") as out:
        while chunk := source.read(CHUNK):
            written += len(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if written != size:
        raise BundleError(f"the bundle member {path.name} is truncated")


def _check_files(manifest: BundleManifest, dest: Path, names: set[str]) -> None:
    expected = {f"{MODELS_DIR}/{entry.file}" for entry in manifest.model}
    missing = sorted(expected - names)
    if missing:
        raise BundleError(f"the bundle lacks files its manifest lists: {missing}")
    extra = sorted(names - expected - {MANIFEST_NAME})
    if extra:
        raise BundleError(f"the bundle holds files its manifest does not list: {extra}")
    for entry in manifest.model:
        path = dest / MODELS_DIR / entry.file
        if path.stat().st_size != entry.size or file_sha256(path) != entry.sha256:
            raise BundleError(
                f"model file {entry.file} in the bundle differs from its manifest "
                "entry (size or SHA-256); the bundle is corrupt"
            )


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
