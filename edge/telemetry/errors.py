"""Errors of the kiosk's telemetry and command handling (below EdgeError)."""

from edge.errors import EdgeError


class TelemetryError(EdgeError):
    """The telemetry outbox or broker connection failed."""


class CommandRejectedError(TelemetryError):
    """A command is unsigned, forged, stale, repeated or addressed elsewhere."""
