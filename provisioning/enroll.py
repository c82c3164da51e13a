"""Enroll a kiosk with the bridge and renew its certificate.

The token (``<kiosk-id>.<secret>``, from ``kiosk fleet enroll-token``) names
the kiosk; the kiosk makes its key, sends only a certificate request, and
stores what the bridge answers. The HTTP client is handed in, so tests can
talk to the bridge application directly.
"""

from __future__ import annotations

import base64
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from protocol.topics import TopicError, check_kiosk_id
from provisioning.errors import EnrollmentRefusedError, ProvisioningError
from provisioning.identity import (
    CA_FILE,
    CERTIFICATE_FILE,
    COMMAND_KEY_FILE,
    KEY_FILE,
    KioskIdentity,
    load_identity,
    save_identity,
    write_atomic,
)
from provisioning.keys import FileKey, KioskKey

logger = logging.getLogger(__name__)

ENROLL_PATH = "/fleet/enroll"
RENEW_PATH = "/fleet/renew"


def kiosk_id_from_token(token: str) -> str:
    """Return the kiosk id a token names (the part before the first dot)."""
    kiosk_id, _, secret = token.partition(".")
    try:
        check_kiosk_id(kiosk_id)
    except TopicError as exc:
        raise ProvisioningError(
            "the token does not start with a kiosk id; copy it whole from "
            "'kiosk fleet enroll-token'"
        ) from exc
    if len(secret) < 16:
        raise ProvisioningError("the token is too short; copy it whole")
    return kiosk_id


def provision(
    directory: Path,
    bridge_url: str,
    token: str,
    http: httpx.Client,
    key: KioskKey | None = None,
) -> KioskIdentity:
    """Make the kiosk's key, enroll with ``token`` and store the identity."""
    kiosk_id = kiosk_id_from_token(token)
    key = key or FileKey(directory / KEY_FILE)
    body = {"token": token, "csr_pem": key.csr_pem(kiosk_id)}
    answer = _post(http, bridge_url.rstrip("/") + ENROLL_PATH, body)
    identity = _store(directory, bridge_url, answer)
    logger.info("kiosk %s enrolled; broker %s", identity.kiosk_id, identity.broker_host)
    return identity


def renew(
    identity: KioskIdentity, http: httpx.Client, key: KioskKey | None = None
) -> KioskIdentity:
    """Renew the certificate; return the new identity.

    Without ``key`` a fresh file key replaces the current one. With ``key``
    (the kiosk key on a token, which never leaves it) that same key is
    certified again: the request and the proof are both signed by it.
    """
    if key is not None:
        return _recertify(identity, http, key)
    current = FileKey(identity.key_path)
    fresh = current.replace()
    answer = _ask_renewal(identity, http, current, fresh)
    # The certificate is written before the key moves into place: a crash
    # between the two leaves the new key beside the new certificate, which
    # finish_renewal() puts in place at the next start.
    renewed = _store(identity.dir, identity.bridge_url, answer)
    fresh.path.replace(identity.key_path)
    logger.info("kiosk %s renewed its certificate", renewed.kiosk_id)
    return renewed


def _recertify(
    identity: KioskIdentity, http: httpx.Client, key: KioskKey
) -> KioskIdentity:
    if not _same_key(identity, key):
        raise ProvisioningError(
            "the key on the token is not the key of the current certificate; "
            "check the key label or enroll the kiosk again"
        )
    answer = _ask_renewal(identity, http, key, key)
    renewed = _store(identity.dir, identity.bridge_url, answer)
    logger.info("kiosk %s renewed the certificate of its token key", renewed.kiosk_id)
    return renewed


def _ask_renewal(
    identity: KioskIdentity, http: httpx.Client, current: KioskKey, new: KioskKey
) -> dict[str, Any]:
    """Send ``new``'s certificate request, proven by the ``current`` key."""
    csr_pem = new.csr_pem(identity.kiosk_id)
    body = {
        "certificate_pem": identity.certificate_path.read_text(encoding="ascii"),
        "csr_pem": csr_pem,
        "proof": base64.b64encode(current.sign(csr_pem.encode("ascii"))).decode(),
    }
    return _post(http, identity.bridge_url.rstrip("/") + RENEW_PATH, body)


def finish_renewal(directory: Path) -> bool:
    """Complete a renewal a crash cut short; return whether one was completed.

    A renewal writes the new certificate, then moves the new key (``kiosk.key.new``)
    over the old one. If the kiosk stopped in between, the certificate on disk
    belongs to the new key, so the new key is moved into place now.
    """
    fresh = directory / (KEY_FILE + ".new")
    if not fresh.exists():
        return False
    identity = load_identity(directory)
    if not _same_key(identity, FileKey(fresh)):
        fresh.unlink(missing_ok=True)
        return False
    fresh.replace(identity.key_path)
    logger.warning("completed the certificate renewal a restart interrupted")
    return True


def _same_key(identity: KioskIdentity, key: KioskKey) -> bool:
    def spki(public: ec.EllipticCurvePublicKey) -> bytes:
        return public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    public = identity.certificate().public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        return False
    return spki(public) == spki(key.public_key())


def renew_if_due(
    directory: Path,
    before: timedelta,
    http: httpx.Client,
    key: KioskKey | None = None,
) -> KioskIdentity | None:
    """Renew when the certificate ends within ``before``; return the new identity."""
    identity = load_identity(directory)
    if not identity.renewal_due(before):
        return None
    return renew(identity, http, key)


def _post(http: httpx.Client, url: str, body: dict[str, str]) -> dict[str, Any]:
    try:
        response = http.post(url, json=body)
    except httpx.HTTPError as exc:
        raise ProvisioningError(
            f"cannot reach the bridge at {url}: {exc}; check the address and network"
        ) from exc
    if response.status_code != 200:
        detail = response.text[:300]
        raise EnrollmentRefusedError(
            f"the bridge refused ({response.status_code}): {detail}"
        )
    data = response.json()
    if not isinstance(data, dict):
        raise ProvisioningError("the bridge answered something that is not JSON")
    return data


def _store(directory: Path, bridge_url: str, answer: dict[str, Any]) -> KioskIdentity:
    try:
        identity = KioskIdentity(
            directory,
            check_kiosk_id(str(answer["kiosk_id"])),
            str(answer["broker_host"]),
            int(answer["broker_port"]),
            bridge_url,
        )
        files = {
            CERTIFICATE_FILE: answer["certificate_pem"],
            CA_FILE: answer["ca_pem"],
            COMMAND_KEY_FILE: answer["command_public_key_pem"],
        }
    except (KeyError, ValueError, TypeError, TopicError) as exc:
        raise ProvisioningError(f"the bridge's answer is incomplete: {exc}") from exc
    for name, text in files.items():
        write_atomic(directory / name, str(text).encode("ascii"))
    save_identity(identity)
    return identity
