"""Migration 5: create the OTA director's tables (imported lazily to avoid a cycle)."""

from __future__ import annotations

from sqlalchemy.engine import Connection


def create_ota_tables(connection: Connection) -> None:
    """Create the OTA releases and kiosk states tables."""
    from ota import tables

    tables.create_ota_tables(connection)
