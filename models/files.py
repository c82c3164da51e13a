"""Locate model files on disk and check them against the manifest's SHA-256."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from models.errors import ModelHashError, ModelMissingError
from models.manifest import ModelEntry

logger = logging.getLogger(__name__)

CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_intact(entry: ModelEntry, model_dir: Path) -> bool:
    """Tell whether the model file is present with the pinned SHA-256."""
    path = model_dir / entry.file
    return path.is_file() and file_sha256(path) == entry.sha256


def checked_path(entry: ModelEntry, model_dir: Path) -> Path:
    """Return the model's path after checking that it exists and is intact.

    Raises:
        ModelMissingError: the file has not been fetched.
        ModelHashError: the file's SHA-256 differs from the manifest's.
    """
    path = model_dir / entry.file
    if not path.is_file():
        raise ModelMissingError(
            f"model file {path} ({entry.name}) is missing; run `kiosk models fetch`"
        )
    actual = file_sha256(path)
    if actual != entry.sha256:
        raise ModelHashError(
            f"model file {path} ({entry.name}) has SHA-256 {actual[:16]}..., the "
            f"manifest pins {entry.sha256[:16]}...; it is damaged or was replaced. "
            "Delete it and run `kiosk models fetch` again."
        )
    logger.debug("model %s at %s is intact", entry.name, path)
    return path
