"""The development PKI: a root CA and every certificate the bridge needs.

:func:`create_dev_pki` makes, under ``pki.dir``, files that are kept as they
are when run again:

=================  ===========================================================
``root-ca.pem``    the trust anchor (self-signed, 10 years)
``root-ca.key``    its key, in software (mode 0600; development only)
``signing.pem``    the office's PDF signing certificate, for the token key
                   ``hsm.signing_key_label`` (digitalSignature, nonRepudiation)
``seal.pem``       the QR seal certificate, for the token key
                   ``hsm.seal_key_label``
``tsa.pem/.key``   the timestamp authority (timeStamping, critical)
``ocsp.pem/.key``  the OCSP responder (OCSPSigning, id-pkix-ocsp-nocheck)
``revocations``    ``revocations.json``: serials revoked with
                   :func:`revoke_certificate`, read by the CRL and OCSP services
=================  ===========================================================

Every certificate is issued directly by the root and points at the CRL, the
OCSP responder and the root certificate served by
:mod:`cloud_bridge.trust_services` under ``pki.revocation_url``. The signing
and seal certificates and the root are stored on the token as well. All keys
are EC P-256.

A certificate is issued again only when it is missing, expired, for another
key (the token was recreated) or not signed by the current root.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    NameOID,
    ObjectIdentifier,
)

from cloud_bridge.config import BridgeConfig
from cloud_bridge.errors import PkiError
from cloud_bridge.hsm import HsmToken
from kiosk.files import write_atomic

logger = logging.getLogger(__name__)

ROOT_CERTIFICATE = "root-ca.pem"
ROOT_KEY = "root-ca.key"
SIGNING_CERTIFICATE = "signing.pem"
SEAL_CERTIFICATE = "seal.pem"
TSA_CERTIFICATE = "tsa.pem"
TSA_KEY = "tsa.key"
OCSP_CERTIFICATE = "ocsp.pem"
OCSP_KEY = "ocsp.key"
REVOCATIONS = "revocations.json"

# Label of the root certificate's copy on the token.
ROOT_CERT_LABEL = "root-ca"

# Where the trust services answer, below pki.revocation_url.
CRL_PATH = "/crl/root.crl"
OCSP_PATH = "/ocsp"
CA_ISSUERS_PATH = "/ca/root.crt"

# Certificates start a little in the past so a slow clock elsewhere accepts them.
BACKDATE = timedelta(minutes=5)

ORGANIZATION = "TTPVHCC development PKI (not for production)"
# X.520 upper bound of a common name or organisation name, in characters.
NAME_LIMIT = 64


@dataclass(frozen=True)
class CertificateProfile:
    """What a certificate issued by the root may be used for."""

    key_usage: x509.KeyUsage
    extended_key_usage: tuple[ObjectIdentifier, ...] = ()
    ocsp_nocheck: bool = False
    revocation_pointers: bool = True


def _key_usage(*, non_repudiation: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=non_repudiation,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


# pyHanko wants nonRepudiation on a signer's certificate to call it trusted.
SIGNING_PROFILE = CertificateProfile(_key_usage(non_repudiation=True))
SEAL_PROFILE = CertificateProfile(_key_usage())
TSA_PROFILE = CertificateProfile(
    _key_usage(non_repudiation=True), (ExtendedKeyUsageOID.TIME_STAMPING,)
)
# A responder certificate that is checked for revocation would need its own
# responder; id-pkix-ocsp-nocheck says not to, so it has no pointers.
OCSP_PROFILE = CertificateProfile(
    _key_usage(),
    (ExtendedKeyUsageOID.OCSP_SIGNING,),
    ocsp_nocheck=True,
    revocation_pointers=False,
)


@dataclass(frozen=True)
class DevPki:
    """The development PKI's certificates and its software keys.

    ``created`` names what the call that returned this object made (empty
    when everything existed, and always empty from :func:`load_dev_pki`).
    """

    dir: Path
    root: x509.Certificate
    root_key: ec.EllipticCurvePrivateKey
    signing: x509.Certificate
    seal: x509.Certificate
    tsa: x509.Certificate
    tsa_key: ec.EllipticCurvePrivateKey
    ocsp: x509.Certificate
    ocsp_key: ec.EllipticCurvePrivateKey
    created: tuple[str, ...] = ()

    @property
    def trust_roots(self) -> list[x509.Certificate]:
        """The trust anchors copies signed with this PKI validate against."""
        return [self.root]

    @property
    def revocations_path(self) -> Path:
        """The file :func:`revoke_certificate` writes and the services read."""
        return self.dir / REVOCATIONS


@dataclass(frozen=True)
class Revocation:
    """One revoked certificate, by serial number."""

    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags


def create_dev_pki(config: BridgeConfig, token: HsmToken) -> DevPki:
    """Create the development PKI, keeping whatever exists and is still valid.

    The token must hold the keys ``hsm.signing_key_label`` and
    ``hsm.seal_key_label`` (``kiosk bridge init`` generates them).

    Raises:
        HsmError: a key is missing on the token.
        PkiError: a file cannot be read or written.
    """
    pki_dir = config.path(config.pki.dir)
    pki_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    created: list[str] = []

    root_key = _ensure_key(pki_dir / ROOT_KEY, created)
    root = _ensure_root(pki_dir / ROOT_CERTIFICATE, root_key, config, created)
    issuer = _Issuer(root, root_key, config)
    hsm = config.hsm
    signing = issuer.ensure(
        pki_dir / SIGNING_CERTIFICATE,
        token.public_key(hsm.signing_key_label),
        _office_name(config, "Document signing"),
        SIGNING_PROFILE,
        created,
    )
    seal = issuer.ensure(
        pki_dir / SEAL_CERTIFICATE,
        token.public_key(hsm.seal_key_label),
        _office_name(config, "QR seal"),
        SEAL_PROFILE,
        created,
    )
    tsa_key = _ensure_key(pki_dir / TSA_KEY, created)
    tsa = issuer.ensure(
        pki_dir / TSA_CERTIFICATE,
        tsa_key.public_key(),
        _pki_name("TTPVHCC Development Timestamp Authority"),
        TSA_PROFILE,
        created,
    )
    ocsp_key = _ensure_key(pki_dir / OCSP_KEY, created)
    ocsp = issuer.ensure(
        pki_dir / OCSP_CERTIFICATE,
        ocsp_key.public_key(),
        _pki_name("TTPVHCC Development OCSP Responder"),
        OCSP_PROFILE,
        created,
    )

    on_token = {
        hsm.signing_key_label: signing,
        hsm.seal_key_label: seal,
        ROOT_CERT_LABEL: root,
    }
    for label, cert in on_token.items():
        if token.store_certificate(label, cert):
            created.append(f"certificate {label!r} on token {token.label!r}")
    return DevPki(
        dir=pki_dir,
        root=root,
        root_key=root_key,
        signing=signing,
        seal=seal,
        tsa=tsa,
        tsa_key=tsa_key,
        ocsp=ocsp,
        ocsp_key=ocsp_key,
        created=tuple(created),
    )


def load_dev_pki(config: BridgeConfig) -> DevPki:
    """Load the development PKI that :func:`create_dev_pki` made.

    Raises:
        PkiError: a file is missing or unreadable.
    """
    pki_dir = config.path(config.pki.dir)
    return DevPki(
        dir=pki_dir,
        root=read_certificate(pki_dir / ROOT_CERTIFICATE),
        root_key=read_private_key(pki_dir / ROOT_KEY),
        signing=read_certificate(pki_dir / SIGNING_CERTIFICATE),
        seal=read_certificate(pki_dir / SEAL_CERTIFICATE),
        tsa=read_certificate(pki_dir / TSA_CERTIFICATE),
        tsa_key=read_private_key(pki_dir / TSA_KEY),
        ocsp=read_certificate(pki_dir / OCSP_CERTIFICATE),
        ocsp_key=read_private_key(pki_dir / OCSP_KEY),
    )


def issue_certificate(
    root: x509.Certificate,
    root_key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    profile: CertificateProfile,
    validity: timedelta,
    revocation_url: str | None,
) -> x509.Certificate:
    """Issue an end-entity certificate signed by the root.

    With ``revocation_url`` (and a profile that wants them), the certificate
    names the CRL, OCSP responder and root certificate served below it.
    """
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(root.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(profile.key_usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
        .add_extension(_authority_key_id(root), critical=False)
    )
    if profile.extended_key_usage:
        # RFC 3161 requires the timeStamping usage to be critical.
        eku = x509.ExtendedKeyUsage(list(profile.extended_key_usage))
        builder = builder.add_extension(eku, critical=True)
    if profile.ocsp_nocheck:
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
    if profile.revocation_pointers and revocation_url:
        for extension in _revocation_pointers(revocation_url):
            builder = builder.add_extension(extension, critical=False)
    return builder.sign(root_key, hashes.SHA256())


def revoke_certificate(
    config: BridgeConfig,
    serial: int,
    reason: x509.ReasonFlags | str = x509.ReasonFlags.unspecified,
) -> Revocation:
    """Record that the certificate with ``serial`` is revoked; return the record.

    Revoking a serial twice keeps the first record. The CRL and OCSP
    services notice the change on their next request.

    Args:
        serial: the certificate's serial number.
        reason: a ReasonFlags member or its name (``"key_compromise"``) or
            value (``"keyCompromise"``).
    """
    flag = _reason(reason)
    path = config.path(config.pki.dir) / REVOCATIONS
    with _locked(path):
        revocations = load_revocations(path)
        if serial in revocations:
            return revocations[serial]
        record = Revocation(serial, datetime.now(UTC).replace(microsecond=0), flag)
        revocations[serial] = record
        _write_revocations(path, revocations.values())
    logger.info("revoked certificate serial %x (%s)", serial, flag.name)
    return record


def load_revocations(path: Path) -> dict[int, Revocation]:
    """Read the revocations file (an absent file means nothing is revoked)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {
            int(entry["serial"], 16): Revocation(
                int(entry["serial"], 16),
                datetime.fromisoformat(entry["revoked_at"]),
                x509.ReasonFlags[entry["reason"]],
            )
            for entry in data["revoked"]
        }
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PkiError(
            f"the revocation list {path} is unreadable ({exc}); restore it from a "
            "backup, or delete it to revoke nothing"
        ) from exc


