"""Errors raised by the update system, one tree rooted at :class:`OtaError`.

Every message says what went wrong and what the operator can do about it.
"""

from kiosk.errors import KioskError


class OtaError(KioskError):
    """Base of every error the update system raises."""


class KeyFileError(OtaError):
    """A signing key file is missing, unreadable or too widely readable."""


class RepositoryError(OtaError):
    """The update repository's metadata is missing, inconsistent or unsigned."""


class BundleError(OtaError):
    """An update bundle is corrupt, incomplete or its manifest is invalid."""


class UpdateRefusedError(OtaError):
    """Update metadata or a target failed verification and was refused."""


class UpdateDownloadError(OtaError):
    """A metadata file or target could not be downloaded."""


class DiskFullError(UpdateDownloadError):
    """There is not enough free space to download or install an update."""


class InstallError(OtaError):
    """A verified bundle could not be installed into the inactive slot."""


class HealthCheckError(OtaError):
    """The health check on the new slot could not run or failed."""


class RolloutError(OtaError):
    """A release, assignment or rollout operation is not possible."""
