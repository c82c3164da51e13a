"""The kiosk's private key: made on the kiosk, never sent anywhere.

:class:`FileKey` keeps an EC P-256 key in a file readable only by the
agent's user (0600), the default. :class:`Pkcs11Key` makes and keeps it on
a PKCS#11 token (a TPM through tpm2-pkcs11, or an HSM) and signs there:
the certificate request and the renewal proofs (renewal certifies the same
token key again). Python's ssl module cannot use a token key, so the agent's
TLS connections then go through stunnel with OpenSSL's pkcs11 engine
(:mod:`edge.tunnel`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from asn1crypto import algos, core, csr, keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from provisioning.config import KeyStoreSection
from provisioning.errors import KeyBackendError

logger = logging.getLogger(__name__)

KEY_FILE = "kiosk.key"


class KioskKey(Protocol):
    """A key pair the kiosk holds: public half, signatures, certificate requests."""

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """Return the public key."""

    def sign(self, data: bytes) -> bytes:
        """Return a DER ECDSA-SHA256 signature of ``data``."""

    def csr_pem(self, kiosk_id: str) -> str:
        """Return a PEM certificate request naming ``kiosk_id``."""


class FileKey:
    """An EC P-256 key in a 0600 file, generated on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key = self._load_or_create()

    @property
    def file(self) -> Path:
        """The key file TLS clients load."""
        return self.path

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """Return the public key."""
        return self._key.public_key()

    def sign(self, data: bytes) -> bytes:
        """Return a DER ECDSA-SHA256 signature of ``data``."""
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    def csr_pem(self, kiosk_id: str) -> str:
        """Return a PEM certificate request naming ``kiosk_id``."""
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, kiosk_id)])
        request = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(name)
            .sign(self._key, hashes.SHA256())
        )
        return request.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def replace(self) -> FileKey:
        """Generate a new key beside this one and return it (for renewal)."""
        fresh = self.path.with_name(self.path.name + ".new")
        fresh.unlink(missing_ok=True)
        return FileKey(fresh)

    def _load_or_create(self) -> ec.EllipticCurvePrivateKey:
        if self.path.exists():
            return _read_key(self.path)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        logger.info("kiosk key generated in %s", self.path)
        return key


class Pkcs11Key:
    """An EC P-256 key on a PKCS#11 token, generated there on first use."""

    def __init__(
        self,
        module: Path,
        token_label: str,
        pin: str,
        label: str,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        """Open the token and find (or make) the key ``label``.

        ``environment`` (e.g. ``SOFTHSM2_CONF``) is exported where it is not
        set yet: modules read it once, when they are first initialised.
        """
        for name, value in (environment or {}).items():
            os.environ.setdefault(name, value)
        try:
            import pkcs11
        except ImportError as exc:
            raise KeyBackendError(
                "the pkcs11 key backend needs python-pkcs11; install it or use "
                "key_backend = 'file'"
            ) from exc
        self._pkcs11 = pkcs11
        try:
            lib = pkcs11.lib(str(module))
            token = lib.get_token(token_label=token_label)
            self._session = token.open(user_pin=pin, rw=True)
        except pkcs11.PKCS11Error as exc:
            raise KeyBackendError(
                f"cannot open the PKCS#11 token {token_label!r}: {exc!r}; check "
                "the module, the label and the PIN"
            ) from exc
        self.label = label
        self._private, self._public = self._load_or_create()

    def close(self) -> None:
        """Log out and close the token session."""
        self._session.close()

    def __enter__(self) -> Pkcs11Key:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """Return the public key read from the token."""
        point = bytes(self._public[self._pkcs11.Attribute.EC_POINT])
        raw = core.OctetString.load(point).native
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)

    def sign(self, data: bytes) -> bytes:
        """Return a DER ECDSA-SHA256 signature made on the token."""
        digest = hashes.Hash(hashes.SHA256())
        digest.update(data)
        raw = self._private.sign(
            digest.finalize(), mechanism=self._pkcs11.Mechanism.ECDSA
        )
        half = len(raw) // 2
        return encode_dss_signature(
            int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
        )

    def csr_pem(self, kiosk_id: str) -> str:
        """Return a PEM certificate request signed on the token."""
        spki = self.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        info = csr.CertificationRequestInfo(
            {
                "version": "v1",
                "subject": asn1_x509.Name.build({"common_name": kiosk_id}),
                "subject_pk_info": keys.PublicKeyInfo.load(spki),
                "attributes": [],
            }
        )
        request = csr.CertificationRequest(
            {
                "certification_request_info": info,
                "signature_algorithm": algos.SignedDigestAlgorithm(
                    {"algorithm": "sha256_ecdsa"}
                ),
                "signature": self.sign(info.dump()),
            }
        )
        der = request.dump()
        loaded = x509.load_der_x509_csr(der)
        return loaded.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def _load_or_create(self) -> tuple[Any, Any]:
        pkcs11 = self._pkcs11
        try:
            private = self._session.get_key(
                object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=self.label
            )
            public = self._session.get_key(
                object_class=pkcs11.ObjectClass.PUBLIC_KEY, label=self.label
            )
            return private, public
        except pkcs11.NoSuchKey:
            pass
        from pkcs11.util.ec import encode_named_curve_parameters

        params = self._session.create_domain_parameters(
            pkcs11.KeyType.EC,
            {pkcs11.Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
            local=True,
        )
        public, private = params.generate_keypair(store=True, label=self.label)
        logger.info("kiosk key generated on the token as %s", self.label)
        return private, public


def _read_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise KeyBackendError(f"cannot read the kiosk key {path}: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyBackendError(f"{path} is not an EC key")
    return key


def token_key_opener(section: KeyStoreSection) -> Callable[[], Pkcs11Key] | None:
    """Return how to open the kiosk key on its token, or None for a file key."""
    if section.key_backend != "pkcs11" or section.pkcs11_pin is None:
        return None
    pin = section.pkcs11_pin

    def open_key() -> Pkcs11Key:
        return Pkcs11Key(
            section.pkcs11_module,
            section.pkcs11_token_label,
            pin.get_secret_value(),
            section.key_label,
            section.pkcs11_environment or {},
        )

    return open_key
