"""Encrypt console users' TOTP secrets at rest with AES-256-GCM.

A stored secret reads ``v1:KEYID:BASE64`` where BASE64 is a 12-byte random
nonce followed by the ciphertext and tag, and the user name is the
associated data, so a secret copied onto another user's row does not
decrypt. KEYID (eight hex digits derived from the key) tells an operator
which key a row needs when instances disagree.

The key comes from ``console.totp_key`` (the environment, for instance) or
the file ``console.totp_key_file``; when that file does not exist it is
made once with a random key, as ``kiosk bridge init`` makes the HSM PIN.
Every bridge instance sharing a database needs the same key. The key is
not yet wrapped by a key on the HSM: whoever reads both the key file and
the database can compute codes, though still not log in without the
password.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cloud_bridge.config import BridgeConfig
from kiosk.errors import ConfigError

logger = logging.getLogger(__name__)

PREFIX = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12


class TotpSecretBox:
    """Encrypt and decrypt TOTP secrets with one AES-256-GCM key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ConfigError(
                f"the TOTP key must be {KEY_BYTES} bytes, got {len(key)}; "
                "make one with: head -c 32 /dev/urandom | base64"
            )
        self._aead = AESGCM(key)
        mac = hmac.new(key, b"ttpvhcc totp key id", hashlib.sha256)
        self.key_id = mac.hexdigest()[:8]

    def seal(self, secret: str, username: str) -> str:
        """Return the stored form of ``secret`` for ``username``."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode("ascii"), _aad(username))
        text = base64.b64encode(nonce + sealed).decode("ascii")
        return f"{PREFIX}:{self.key_id}:{text}"

    def open(self, stored: str, username: str) -> str:
        """Return the plain secret of a stored value (plain legacy values as is).

        Raises:
            ConfigError: the value was sealed with another key or altered.
        """
        if not is_sealed(stored):
            return stored
        _, key_id, text = stored.split(":", 2)
        try:
            data = base64.b64decode(text, validate=True)
            plain = self._aead.decrypt(
                data[:NONCE_BYTES], data[NONCE_BYTES:], _aad(username)
            )
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise ConfigError(
                f"the TOTP secret of {username!r} was sealed with key {key_id}, "
                f"this bridge has key {self.key_id}; give every instance the "
                "same console.totp_key, or reset the user's TOTP"
            ) from exc
        return plain.decode("ascii")


def is_sealed(stored: str) -> bool:
    """Return True when a stored secret is in the encrypted form."""
    return stored.startswith(PREFIX + ":")


def box_from_config(config: BridgeConfig) -> TotpSecretBox:
    """Return the box keyed from the configuration or its key file."""
    settings = config.console
    if settings.totp_key is not None:
        return TotpSecretBox(_decode_key(settings.totp_key.get_secret_value()))
    if settings.totp_key_file is None:
        raise ConfigError("set console.totp_key or console.totp_key_file")
    return TotpSecretBox(_key_from_file(config.path(settings.totp_key_file)))


def _key_from_file(path: Path) -> bytes:
    try:
        return _decode_key(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError(
            f"cannot read the TOTP key from {path}: {exc.strerror}; "
            "check its permissions or set KIOSK_BRIDGE__CONSOLE__TOTP_KEY"
        ) from exc
    if _create_key_file(path, secrets.token_bytes(KEY_BYTES)):
        logger.warning("made a new TOTP key in %s; copy it to every instance", path)
    return _decode_key(path.read_text(encoding="ascii").strip())


def _create_key_file(path: Path, key: bytes) -> bool:
    """Write a key file unless one appeared meanwhile; True when written.

    The key is written to a temporary file and hard-linked into place, which
    fails when the name exists, so two processes starting at once agree on
    one key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.b64encode(key) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError as exc:
        raise ConfigError(
            f"cannot write a TOTP key to {path}: {exc.strerror}; "
            "set KIOSK_BRIDGE__CONSOLE__TOTP_KEY instead"
        ) from exc
    finally:
        Path(tmp).unlink(missing_ok=True)
    return True


def _decode_key(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(
            "the TOTP key is not base64; make one with: "
            "head -c 32 /dev/urandom | base64"
        ) from exc


def _aad(username: str) -> bytes:
    return ("console-user:" + username).encode("utf-8")
