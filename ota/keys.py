"""Create and load the Ed25519 keys that sign the update metadata.

Root keys live in their own directory, meant to stay offline; the online
role keys (targets, snapshot, timestamp) live in protected files (mode 0600)
the serving bridge reads, or, with ``ota.key_backend = "pkcs11"``, on the
office's token (:mod:`ota.hsm_keys`).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ota.errors import KeyFileError
from ota.tufapi import CryptoSigner

logger = logging.getLogger(__name__)

ONLINE_ROLES = ("targets", "snapshot", "timestamp")


def key_path(key_dir: Path, role: str, index: int) -> Path:
    """Return the file of ``role``'s key number ``index``."""
    return key_dir / f"{role}-{index}.pem"


def create_key(path: Path) -> CryptoSigner:
    """Write a new Ed25519 key to ``path`` (mode 0600) unless one is there."""
    if path.exists():
        return load_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    signer = CryptoSigner(Ed25519PrivateKey.generate())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(signer.private_bytes)
        handle.flush()
        os.fsync(handle.fileno())
    logger.info("created signing key %s", path.name)
    return signer


def load_key(path: Path) -> CryptoSigner:
    """Load the key at ``path``, refusing a file others can read.

    Raises:
        KeyFileError: the file is missing, readable by others or not a key.
    """
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(
            f"cannot read signing key {path}: {exc.strerror}; run 'kiosk ota init'"
        ) from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"signing key {path} is readable by other users; chmod 600 it"
        )
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except ValueError as exc:
        raise KeyFileError(f"{path} is not a PEM private key") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 key")
    return CryptoSigner(private)


def load_role_keys(key_dir: Path, role: str) -> list[CryptoSigner]:
    """Load every key file of ``role`` in ``key_dir``, in index order.

    Raises:
        KeyFileError: there is none, or one cannot be loaded.
    """
    paths = sorted(key_dir.glob(f"{role}-*.pem"))
    if not paths:
        raise KeyFileError(
            f"no {role} key in {key_dir}; run 'kiosk ota init' or mount the keys"
        )
    return [load_key(path) for path in paths]
