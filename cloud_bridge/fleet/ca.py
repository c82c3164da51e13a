"""The kiosk CA: kiosk client certificates, the CRL, broker and bridge certificates.

A CA of its own (EC P-256, software key under ``fleet.ca_dir``, mode 0600)
issues short-lived kiosk client certificates whose common name is the kiosk
id, the broker's server certificate and the bridge's own MQTT client
certificate (common name :data:`BRIDGE_USERNAME`, which no kiosk id can
take because kiosk ids are lower case). The same directory holds the
Ed25519 key that signs commands and the CRL the broker and bridge check.
Production would keep the CA key on the office HSM; the software key is the
development default, like the root in :mod:`cloud_bridge.pki`.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cloud_bridge.config import BridgeConfig
from cloud_bridge.errors import EnrollmentError, FleetError
from kiosk.files import write_atomic
from protocol.topics import TopicError, check_kiosk_id

logger = logging.getLogger(__name__)

BRIDGE_USERNAME = "Office-Bridge"
CA_CERTIFICATE = "kiosk-ca.pem"
CA_KEY = "kiosk-ca.key"
BROKER_CERTIFICATE = "broker.pem"
BROKER_KEY = "broker.key"
BRIDGE_CERTIFICATE = "bridge-client.pem"
BRIDGE_KEY = "bridge-client.key"
COMMAND_KEY = "command-signing.key"
COMMAND_PUBLIC_KEY = "command-signing.pub"
CRL_FILE = "kiosks.crl"

BACKDATE = timedelta(minutes=5)
CA_DAYS = 3652
SERVICE_DAYS = 397
# OpenSSL refuses every client once the CRL's next update has passed, so
# 'kiosk fleet crl' must rewrite it (then SIGHUP the broker) well within this.
CRL_DAYS = 30


@dataclass(frozen=True)
class RevokedSerial:
    """One revoked kiosk certificate."""

    serial: int
    revoked_at: datetime


class KioskCa:
    """Issue and revoke kiosk certificates with the CA under ``fleet.ca_dir``."""

    def __init__(self, directory: Path, certificate_days: int = 30) -> None:
        self.dir = directory
        self.certificate_days = certificate_days
        self.key = _read_key(directory / CA_KEY)
        self.certificate = _read_certificate(directory / CA_CERTIFICATE)

    @classmethod
    def from_config(cls, config: BridgeConfig) -> KioskCa:
        """Open the kiosk CA the configuration names, creating it if absent."""
        directory = config.path(config.fleet.ca_dir)
        ensure_kiosk_ca(directory, [config.fleet.public_broker_host])
        return cls(directory, config.fleet.certificate_days)

    @property
    def ca_pem(self) -> str:
        """The CA certificate as PEM text."""
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def crl_path(self) -> Path:
        """The CRL file the broker reads (``crlfile``)."""
        return self.dir / CRL_FILE

    def command_key(self) -> ed25519.Ed25519PrivateKey:
        """Return the Ed25519 key that signs commands."""
        key = serialization.load_pem_private_key(
            (self.dir / COMMAND_KEY).read_bytes(), password=None
        )
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise FleetError(f"{self.dir / COMMAND_KEY} is not an Ed25519 key")
        return key

    def command_public_pem(self) -> str:
        """Return the command-signing public key kiosks verify with (PEM)."""
        return (self.dir / COMMAND_PUBLIC_KEY).read_text(encoding="ascii")

    def issue(self, csr_pem: str, kiosk_id: str) -> x509.Certificate:
        """Issue a client certificate for ``kiosk_id`` from its CSR.

        Raises:
            EnrollmentError: the CSR is malformed, badly signed, not EC P-256
                or names another kiosk.
        """
        csr = _load_csr(csr_pem)
        _check_csr_name(csr, kiosk_id)
        public_key = csr.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
            public_key.curve, ec.SECP256R1
        ):
            raise EnrollmentError("the kiosk key must be EC P-256")
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, kiosk_id)])
        validity = timedelta(days=self.certificate_days)
        cert = self._build(name, public_key, validity, client=True)
        logger.info("issued kiosk certificate %x for %s", cert.serial_number, kiosk_id)
        return cert

    def issue_for_key(
        self,
        common_name: str,
        public_key: ec.EllipticCurvePublicKey,
        validity: timedelta,
        not_before: datetime | None = None,
    ) -> x509.Certificate:
        """Issue a client certificate for a key in hand (tests and the bench)."""
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        return self._build(name, public_key, validity, True, not_before=not_before)

    def write_crl(self, revoked: Iterable[RevokedSerial]) -> Path:
        """Write the CRL listing ``revoked`` and return its path."""
        now = datetime.now(UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - BACKDATE)
            .next_update(now + timedelta(days=CRL_DAYS))
        )
        for entry in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(entry.serial)
                .revocation_date(entry.revoked_at)
                .build()
            )
        crl = builder.sign(self.key, hashes.SHA256())
        write_file(self.crl_path, crl.public_bytes(serialization.Encoding.PEM), 0o644)
        return self.crl_path

    def verify_issued(self, cert: x509.Certificate) -> None:
        """Raise EnrollmentError unless ``cert`` was issued by this CA and is valid."""
        try:
            cert.verify_directly_issued_by(self.certificate)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise EnrollmentError(
                "the certificate was not issued by the kiosk CA"
            ) from exc
        now = datetime.now(UTC)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise EnrollmentError("the certificate has expired; enroll the kiosk again")

    def _build(
        self,
        name: x509.Name,
        public_key: ec.EllipticCurvePublicKey,
        validity: timedelta,
        client: bool,
        dns: Iterable[str] = (),
        not_before: datetime | None = None,
    ) -> x509.Certificate:
        return build_certificate(
            self.certificate,
            self.key,
            name,
            public_key,
            validity,
            client,
            dns,
            not_before,
        )


def build_certificate(
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    name: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    validity: timedelta,
    client: bool,
    hosts: Iterable[str] = (),
    not_before: datetime | None = None,
) -> x509.Certificate:
    """Build an end-entity certificate for TLS clients or servers."""
    start = not_before or datetime.now(UTC) - BACKDATE
    usage = (
        ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
    )
    names = list(hosts)
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(host) for host in names]), False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def ensure_kiosk_ca(directory: Path, broker_hosts: Iterable[str]) -> None:
    """Create the CA, broker and bridge certificates, command key and CRL if absent."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = _ensure_key(directory / CA_KEY)
    if not (directory / CA_CERTIFICATE).exists():
        _write_pem(directory / CA_CERTIFICATE, _self_signed(key))
    ca = _read_certificate(directory / CA_CERTIFICATE)
    hosts = sorted({"localhost", "127.0.0.1", *broker_hosts})
    _ensure_service(directory, BROKER_CERTIFICATE, BROKER_KEY, ca, key, hosts[0], hosts)
    _ensure_service(directory, BRIDGE_CERTIFICATE, BRIDGE_KEY, ca, key, BRIDGE_USERNAME)
    if not (directory / COMMAND_KEY).exists():
        command = ed25519.Ed25519PrivateKey.generate()
        write_file(directory / COMMAND_KEY, _private_pem(command), 0o600)
        public = command.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        write_file(directory / COMMAND_PUBLIC_KEY, public, 0o644)
    if not (directory / CRL_FILE).exists():
        KioskCa(directory).write_crl([])


