"""Migration 3: create the fleet's tables (imported lazily to avoid a cycle)."""

from __future__ import annotations

from sqlalchemy.engine import Connection


def create_fleet_tables(connection: Connection) -> None:
    """Create the kiosks, tokens, certificates, telemetry and command tables."""
    from cloud_bridge.fleet.schema import FLEET_TABLES

    FLEET_TABLES[0].metadata.create_all(connection, tables=list(FLEET_TABLES))