def read_certificate(path: Path) -> x509.Certificate:
    """Read a PEM certificate file."""
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError as exc:
        raise PkiError(
            f"certificate {path} is missing; run 'kiosk bridge init' to create "
            "the development PKI"
        ) from exc
    except (OSError, ValueError) as exc:
        raise PkiError(f"cannot read the certificate {path}: {exc}") from exc


def read_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Read an unencrypted PEM EC private key file."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise PkiError(
            f"key {path} is missing; run 'kiosk bridge init' to create the "
            "development PKI"
        ) from exc
    except (OSError, ValueError, TypeError) as exc:
        raise PkiError(f"cannot read the private key {path}: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{path} is not an EC private key")
    return key


class _Issuer:
    """Issues and keeps the root's end-entity certificates."""

    def __init__(
        self,
        root: x509.Certificate,
        root_key: ec.EllipticCurvePrivateKey,
        config: BridgeConfig,
    ) -> None:
        self.root = root
        self.root_key = root_key
        self.validity = timedelta(days=config.pki.leaf_validity_days)
        self.revocation_url = config.pki.revocation_url

    def ensure(
        self,
        path: Path,
        public_key: ec.EllipticCurvePublicKey,
        subject: x509.Name,
        profile: CertificateProfile,
        created: list[str],
    ) -> x509.Certificate:
        """Return the certificate at ``path``, issuing it again if unusable."""
        cert = _usable_certificate(path, public_key, self.root)
        if cert is not None:
            return cert
        cert = issue_certificate(
            self.root,
            self.root_key,
            subject,
            public_key,
            profile,
            self.validity,
            self.revocation_url,
        )
        _write_file(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        created.append(f"certificate {path.name}")
        return cert


def _ensure_key(path: Path, created: list[str]) -> ec.EllipticCurvePrivateKey:
    if path.exists():
        return read_private_key(path)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_file(path, pem, 0o600)
    created.append(f"key {path.name}")
    return key


def _ensure_root(
    path: Path,
    key: ec.EllipticCurvePrivateKey,
    config: BridgeConfig,
    created: list[str],
) -> x509.Certificate:
    if path.exists():
        cert = read_certificate(path)
        if _spki(cert.public_key()) == _spki(key.public_key()) and not _expired(cert):
            return cert
    name = _pki_name("TTPVHCC Development Root CA")
    now = datetime.now(UTC)
    ca_usage = x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=config.pki.root_validity_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ca_usage, critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False
        )
        .sign(key, hashes.SHA256())
    )
    _write_file(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    created.append(f"certificate {path.name}")
    return cert


def _usable_certificate(
    path: Path, public_key: ec.EllipticCurvePublicKey, root: x509.Certificate
) -> x509.Certificate | None:
    if not path.exists():
        return None
    cert = read_certificate(path)
    if _spki(cert.public_key()) != _spki(public_key) or _expired(cert):
        return None
    try:
        cert.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature):
        return None
    return cert