def kiosk_id_of(cert: x509.Certificate) -> str:
    """Return the kiosk id a client certificate names (its common name)."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1:
        raise EnrollmentError("a kiosk certificate must carry exactly one common name")
    value = names[0].value
    text = value if isinstance(value, str) else value.decode()
    try:
        return check_kiosk_id(text)
    except TopicError as exc:
        raise EnrollmentError(str(exc)) from exc


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` atomically, created with ``mode`` from the start."""
    try:
        write_atomic(path, data, mode)
    except OSError as exc:
        raise FleetError(f"cannot write {path}: {exc}; check the directory") from exc


def _ensure_service(
    directory: Path,
    cert_name: str,
    key_name: str,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    hosts: Iterable[str] | None = None,
) -> None:
    if (directory / cert_name).exists():
        return
    key = _ensure_key(directory / key_name)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    validity = timedelta(days=SERVICE_DAYS)
    client = hosts is None
    cert = build_certificate(
        ca, ca_key, name, key.public_key(), validity, client, hosts or ()
    )
    _write_pem(directory / cert_name, cert)


def _self_signed(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TTPVHCC kiosk fleet"),
            x509.NameAttribute(NameOID.COMMON_NAME, "TTPVHCC Kiosk CA"),
        ]
    )
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False
        )
        .sign(key, hashes.SHA256())
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _load_csr(csr_pem: str) -> x509.CertificateSigningRequest:
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise EnrollmentError("the certificate request is not a PEM CSR") from exc
    if not csr.is_signature_valid:
        raise EnrollmentError("the certificate request's signature does not verify")
    return csr


def _check_csr_name(csr: x509.CertificateSigningRequest, kiosk_id: str) -> None:
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if [n.value for n in names] != [kiosk_id]:
        raise EnrollmentError(
            f"the certificate request must name the kiosk {kiosk_id!r} as its "
            "common name, as the enrollment token does"
        )


def _ensure_key(path: Path) -> ec.EllipticCurvePrivateKey:
    if path.exists():
        return _read_key(path)
    key = ec.generate_private_key(ec.SECP256R1())
    write_file(path, _private_pem(key), 0o600)
    return key


def _private_pem(
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_pem(path: Path, cert: x509.Certificate) -> None:
    write_file(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _read_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise FleetError(
            f"cannot read the kiosk CA key {path}: {exc}; run 'kiosk bridge "
            "broker-config' to create the kiosk CA"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise FleetError(f"{path} is not an EC private key")
    return key


def _read_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise FleetError(
            f"cannot read the certificate {path}: {exc}; run 'kiosk bridge "
            "broker-config' to create the kiosk CA"
        ) from exc
