"""Migrations 2 and 6: the console's tables (imported lazily to avoid a cycle)."""

from __future__ import annotations

from sqlalchemy.engine import Connection


def create_console_tables(connection: Connection) -> None:
    """Create the users, sessions, audit, outbox, delivery and reuse tables."""
    from cloud_bridge.console import tables

    tables.create_console_tables(connection)


def add_shared_state(connection: Connection) -> None:
    """Add delivery leases and shared rate limits; widen the TOTP column."""
    from cloud_bridge.console import tables

    tables.add_shared_state(connection)
