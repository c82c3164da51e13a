"""Make and verify the compact signed seal printed in a copy's QR code.

The seal follows the EU Digital COVID Certificate's layout: the claims are a
CBOR map with small integer keys, signed as a COSE_Sign1 (ES256 on P-256),
zlib-compressed when that makes it shorter, Base45-encoded and prefixed with
``VC1:``. The protected header holds the algorithm and the ``kid``, the first
8 bytes of the SHA-256 of the seal certificate's DER.

Signing goes through an injected callable that returns the raw ``r || s``
signature (64 bytes) over SHA-256 of its input, so the key can stay in an HSM.
Verification is offline, against a :class:`TrustList` of seal keys.

The page digest is defined as SHA-256 over the concatenation of the SHA-256 of
each page image (the exact bytes embedded in the PDF), in page order.

The QR code carries ``<LOOKUP URL>/<COPY ID>``, a space and the seal, all
upper case so that the whole text stays in QR alphanumeric mode.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import base45
import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from protocol.errors import (
    IdentifierError,
    KeyValidityError,
    NotASealError,
    QrPayloadError,
    SealDecodeError,
    SealEncodingError,
    SealError,
    SealMismatchError,
    SealPrefixError,
    SealSignatureError,
    TrustListError,
    UnknownKeyError,
)
from protocol.identifier import parse_copy_id

logger = logging.getLogger(__name__)

PREFIX = "VC1:"
QR_SEPARATOR = " "
QR_ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
TRUST_LIST_FORMAT = "ttpvhcc-seal-trust-list"

COSE_SIGN1_TAG = 18
COSE_ALG = 1
COSE_KID = 4
ES256 = -7
KID_LENGTH = 8
SIGNATURE_LENGTH = 64
MAX_SEAL_BYTES = 4096

CLAIM_COPY_ID = 1
CLAIM_NUMBER = 2
CLAIM_BOOK = 3
CLAIM_ISSUED = 4
CLAIM_OFFICE = 5
CLAIM_DOCUMENT_TYPE = 6
CLAIM_PAGE_COUNT = 7
CLAIM_PAGES_DIGEST = 8

Signer = Callable[[bytes], bytes]


def page_digest(image: bytes) -> bytes:
    """Return the SHA-256 of one page image's bytes."""
    return hashlib.sha256(image).digest()


def pages_digest(images: Sequence[bytes]) -> bytes:
    """Return SHA-256 over the page images' SHA-256 digests, in page order."""
    return combine_page_digests([page_digest(image) for image in images])


def combine_page_digests(digests: Sequence[bytes]) -> bytes:
    """Return the pages digest from each page's SHA-256, already computed."""
    return hashlib.sha256(b"".join(digests)).digest()


@dataclass(frozen=True)
class SealClaims:
    """What a seal states about one certified copy."""

    copy_id: str
    certification_number: int
    book: str
    issue_date: date
    office_code: str
    document_type: str
    page_count: int
    pages_digest: bytes

    def __post_init__(self) -> None:
        """Check the claims' ranges so that no oversized seal is ever made."""
        try:
            object.__setattr__(self, "copy_id", parse_copy_id(self.copy_id))
        except IdentifierError as exc:
            raise SealError(f"the seal's copy identifier is invalid: {exc}") from exc
        _require(1 <= self.certification_number < 10**9, "certification number")
        _require(0 < len(self.book) <= 24, "book")
        _require(0 < len(self.office_code) <= 24, "office code")
        _require(0 < len(self.document_type) <= 32, "document type")
        _require(1 <= self.page_count <= 1000, "page count")
        _require(len(self.pages_digest) == 32, "pages digest")

    def to_cbor(self) -> bytes:
        """Return the claims as a CBOR map with small integer keys."""
        return cbor2.dumps(
            {
                CLAIM_COPY_ID: self.copy_id,
                CLAIM_NUMBER: self.certification_number,
                CLAIM_BOOK: self.book,
                CLAIM_ISSUED: self.issue_date.isoformat(),
                CLAIM_OFFICE: self.office_code,
                CLAIM_DOCUMENT_TYPE: self.document_type,
                CLAIM_PAGE_COUNT: self.page_count,
                CLAIM_PAGES_DIGEST: self.pages_digest,
            }
        )

    @classmethod
    def from_cbor(cls, data: bytes) -> SealClaims:
        """Return the claims decoded from a CBOR map.

        Raises:
            SealDecodeError: the map is not CBOR, lacks a claim or has a bad one.
        """
        try:
            claims = cbor2.loads(data)
            return cls(
                copy_id=claims[CLAIM_COPY_ID],
                certification_number=_typed(claims[CLAIM_NUMBER], int),
                book=_typed(claims[CLAIM_BOOK], str),
                issue_date=date.fromisoformat(_typed(claims[CLAIM_ISSUED], str)),
                office_code=_typed(claims[CLAIM_OFFICE], str),
                document_type=_typed(claims[CLAIM_DOCUMENT_TYPE], str),
                page_count=_typed(claims[CLAIM_PAGE_COUNT], int),
                pages_digest=_typed(claims[CLAIM_PAGES_DIGEST], bytes),
            )
        except (cbor2.CBORDecodeError, KeyError, TypeError, ValueError) as exc:
            raise SealDecodeError(
                f"the seal's claims are malformed ({exc}); the seal was not made "
                "by a certifying office"
            ) from exc
        except SealError as exc:
            raise SealDecodeError(f"the seal's claims are out of range: {exc}") from exc


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise SealError(f"the seal's {what} is missing or out of range")


