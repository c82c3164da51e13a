"""Command line and shared runtime helpers (configuration, logging)."""

__version__ = "0.1.0"