def _expired(cert: x509.Certificate) -> bool:
    return cert.not_valid_after_utc <= datetime.now(UTC)


def _spki(key: object) -> bytes:
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return b""
    return key.public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo,
    )


def _authority_key_id(root: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)


def _revocation_pointers(base_url: str) -> list[x509.ExtensionType]:
    base = base_url.rstrip("/")
    crl = x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(base + CRL_PATH)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )
    aia = x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP,
                x509.UniformResourceIdentifier(base + OCSP_PATH),
            ),
            x509.AccessDescription(
                AuthorityInformationAccessOID.CA_ISSUERS,
                x509.UniformResourceIdentifier(base + CA_ISSUERS_PATH),
            ),
        ]
    )
    return [crl, aia]


def _office_name(config: BridgeConfig, unit: str) -> x509.Name:
    office = config.office()
    name = office.name[:NAME_LIMIT]
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
            x509.NameAttribute(
                NameOID.ORGANIZATIONAL_UNIT_NAME, f"{config.office_code} {unit}"
            ),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )


def _pki_name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _reason(reason: x509.ReasonFlags | str) -> x509.ReasonFlags:
    if isinstance(reason, x509.ReasonFlags):
        flag = reason
    else:
        try:
            flag = x509.ReasonFlags[reason]
        except KeyError:
            try:
                flag = x509.ReasonFlags(reason)
            except ValueError as exc:
                names = ", ".join(f.name for f in x509.ReasonFlags)
                raise PkiError(
                    f"unknown revocation reason {reason!r}; use one of {names}"
                ) from exc
    if flag is x509.ReasonFlags.remove_from_crl:
        raise PkiError("remove_from_crl is not a reason to revoke a certificate")
    return flag


def _write_revocations(path: Path, revocations: Iterable[Revocation]) -> None:
    entries = [
        {
            "serial": format(r.serial, "x"),
            "revoked_at": r.revoked_at.isoformat(),
            "reason": r.reason.name,
        }
        for r in sorted(revocations, key=lambda r: r.serial)
    ]
    text = json.dumps({"revoked": entries}, indent=2) + "\n"
    _write_file(path, text.encode("utf-8"), 0o644)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside ``path`` (several processes may revoke)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as handle:  # noqa: PTH123
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _write_file(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` atomically, created with ``mode`` from the start."""
    try:
        write_atomic(path, data, mode)
    except OSError as exc:
        raise PkiError(f"cannot write {path}: {exc}") from exc
