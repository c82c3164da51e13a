"""Errors raised by the bridge, one tree rooted at :class:`BridgeError`.

Every message says what happened and what the operator can do about it.
"""

from kiosk.errors import KioskError


class BridgeError(KioskError):
    """Base of every error the bridge raises."""


class InputError(BridgeError):
    """A page image, PDF or request's metadata is not acceptable."""


class HsmError(BridgeError):
    """The PKCS#11 token is absent, refuses the PIN or lacks a key."""


class TimestampError(BridgeError):
    """The RFC 3161 timestamp service is unreachable or answered badly."""


class PkiError(BridgeError):
    """Certificates, keys or revocation data are missing or inconsistent."""


class SigningError(BridgeError):
    """The PDF could not be signed."""


class ArchiveError(BridgeError):
    """The archive could not store or return a blob (disk full, corrupt)."""


class StoreError(BridgeError):
    """The bridge database refused an operation or is unreachable."""


class NotFoundError(BridgeError):
    """No copy or request with that identifier exists."""


class VerificationError(BridgeError):
    """A PDF or seal could not be checked at all (not merely invalid)."""


class TrustServicesError(BridgeError):
    """The local timestamp, CRL and OCSP service could not start."""


class AuthError(BridgeError):
    """A login, session, CSRF token or client credential was refused."""


class ConsentError(BridgeError):
    """A service asked for a copy without a valid consent token for it."""


class RateLimitError(BridgeError):
    """Too many attempts from one address or client; wait and retry."""


class DeliveryError(BridgeError):
    """An email or wallet delivery failed; it stays queued and is retried."""


class AuditError(BridgeError):
    """The audit log could not be written or its chain is broken."""


class FleetError(BridgeError):
    """A fleet operation failed: enrollment, revocation, broker or commands."""


class EnrollmentError(FleetError):
    """An enrollment token or certificate request is not acceptable."""