def _typed(value: Any, kind: type[Any]) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"expected {kind.__name__}, found {type(value).__name__}")
    return value


def certificate_kid(certificate: x509.Certificate) -> bytes:
    """Return the seal key id: the first 8 bytes of SHA-256 of the DER."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).digest()[:KID_LENGTH]


def ecdsa_signer(private_key: ec.EllipticCurvePrivateKey) -> Signer:
    """Return a signer for a software P-256 key (tests and development)."""

    def sign(data: bytes) -> bytes:
        """Return the raw ``r || s`` ECDSA signature over SHA-256 of ``data``."""
        der = private_key.sign(data, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    return sign


def sign_seal(claims: SealClaims, sign: Signer, kid: bytes) -> str:
    """Return the seal text (``VC1:`` and Base45) for ``claims``.

    Args:
        claims: What the seal states.
        sign: Returns raw ``r || s`` over SHA-256 of its input (the HSM).
        kid: The seal certificate's key id, from :func:`certificate_kid`.
    """
    if len(kid) != KID_LENGTH:
        raise SealError(f"a seal key id has {KID_LENGTH} bytes, not {len(kid)}")
    protected = cbor2.dumps({COSE_ALG: ES256, COSE_KID: kid})
    payload = claims.to_cbor()
    signature = sign(_sig_structure(protected, payload))
    if len(signature) != SIGNATURE_LENGTH:
        raise SealError(
            f"the signer returned {len(signature)} bytes instead of a raw "
            "64-byte P-256 signature; check that the seal key is EC P-256"
        )
    message = cbor2.dumps(
        cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, signature])
    )
    compressed = zlib.compress(message, 9)
    body = compressed if len(compressed) < len(message) else message
    encoded: bytes = base45.b45encode(body)
    return PREFIX + encoded.decode("ascii")


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", payload])


@dataclass(frozen=True)
class TrustEntry:
    """One seal key an office may use, and when."""

    kid: bytes
    office_code: str
    office_name: str
    public_key: ec.EllipticCurvePublicKey
    valid_from: date
    valid_until: date
    certificate: x509.Certificate | None = field(default=None, compare=False)

    @classmethod
    def from_certificate(
        cls, certificate: x509.Certificate, office_code: str, office_name: str
    ) -> TrustEntry:
        """Return the entry for a seal certificate, valid as the certificate is."""
        key = certificate.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise TrustListError(
                f"the seal certificate of office {office_code} does not hold an "
                "EC P-256 key; issue a P-256 seal certificate"
            )
        return cls(
            kid=certificate_kid(certificate),
            office_code=office_code,
            office_name=office_name,
            public_key=key,
            valid_from=certificate.not_valid_before_utc.date(),
            valid_until=certificate.not_valid_after_utc.date(),
            certificate=certificate,
        )

    def to_dict(self) -> dict[str, str]:
        """Return the entry as the trust list's JSON object."""
        entry = {
            "kid": self.kid.hex(),
            "office_code": self.office_code,
            "office_name": self.office_name,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat(),
        }
        if self.certificate is not None:
            pem = self.certificate.public_bytes(serialization.Encoding.PEM)
            entry["certificate"] = pem.decode("ascii")
        else:
            pem = self.public_key.public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            )
            entry["public_key"] = pem.decode("ascii")
        return entry

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrustEntry:
        """Return the entry read from the trust list's JSON object."""
        kid = bytes.fromhex(data["kid"])
        certificate = None
        key: object
        if "certificate" in data:
            pem = data["certificate"].encode("ascii")
            certificate = x509.load_pem_x509_certificate(pem)
            key = certificate.public_key()
            if certificate_kid(certificate) != kid:
                raise TrustListError(
                    f"kid {kid.hex()} does not match its certificate; "
                    "regenerate the trust list"
                )
        else:
            key = serialization.load_pem_public_key(data["public_key"].encode("ascii"))
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise TrustListError(f"key {kid.hex()} is not an EC P-256 key")
        return cls(
            kid=kid,
            office_code=data["office_code"],
            office_name=data["office_name"],
            public_key=key,
            valid_from=date.fromisoformat(data["valid_from"]),
            valid_until=date.fromisoformat(data["valid_until"]),
            certificate=certificate,
        )


