"""Tests for the compact signed seal and the QR payload."""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import replace
from datetime import date
from pathlib import Path

import base45
import cbor2
import pytest
import segno
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from protocol.errors import (
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
from protocol.identifier import new_copy_id
from protocol.seal import (
    PREFIX,
    SealClaims,
    TrustEntry,
    TrustList,
    certificate_kid,
    ecdsa_signer,
    encode_qr_payload,
    page_digest,
    pages_digest,
    parse_qr_payload,
    read_seal,
    sign_seal,
    verify_qr_payload,
    verify_seal,
)
from tests.protocol.seal_keys import make_seal_certificate

OFFICE = "PHUONG-MAU"
TODAY = date(2026, 12, 3)
WORST_URL = "https://chungthuc.tphcm.gov.vn/c/"
KeyPair = tuple[ec.EllipticCurvePrivateKey, x509.Certificate]


@pytest.fixture(scope="module")
def seal_key() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    return make_seal_certificate("Seal PHUONG-MAU")


@pytest.fixture(scope="module")
def trust_list(
    seal_key: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
) -> TrustList:
    return TrustList.from_certificates([(seal_key[1], OFFICE, "UBND Phường Mẫu")])


def make_claims(**changes: object) -> SealClaims:
    claims = SealClaims(
        copy_id=new_copy_id(),
        certification_number=123,
        book="01/SCT/BS",
        issue_date=TODAY,
        office_code=OFFICE,
        document_type="birth_certificate",
        page_count=2,
        pages_digest=pages_digest([b"page one", b"page two"]),
    )
    return replace(claims, **changes)  # type: ignore[arg-type]


def worst_claims() -> SealClaims:
    return make_claims(
        certification_number=99999,
        book="X" * 24,
        office_code="Q" * 24,
        document_type="residence_confirmation",
        page_count=200,
    )


def seal_for(
    claims: SealClaims, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate
) -> str:
    return sign_seal(claims, ecdsa_signer(key), certificate_kid(cert))


def decode_message(seal: str) -> list[object]:
    data = base45.b45decode(seal[len(PREFIX) :])
    if data[:1] == b"\x78":
        data = zlib.decompress(data)
    tag = cbor2.loads(data)
    return list(tag.value)


def encode_message(items: list[object]) -> str:
    data = cbor2.dumps(cbor2.CBORTag(18, items))
    encoded: bytes = base45.b45encode(data)
    return PREFIX + encoded.decode("ascii")


def test_pages_digest_is_hash_of_page_hashes() -> None:
    images = [b"a", b"bb", b"ccc"]
    expected = hashlib.sha256(b"".join(hashlib.sha256(i).digest() for i in images))
    assert pages_digest(images) == expected.digest()
    assert page_digest(b"a") == hashlib.sha256(b"a").digest()
    assert pages_digest(images) != pages_digest(list(reversed(images)))


def test_round_trip(seal_key: KeyPair, trust_list: TrustList) -> None:
    claims = make_claims()
    seal = seal_for(claims, *seal_key)
    assert seal.startswith("VC1:")
    assert verify_seal(seal, trust_list, today=TODAY) == claims
    kid, unverified = read_seal(seal)
    assert kid == certificate_kid(seal_key[1])
    assert unverified == claims


def test_protected_header_carries_alg_and_kid(seal_key: KeyPair) -> None:
    protected, _unprotected, payload, signature = decode_message(
        seal_for(make_claims(), *seal_key)
    )
    header = cbor2.loads(protected)  # type: ignore[arg-type]
    assert header == {1: -7, 4: certificate_kid(seal_key[1])}
    assert len(signature) == 64  # type: ignore[arg-type]
    assert sorted(cbor2.loads(payload)) == list(range(1, 9))  # type: ignore[arg-type]


def test_tampered_payload_is_rejected(seal_key: KeyPair, trust_list: TrustList) -> None:
    items = decode_message(seal_for(make_claims(), *seal_key))
    forged = make_claims(certification_number=124)
    items[2] = forged.to_cbor()
    with pytest.raises(SealSignatureError, match="altered or forged"):
        verify_seal(encode_message(items), trust_list, today=TODAY)


def test_tampered_signature_is_rejected(
    seal_key: KeyPair, trust_list: TrustList
) -> None:
    items = decode_message(seal_for(make_claims(), *seal_key))
    signature = bytearray(bytes(items[3]))  # type: ignore[call-overload]
    signature[5] ^= 1
    items[3] = bytes(signature)
    with pytest.raises(SealSignatureError):
        verify_seal(encode_message(items), trust_list, today=TODAY)


def test_wrong_key_is_rejected(seal_key: KeyPair, trust_list: TrustList) -> None:
    other_key, _ = make_seal_certificate("Intruder")
    seal = sign_seal(
        make_claims(), ecdsa_signer(other_key), certificate_kid(seal_key[1])
    )
    with pytest.raises(SealSignatureError):
        verify_seal(seal, trust_list, today=TODAY)


def test_unknown_kid_is_rejected(trust_list: TrustList) -> None:
    seal = seal_for(make_claims(), *make_seal_certificate("Unlisted"))
    with pytest.raises(UnknownKeyError, match="not in the trust list"):
        verify_seal(seal, trust_list, today=TODAY)


@pytest.mark.parametrize("cut", [1, 2, 3, 10, 50, 200])
def test_truncated_text_is_rejected(
    seal_key: KeyPair, trust_list: TrustList, cut: int
) -> None:
    seal = seal_for(make_claims(), *seal_key)
    with pytest.raises((SealEncodingError, SealDecodeError)):
        verify_seal(seal[:-cut], trust_list, today=TODAY)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("hello world", NotASealError),
        ("https://example.org/", NotASealError),
        ("HC1:6BFOXN%TS3DH", SealPrefixError),
        ("VC2:6BFOXN%TS3DH", SealPrefixError),
        ("VC1:a", SealEncodingError),
        ("VC1:" + base45.b45encode(b"\xff\x00").decode(), SealDecodeError),
        ("VC1:" + base45.b45encode(cbor2.dumps([1, 2])).decode(), SealDecodeError),
        ("VC1:" + base45.b45encode(b"\x78\x9c\x00").decode(), SealDecodeError),
    ],
)
def test_malformed_text_raises_distinct_errors(
    trust_list: TrustList, text: str, error: type[SealError]
) -> None:
    with pytest.raises(error):
        verify_seal(text, trust_list, today=TODAY)


