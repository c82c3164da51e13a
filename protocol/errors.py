"""Errors raised by the shared protocol, one tree rooted at :class:`ProtocolError`.

Every message says what is wrong with the text or data handed in and what the
reader, officer or citizen can do about it.
"""

from kiosk.errors import KioskError


class ProtocolError(KioskError):
    """Base of every error the protocol package raises."""


class IdentifierError(ProtocolError):
    """A copy identifier or access code is malformed or fails its check."""


class SealError(ProtocolError):
    """A copy's seal cannot be read, or does not verify."""


class NotASealError(SealError):
    """The text is not a seal at all (no seal prefix found)."""


class SealPrefixError(SealError):
    """The text carries a seal prefix of an unknown format or version."""


class SealEncodingError(SealError):
    """The seal's Base45 text is damaged (a character outside the alphabet)."""


class SealDecodeError(SealError):
    """The seal's compressed data, CBOR or COSE structure or claims are bad."""


class UnknownKeyError(SealError):
    """The seal names a key (kid) that the trust list does not hold."""


class SealSignatureError(SealError):
    """The seal's signature does not match its content and the named key."""


class KeyValidityError(SealError):
    """The seal key was not valid on the seal's issue date."""


class TrustListError(SealError):
    """A trust list file is missing, malformed or lists a bad key."""


class QrPayloadError(ProtocolError):
    """The text read from a copy's QR code is not a lookup address and seal."""


class SealMismatchError(SealError):
    """The copy identifier in the QR address differs from the sealed one."""
