"""Errors raised by the kiosk agent, one tree rooted at :class:`EdgeError`."""

from kiosk.errors import KioskError


class EdgeError(KioskError):
    """Base of every error the kiosk agent raises."""


class VisitError(EdgeError):
    """A step of the visit cannot be done now; the message tells the citizen."""


class IdentityError(VisitError):
    """The ID card could not be read or is not a citizen ID card."""


class StorageError(EdgeError):
    """The agent's SQLite store cannot be written (full disk, broken file)."""


class TransportError(EdgeError):
    """The office (broker or HTTPS endpoint) cannot be reached."""


class TunnelError(TransportError):
    """The TLS tunnel to the office (stunnel with the token key) cannot run."""


class VisionError(EdgeError):
    """The vision models cannot be loaded or run (missing or damaged files)."""
