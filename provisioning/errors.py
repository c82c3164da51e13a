"""Errors raised while provisioning a kiosk, rooted at :class:`ProvisioningError`."""

from kiosk.errors import KioskError


class ProvisioningError(KioskError):
    """Base of every provisioning error."""


class EnrollmentRefusedError(ProvisioningError):
    """The bridge refused the token, the request or the renewal."""


class IdentityMissingError(ProvisioningError):
    """The kiosk has no identity yet (or its files are unreadable)."""


class KeyBackendError(ProvisioningError):
    """The key store (file or PKCS#11 token) cannot make or use the key."""
