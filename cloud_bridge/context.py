"""Build the bridge's parts from its configuration, once per process.

The command line, the HTTP server and the benchmark all need the same
collaborators: the database, the archive, the HSM token, the PDF signer and
the seal key. :class:`Bridge` opens them lazily and closes them together, so
a command that only verifies never touches the HSM.
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.sign.pkcs11 import PKCS11Signer

from cloud_bridge.archive import Archive, BlobStore
from cloud_bridge.config import BridgeConfig
from cloud_bridge.copies import CopyService, SealKey
from cloud_bridge.errors import PkiError
from cloud_bridge.hsm import HsmToken, open_token
from cloud_bridge.signing import CopySigner, http_timestamper
from cloud_bridge.store import CopyStore
from kiosk.memory import keep_freed_heap, return_large_blocks
from protocol.seal import TrustList, certificate_kid

logger = logging.getLogger(__name__)

ROOT_CERTIFICATE = "root-ca.pem"
SIGNING_CERTIFICATE = "signing.pem"
SEAL_CERTIFICATE = "seal.pem"
TRUST_LIST = "trust-list.json"


class Bridge:
    """The bridge's collaborators for one process, opened on first use."""

    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        return_large_blocks()
        keep_freed_heap()

    @cached_property
    def store(self) -> CopyStore:
        """The bridge database, its schema created or upgraded if needed."""
        store = CopyStore(self.config.database_url())
        store.migrate()
        return store

    @cached_property
    def archive(self) -> BlobStore:
        """The content-addressed archive of pages and signed copies."""
        section = self.config.archive
        if section.backend == "s3":
            from cloud_bridge.object_archive import ObjectArchive

            store = ObjectArchive.from_section(section.s3, self.config.data_dir)
            store.check()
            return store
        return Archive(
            self.config.path(section.path), min_free_bytes=section.min_free_bytes
        )

    @cached_property
    def token(self) -> HsmToken:
        """The office's PKCS#11 token, logged in."""
        return open_token(self.config)

    @cached_property
    def trust_roots(self) -> list[asn1_x509.Certificate]:
        """The trust anchors copies are validated against."""
        return [load_asn1_certificate(self.pki_file(ROOT_CERTIFICATE))]

    @cached_property
    def trust_list(self) -> TrustList:
        """The published list of seal keys, for offline QR verification."""
        path = self.pki_file(TRUST_LIST)
        if path.exists():
            return TrustList.load(path)
        seal = _load_x509(self.pki_file(SEAL_CERTIFICATE))
        office = self.config.office()
        return TrustList.from_certificates(
            [(seal, self.config.office_code, office.name)]
        )

    @cached_property
    def pdf_signer(self) -> PKCS11Signer:
        """pyHanko's signer for the office's signing key on the token."""
        return self.token.pdf_signer(
            key_label=self.config.hsm.signing_key_label,
            signing_cert=load_asn1_certificate(self.pki_file(SIGNING_CERTIFICATE)),
            chain=self.trust_roots,
        )

    @cached_property
    def signer(self) -> CopySigner:
        """The copy signer at the configured PAdES level."""
        timestamp = self.config.timestamp
        return CopySigner(
            self.pdf_signer,
            self.trust_roots,
            level=self.config.signing.level,
            timestamper=http_timestamper(timestamp.url, timestamp.timeout_s),
            revocation_cache_s=self.config.signing.revocation_cache_s,
        )

    @cached_property
    def copies(self) -> CopyService:
        """The service that makes, resumes and revokes copies."""
        seal = _load_x509(self.pki_file(SEAL_CERTIFICATE))
        label = self.config.hsm.seal_key_label
        token = self.token

        def sign_seal(data: bytes) -> bytes:
            return token.sign_ecdsa_sha256(label, data)

        return CopyService(
            self.config,
            self.store,
            self.archive,
            self.signer,
            SealKey(kid=certificate_kid(seal), sign=sign_seal),
            check_hsm=token.check,
        )

    def pki_file(self, name: str) -> Path:
        """Return the path of a file in the PKI directory."""
        return self.config.path(self.config.pki.dir) / name

    def close(self) -> None:
        """Close whatever was opened."""
        if "store" in self.__dict__:
            self.store.close()
        if "token" in self.__dict__:
            self.token.close()


def _load_x509(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError as exc:
        raise PkiError(
            f"certificate {path} is missing; run 'kiosk bridge init' to create "
            "the development PKI, or install the office's certificates there"
        ) from exc
    except ValueError as exc:
        raise PkiError(f"{path} is not a PEM certificate: {exc}") from exc


def load_asn1_certificate(path: Path) -> asn1_x509.Certificate:
    """Load a PEM certificate as asn1crypto (pyHanko's) type."""
    return asn1_x509.Certificate.load(_load_x509(path).public_bytes(Encoding.DER))