def test_key_not_valid_on_issue_date(seal_key: KeyPair, trust_list: TrustList) -> None:
    seal = seal_for(make_claims(issue_date=date(2023, 6, 1)), *seal_key)
    with pytest.raises(KeyValidityError, match="not on the issue date"):
        verify_seal(seal, trust_list, today=TODAY)


def test_future_issue_date_is_rejected(
    seal_key: KeyPair, trust_list: TrustList
) -> None:
    seal = seal_for(make_claims(issue_date=date(2027, 1, 1)), *seal_key)
    with pytest.raises(KeyValidityError, match="after today"):
        verify_seal(seal, trust_list, today=TODAY)


def test_office_must_own_the_key(seal_key: KeyPair, trust_list: TrustList) -> None:
    seal = seal_for(make_claims(office_code="OTHER-OFFICE"), *seal_key)
    with pytest.raises(KeyValidityError, match="belongs to office"):
        verify_seal(seal, trust_list, today=TODAY)


def test_claims_are_range_checked() -> None:
    with pytest.raises(SealError, match="pages digest"):
        make_claims(pages_digest=b"short")
    with pytest.raises(SealError, match="copy identifier"):
        make_claims(copy_id="NOT-AN-ID")


def test_trust_list_json_round_trip(seal_key: KeyPair, tmp_path: Path) -> None:
    key, cert = seal_key
    bare = TrustEntry(
        kid=b"\x01" * 8,
        office_code="XA-KHAC",
        office_name="UBND Xã Khác",
        public_key=make_seal_certificate()[0].public_key(),
        valid_from=date(2025, 1, 1),
        valid_until=date(2030, 1, 1),
    )
    original = TrustList(
        [TrustEntry.from_certificate(cert, OFFICE, "UBND Phường Mẫu"), bare]
    )
    path = tmp_path / "trust.json"
    path.write_text(original.to_json(), encoding="utf-8")
    loaded = TrustList.load(path)
    assert loaded.entries.keys() == original.entries.keys()
    assert loaded.find(bare.kid).office_name == "UBND Xã Khác"
    seal = seal_for(make_claims(), key, cert)
    assert verify_seal(seal, loaded, today=TODAY).office_code == OFFICE


def test_trust_list_errors(tmp_path: Path) -> None:
    with pytest.raises(TrustListError, match="cannot read"):
        TrustList.load(tmp_path / "missing.json")
    with pytest.raises(TrustListError, match="malformed"):
        TrustList.from_json('{"keys": []}')
    _, cert = make_seal_certificate()
    entry = TrustEntry.from_certificate(cert, OFFICE, "x").to_dict()
    entry["kid"] = "00" * 8
    text = json.dumps({"format": "ttpvhcc-seal-trust-list", "keys": [entry]})
    with pytest.raises(TrustListError, match="does not match"):
        TrustList.from_json(text)


def test_qr_payload_round_trip_and_mismatch(
    seal_key: KeyPair, trust_list: TrustList
) -> None:
    claims = make_claims()
    seal = seal_for(claims, *seal_key)
    payload = encode_qr_payload("http://127.0.0.1:8443/c/", claims.copy_id, seal)
    assert payload.startswith(f"HTTP://127.0.0.1:8443/C/{claims.copy_id} VC1:")
    url, copy_id, parsed_seal = parse_qr_payload(payload)
    assert (copy_id, parsed_seal) == (claims.copy_id, seal)
    assert url.endswith(claims.copy_id)
    assert verify_qr_payload(payload, trust_list, today=TODAY) == claims
    other = encode_qr_payload("http://127.0.0.1:8443/c/", new_copy_id(), seal)
    with pytest.raises(SealMismatchError):
        verify_qr_payload(other, trust_list, today=TODAY)


@pytest.mark.parametrize(
    "text", ["VC1:ABC", "HTTPS://X/C/NOT-AN-ID VC1:ABC", "HTTPS://X/C/"]
)
def test_parse_qr_payload_rejects_other_text(text: str) -> None:
    with pytest.raises(QrPayloadError):
        parse_qr_payload(text)


def test_worst_case_fits_qr_version_17_at_level_q(seal_key: KeyPair) -> None:
    claims = worst_claims()
    seal = seal_for(claims, *seal_key)
    payload = encode_qr_payload(WORST_URL, claims.copy_id, seal)
    qr = segno.make(payload, error="q", micro=False)
    print(f"worst-case payload {len(payload)} chars, QR {qr.designator}")
    assert qr.mode == "alphanumeric"
    assert isinstance(qr.version, int)
    assert qr.version <= 17
    worst_list = TrustList.from_certificates([(seal_key[1], "Q" * 24, "Office")])
    assert verify_qr_payload(payload, worst_list, today=TODAY) == claims
