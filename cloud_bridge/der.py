"""DER building blocks for the CMS structures the bridge signs often.

Timestamp tokens and copy signatures have the same shape every time, with
a digest, a time and a signature changing; writing their DER from constant
pieces costs a tenth of building them from asn1crypto objects, which
re-encodes every certificate and attribute on each dump.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from asn1crypto import algos, cms, tsp
from asn1crypto import x509 as asn1_x509

SHA256 = algos.DigestAlgorithm({"algorithm": "sha256"}).dump()
SIGNED_DATA = cms.ContentType("signed_data").dump()
MESSAGE_DIGEST = cms.CMSAttributeType("message_digest").dump()
VERSION_1 = b"\x02\x01\x01"


def der(tag: int, content: bytes) -> bytes:
    """Return one DER element: tag, definite length, content."""
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def der_integer(value: int) -> bytes:
    """Return the DER INTEGER of a non-negative ``value``."""
    return der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def generalized_time(moment: datetime) -> bytes:
    """Return a DER GeneralizedTime body in UTC, to the millisecond."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y%m%d%H%M%S")
    millis = moment.microsecond // 1000
    if millis:
        text += f".{millis:03d}".rstrip("0")
    return (text + "Z").encode("ascii")


def content_type_attribute(content_type: str) -> bytes:
    """Return the DER of the CMS content-type attribute."""
    attribute = cms.CMSAttribute({"type": "content_type", "values": [content_type]})
    return bytes(attribute.dump())


def message_digest_attribute(digest: bytes) -> bytes:
    """Return the DER of the CMS message-digest attribute."""
    return der(0x30, MESSAGE_DIGEST + der(0x31, der(0x04, digest)))


def signer_identifier(cert: asn1_x509.Certificate) -> bytes:
    """Return the DER SignerIdentifier (issuer and serial) of ``cert``."""
    sid = cms.SignerIdentifier(
        {
            "issuer_and_serial_number": {
                "issuer": cert.issuer,
                "serial_number": cert.serial_number,
            }
        }
    )
    return bytes(sid.dump())


def signing_certificate_v2(cert: asn1_x509.Certificate) -> bytes:
    """Return the DER ESS signing-certificate-v2 attribute (RFC 5035)."""
    ess_cert_id = {
        "hash_algorithm": {"algorithm": "sha256"},
        "cert_hash": hashlib.sha256(cert.dump()).digest(),
        "issuer_serial": {
            "issuer": [asn1_x509.GeneralName(name="directory_name", value=cert.issuer)],
            "serial_number": cert.serial_number,
        },
    }
    value = tsp.SigningCertificateV2({"certs": [ess_cert_id]})
    attribute = cms.CMSAttribute({"type": "signing_certificate_v2", "values": [value]})
    return bytes(attribute.dump())


def signed_attributes(attributes: list[bytes]) -> bytes:
    """Return the content of a DER SET OF attributes (ordered by encoding)."""
    return b"".join(sorted(attributes))
