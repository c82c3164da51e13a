"""Online TUF keys on the office's PKCS#11 token (SoftHSM2 in development).

With ``ota.key_backend = "pkcs11"`` the roles in ``ota.hsm_roles`` sign
with EC P-256 keys that are generated on the bridge's token (the ``[hsm]``
section) and never leave it; the others keep their 0600 key files. Keys are
found by label, ``<ota.hsm_key_prefix>-<role>-<n>``. Signatures are
``ecdsa-sha2-nistp256`` in DER, which every TUF client verifies.

The token is the bridge's :class:`~cloud_bridge.hsm.HsmToken`, so the same
lock and login serve the copy signing and the metadata signing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from cloud_bridge.errors import HsmError
from cloud_bridge.hsm import HsmToken
from ota.config import OtaRepositorySection
from ota.errors import KeyFileError
from ota.tufapi import Key, SecretsHandler, Signature, Signer, SSlibKey

logger = logging.getLogger(__name__)

P256_SIGNATURE_BYTES = 64


def hsm_key_label(prefix: str, role: str, index: int) -> str:
    """Return the token label of ``role``'s key number ``index``."""
    return f"{prefix}-{role}-{index}"


class HsmSigner(Signer):
    """Sign metadata with an EC P-256 key that stays on the token."""

    def __init__(self, token: HsmToken, label: str) -> None:
        self.token = token
        self.label = label
        try:
            public = token.public_key(label)
        except HsmError as exc:
            raise KeyFileError(
                f"the OTA key {label!r} is not on the token: {exc}; run 'kiosk "
                "ota init' with ota.key_backend = 'pkcs11'"
            ) from exc
        self._public_key = SSlibKey.from_crypto(public)

    @property
    def public_key(self) -> Key:
        """The public key kiosks verify this signer's signatures with."""
        return self._public_key

    def sign(self, payload: bytes) -> Signature:
        """Return a DER ECDSA-SHA256 signature of ``payload`` made on the token."""
        try:
            raw = self.token.sign_ecdsa_sha256(self.label, payload)
        except HsmError as exc:
            raise KeyFileError(
                f"the token could not sign with {self.label!r}: {exc}"
            ) from exc
        half = P256_SIGNATURE_BYTES // 2
        der = encode_dss_signature(
            int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
        )
        return Signature(self._public_key.keyid, der.hex())

    @classmethod
    def from_priv_key_uri(
        cls,
        priv_key_uri: str,
        public_key: Key,
        secrets_handler: SecretsHandler | None = None,
    ) -> Signer:
        """Refuse: these signers are built from the configured token, not URIs."""
        raise KeyFileError(
            "HSM signers are opened from the bridge configuration, not a key URI"
        )


def hsm_signers(
    token: HsmToken,
    settings: OtaRepositorySection,
    counts: Mapping[str, int],
    *,
    create: bool = False,
) -> dict[str, Sequence[Signer]]:
    """Return the HSM signers of ``settings.hsm_roles``, ``counts[role]`` each.

    With ``create`` the keys that are missing are generated on the token.

    Raises:
        KeyFileError: a key is missing (without ``create``) or unusable.
    """
    signers: dict[str, Sequence[Signer]] = {}
    for role in settings.hsm_roles:
        labels = [
            hsm_key_label(settings.hsm_key_prefix, role, index + 1)
            for index in range(counts.get(role, 1))
        ]
        if create:
            for label in labels:
                _ensure_key(token, label)
        signers[role] = [HsmSigner(token, label) for label in labels]
    return signers


def _ensure_key(token: HsmToken, label: str) -> None:
    try:
        if token.has_private_key(label):
            return
        token.generate_ec_key(label)
    except HsmError as exc:
        raise KeyFileError(f"cannot make the OTA key {label!r}: {exc}") from exc
    logger.info("generated OTA signing key %s on the token", label)
