"""Errors raised by the command line and the shared runtime helpers."""


class KioskError(Exception):
    """Base of every error the shared runtime raises."""


class ConfigError(KioskError):
    """A configuration file or environment override is missing or invalid."""
