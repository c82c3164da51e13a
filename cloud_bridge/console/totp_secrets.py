"""Encrypt console users' TOTP secrets at rest with AES-256-GCM.

A stored secret reads ``v1:KEYID:BASE64`` where BASE64 is a 12-byte random
nonce followed by the ciphertext and tag, and the user name is the
associated data, so a secret copied onto another user's row does not
decrypt. KEYID (eight hex digits derived from the key) tells an operator
which key a row needs when instances disagree.

The key comes from ``console.totp_key`` (the environment, for instance) or
the file ``console.totp_key_file``; when that file does not exist it is
made once with a random key, as ``kiosk bridge init`` makes the HSM PIN.
Every bridge instance sharing a database needs the same key.

With ``console.totp_key_wrapping = "hsm"`` (the default) the file holds the
key encrypted by an AES key that never leaves the office's token
(``hsm-v1:LABEL:KEYID:BASE64``): whoever copies the file and the database
still cannot compute codes without the token and its PIN. A file in clear
is wrapped in place the first time the bridge reads it. KEYID lets the
unwrapped key be checked, so a file wrapped on another token is reported
as such rather than turning into a wrong key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cloud_bridge.config import BridgeConfig
from kiosk.errors import ConfigError
from kiosk.files import write_atomic

logger = logging.getLogger(__name__)

PREFIX = "v1"
WRAPPED = "hsm-v1"
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


class KeyWrapper(Protocol):
    """What wraps the key: the office's token (``HsmToken``)."""

    def encrypt(self, label: str, data: bytes) -> bytes:
        """Encrypt ``data`` with the key ``label``."""
        ...

    def decrypt(self, label: str, blob: bytes) -> bytes:
        """Decrypt what :meth:`encrypt` returned."""
        ...


def box_from_config(
    config: BridgeConfig, wrapper: KeyWrapper | None = None
) -> TotpSecretBox:
    """Return the box keyed from the configuration or its key file.

    ``wrapper`` is the bridge's token; without it one is opened for the
    moment when the key file is wrapped.
    """
    settings = config.console
    if settings.totp_key is not None:
        return TotpSecretBox(_decode_key(settings.totp_key.get_secret_value()))
    if settings.totp_key_file is None:
        raise ConfigError("set console.totp_key or console.totp_key_file")
    path = config.path(settings.totp_key_file)
    if settings.totp_key_wrapping == "none":
        return TotpSecretBox(_key_from_file(path, None))
    label = settings.totp_wrapping_key_label
    if wrapper is not None:
        return TotpSecretBox(_key_from_file(path, (wrapper, label)))
    from cloud_bridge.hsm import open_token

    with open_token(config) as token:
        return TotpSecretBox(_key_from_file(path, (token, label)))


Wrapping = tuple[KeyWrapper, str] | None


def _key_from_file(path: Path, wrapping: Wrapping) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        key = secrets.token_bytes(KEY_BYTES)
        if _create_key_file(path, _file_text(key, wrapping)):
            logger.warning("made a new TOTP key in %s; copy it to every instance", path)
        text = path.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the TOTP key from {path}: {exc.strerror}; "
            "check its permissions or set KIOSK_BRIDGE__CONSOLE__TOTP_KEY"
        ) from exc
    if text.startswith(WRAPPED + ":"):
        return _unwrap(text, path, wrapping)
    key = _decode_key(text)
    if wrapping is not None:
        _replace_key_file(path, _file_text(key, wrapping))
        logger.info("wrapped the TOTP key in %s with the token's key", path)
    return key


def _file_text(key: bytes, wrapping: Wrapping) -> bytes:
    if wrapping is None:
        return base64.b64encode(key) + b"\n"
    wrapper, label = wrapping
    blob = base64.b64encode(wrapper.encrypt(label, key)).decode("ascii")
    key_id = TotpSecretBox(key).key_id
    return f"{WRAPPED}:{label}:{key_id}:{blob}\n".encode("ascii")


def _unwrap(text: str, path: Path, wrapping: Wrapping) -> bytes:
    try:
        _, label, key_id, blob = text.split(":", 3)
        data = base64.b64decode(blob, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise ConfigError(f"the wrapped TOTP key in {path} is damaged") from exc
    if wrapping is None:
        raise ConfigError(
            f"the TOTP key in {path} is wrapped by the token's key {label!r}; "
            'set console.totp_key_wrapping = "hsm"'
        )
    try:
        key = wrapping[0].decrypt(label, data)
    except Exception as exc:  # the token's own errors, HsmError among them
        raise ConfigError(
            f"the token cannot unwrap the TOTP key in {path} ({exc}); the file "
            "was wrapped on another token, or the token lost its key"
        ) from exc
    if len(key) != KEY_BYTES or TotpSecretBox(key).key_id != key_id:
        raise ConfigError(
            f"the TOTP key in {path} was wrapped with another token's key "
            f"{label!r} (key id {key_id}); use that token, or reset every "
            "user's TOTP with a new key file"
        )
    return key


def _replace_key_file(path: Path, text: bytes) -> None:
    try:
        write_atomic(path, text, 0o600)
    except OSError as exc:
        raise ConfigError(
            f"cannot rewrite the TOTP key file {path}: {exc.strerror}"
        ) from exc


def _create_key_file(path: Path, text: bytes) -> bool:
    """Write a key file unless one appeared meanwhile; True when written.

    The file is hard-linked into place, which fails when the name exists,
    so two processes starting at once agree on one key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_atomic(path, text, 0o600, exclusive=True)
    except FileExistsError:
        return False
    except OSError as exc:
        raise ConfigError(
            f"cannot write a TOTP key to {path}: {exc.strerror}; "
            "set KIOSK_BRIDGE__CONSOLE__TOTP_KEY instead"
        ) from exc
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