class TrustList:
    """The seal keys a verifier trusts, looked up by kid."""

    def __init__(self, entries: Iterable[TrustEntry]) -> None:
        """Index ``entries`` by kid."""
        self.entries: dict[bytes, TrustEntry] = {}
        for entry in entries:
            if entry.kid in self.entries:
                raise TrustListError(f"kid {entry.kid.hex()} is listed twice")
            self.entries[entry.kid] = entry

    @classmethod
    def from_certificates(
        cls, certificates: Iterable[tuple[x509.Certificate, str, str]]
    ) -> TrustList:
        """Return a trust list of ``(certificate, office_code, office_name)``."""
        return cls(
            TrustEntry.from_certificate(certificate, code, name)
            for certificate, code, name in certificates
        )

    @classmethod
    def from_json(cls, text: str) -> TrustList:
        """Return the trust list read from its JSON text."""
        try:
            document = json.loads(text)
            if document.get("format") != TRUST_LIST_FORMAT:
                raise ValueError(f"format is not {TRUST_LIST_FORMAT!r}")
            return cls(TrustEntry.from_dict(item) for item in document["keys"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TrustListError(
                f"the seal trust list is malformed ({exc}); fetch it again from "
                "the office"
            ) from exc

    @classmethod
    def load(cls, path: Path) -> TrustList:
        """Return the trust list read from a JSON file."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TrustListError(
                f"cannot read the seal trust list {path}: {exc.strerror}"
            ) from exc
        return cls.from_json(text)

    def to_json(self) -> str:
        """Return the trust list as JSON text."""
        keys = [entry.to_dict() for entry in self.entries.values()]
        document = {"format": TRUST_LIST_FORMAT, "version": 1, "keys": keys}
        return json.dumps(document, indent=2, ensure_ascii=False)

    def find(self, kid: bytes) -> TrustEntry:
        """Return the entry for ``kid``.

        Raises:
            UnknownKeyError: no entry has that kid.
        """
        try:
            return self.entries[kid]
        except KeyError as exc:
            raise UnknownKeyError(
                f"the seal was made with key {kid.hex()}, which is not in the "
                "trust list; update the trust list, or treat the copy as forged"
            ) from exc


@dataclass(frozen=True)
class _Sign1:
    protected: bytes
    kid: bytes
    payload: bytes
    signature: bytes


def read_seal(text: str) -> tuple[bytes, SealClaims]:
    """Return the kid and claims of a seal WITHOUT checking its signature."""
    message = _decode_sign1(_unwrap(text))
    return message.kid, SealClaims.from_cbor(message.payload)


def verify_seal(
    text: str, trust_list: TrustList, today: date | None = None
) -> SealClaims:
    """Return the claims of a seal whose signature and key check out.

    Raises:
        NotASealError, SealPrefixError, SealEncodingError, SealDecodeError:
            the text is not a readable seal.
        UnknownKeyError: the key is not in the trust list.
        SealSignatureError: the seal was altered or signed by another key.
        KeyValidityError: the key was not valid on the issue date, the issue
            date is in the future, or the office does not own the key.
    """
    message = _decode_sign1(_unwrap(text))
    entry = trust_list.find(message.kid)
    _check_signature(entry, message)
    claims = SealClaims.from_cbor(message.payload)
    _check_validity(entry, claims, today or date.today())
    logger.debug(
        "seal of copy %s verified with key %s", claims.copy_id, entry.kid.hex()
    )
    return claims


def _unwrap(text: str) -> bytes:
    text = text.strip()
    head, colon, body = text.partition(":")
    if not colon or not (2 <= len(head) <= 4) or not head.isalnum():
        raise NotASealError(
            "the text is not a copy seal (it has no 'VC1:' prefix); scan the "
            "QR code printed on the certified copy"
        )
    if head.upper() + ":" != PREFIX:
        raise SealPrefixError(
            f"the seal format {head}: is not supported (expected {PREFIX}); "
            "update the verification tool"
        )
    try:
        data: bytes = base45.b45decode(body)
    except ValueError as exc:
        raise SealEncodingError(
            "the seal text is damaged (not valid Base45); scan the QR code again"
        ) from exc
    if data[:1] == b"\x78":
        data = _inflate(data)
    return data


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        plain = inflater.decompress(data, MAX_SEAL_BYTES)
    except zlib.error as exc:
        raise SealDecodeError(f"the seal's compressed data is corrupt: {exc}") from exc
    if inflater.unconsumed_tail or not inflater.eof:
        raise SealDecodeError("the seal's compressed data is truncated or too long")
    return plain


def _decode_sign1(data: bytes) -> _Sign1:
    try:
        item = cbor2.loads(data)
        if isinstance(item, cbor2.CBORTag):
            if item.tag != COSE_SIGN1_TAG:
                raise ValueError(f"CBOR tag {item.tag} is not COSE_Sign1")
            item = item.value
        protected, _unprotected, payload, signature = item
        header = cbor2.loads(protected)
        if header.get(COSE_ALG) != ES256:
            raise ValueError(f"algorithm {header.get(COSE_ALG)} is not ES256")
        kid = _typed(header[COSE_KID], bytes)
        return _Sign1(
            protected=_typed(protected, bytes),
            kid=kid,
            payload=_typed(payload, bytes),
            signature=_typed(signature, bytes),
        )
    except (cbor2.CBORDecodeError, ValueError, TypeError, KeyError) as exc:
        raise SealDecodeError(
            f"the seal is not a valid COSE_Sign1 structure ({exc}); it may be "
            "truncated: scan the QR code again"
        ) from exc
    except AttributeError as exc:
        raise SealDecodeError("the seal's protected header is not a map") from exc


def _check_signature(entry: TrustEntry, message: _Sign1) -> None:
    if len(message.signature) != SIGNATURE_LENGTH:
        raise SealSignatureError("the seal's signature has the wrong length")
    r = int.from_bytes(message.signature[:32], "big")
    s = int.from_bytes(message.signature[32:], "big")
    data = _sig_structure(message.protected, message.payload)
    try:
        entry.public_key.verify(
            encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature as exc:
        raise SealSignatureError(
            "the seal's signature does not match its content: the copy's seal "
            "was altered or forged"
        ) from exc


def _check_validity(entry: TrustEntry, claims: SealClaims, today: date) -> None:
    issued = claims.issue_date
    if not entry.valid_from <= issued <= entry.valid_until:
        raise KeyValidityError(
            f"the seal key {entry.kid.hex()} was valid from {entry.valid_from} to "
            f"{entry.valid_until}, not on the issue date {issued}"
        )
    if issued > today:
        raise KeyValidityError(
            f"the seal's issue date {issued} is after today ({today})"
        )
    if claims.office_code != entry.office_code:
        raise KeyValidityError(
            f"the seal names office {claims.office_code}, but key "
            f"{entry.kid.hex()} belongs to office {entry.office_code}"
        )


def encode_qr_payload(lookup_url: str, copy_id: str, seal: str) -> str:
    """Return the QR text: upper-case lookup address, a space, the seal."""
    if not seal.startswith(PREFIX):
        raise QrPayloadError(f"a seal starts with {PREFIX}; got {seal[:8]!r}")
    url = (lookup_url.rstrip("/") + "/" + parse_copy_id(copy_id)).upper()
    payload = url + QR_SEPARATOR + seal
    if not set(payload) <= QR_ALPHANUMERIC:
        logger.warning(
            "lookup address %s leaves QR alphanumeric mode; the QR code grows", url
        )
    return payload


def parse_qr_payload(text: str) -> tuple[str, str, str]:
    """Return the lookup address, canonical copy identifier and seal of a QR text.

    Raises:
        QrPayloadError: the text is not an address followed by a seal.
    """
    url, _separator, seal = text.strip().partition(QR_SEPARATOR)
    if not url.upper().startswith(("HTTP://", "HTTPS://")) or not seal:
        raise QrPayloadError(
            "the QR code does not hold a copy's lookup address and seal; scan "
            "the QR code printed beside 'Mã truy cập'"
        )
    try:
        copy_id = parse_copy_id(url.rstrip("/").rsplit("/", 1)[1])
    except IdentifierError as exc:
        raise QrPayloadError(
            f"the QR code's address does not end with a copy identifier: {exc}"
        ) from exc
    return url, copy_id, seal.strip()


def verify_qr_payload(
    text: str, trust_list: TrustList, today: date | None = None
) -> SealClaims:
    """Return the verified claims of a QR text whose address matches its seal.

    Raises:
        QrPayloadError: the text is not an address and a seal.
        SealError: the seal does not verify (see :func:`verify_seal`), or
            names another copy than the address (SealMismatchError).
    """
    _url, copy_id, seal = parse_qr_payload(text)
    claims = verify_seal(seal, trust_list, today)
    if claims.copy_id != copy_id:
        raise SealMismatchError(
            f"the QR address names copy {copy_id} but the seal is for "
            f"{claims.copy_id}; the QR code was altered"
        )
    return claims
