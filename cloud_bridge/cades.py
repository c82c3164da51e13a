"""The CMS of a copy's signature: CAdES baseline, as PAdES asks for it.

A PAdES signature is a detached CMS SignedData over the PDF's byte range
with three signed attributes (content type, message digest and the ESS
signing-certificate-v2 naming the signer's certificate; no signing time,
the PDF's ``/M`` carries the claimed time), the signer's certificates, and,
from B-T up, a timestamp over the signature value as unsigned attribute.

Everything but the digest, the signature and the timestamp is the same for
every copy of one signer, so it is encoded once when the signer is made.
The key stays in the HSM: only the DER of the signed attributes is sent to
it, through pyHanko's PKCS#11 signer.
"""

from __future__ import annotations

import hashlib

from asn1crypto import cms
from pyhanko.sign import signers
from pyhanko.sign.timestamps.api import TimeStamper

from cloud_bridge.der import (
    SHA256,
    SIGNED_DATA,
    VERSION_1,
    content_type_attribute,
    der,
    message_digest_attribute,
    signed_attributes,
    signer_identifier,
    signing_certificate_v2,
)
from cloud_bridge.errors import SigningError

_CONTENT_TYPE_DATA = content_type_attribute("data")
_ENCAPSULATED_DATA = der(0x30, cms.ContentType("data").dump())
_TIMESTAMP_TOKEN = cms.CMSAttributeType("signature_time_stamp_token").dump()


class CadesSigner:
    """Make the CMS of a PAdES signature with one signer's key and chain."""

    def __init__(self, signer: signers.Signer) -> None:
        certificate = signer.signing_cert
        if certificate is None:
            raise SigningError("the signer has no certificate to sign copies with")
        self._signer = signer
        chain = {certificate.dump(): None}
        for other in signer.cert_registry:
            chain.setdefault(other.dump(), None)
        self._certificates = der(0xA0, b"".join(chain))  # [0] IMPLICIT SET OF
        self._signing_certificate = signing_certificate_v2(certificate)
        self._signer_head = VERSION_1 + signer_identifier(certificate) + SHA256
        mechanism = signer.get_signature_mechanism_for_digest("sha256")
        self._mechanism = bytes(mechanism.dump())

    async def sign(self, digest: bytes, timestamper: TimeStamper | None) -> bytes:
        """Return the DER ContentInfo signing ``digest`` (SHA-256 of the range).

        Raises:
            TimestampRequestError: the timestamp service failed.
        """
        attributes = signed_attributes(
            [
                _CONTENT_TYPE_DATA,
                message_digest_attribute(digest),
                self._signing_certificate,
            ]
        )
        signature = await self._signer.async_sign_raw(der(0x31, attributes), "sha256")
        unsigned = b""
        if timestamper is not None:
            token = await timestamper.async_timestamp(
                hashlib.sha256(signature).digest(), "sha256"
            )
            stamp = der(0x30, _TIMESTAMP_TOKEN + der(0x31, token.dump()))
            unsigned = der(0xA1, stamp)  # [1] IMPLICIT unsignedAttrs
        signer_info = der(
            0x30,
            self._signer_head
            + der(0xA0, attributes)  # [0] IMPLICIT signedAttrs
            + self._mechanism
            + der(0x04, signature)
            + unsigned,
        )
        signed_data = der(
            0x30,
            VERSION_1
            + der(0x31, SHA256)
            + _ENCAPSULATED_DATA
            + self._certificates
            + der(0x31, signer_info),
        )
        return der(0x30, SIGNED_DATA + der(0xA0, signed_data))
