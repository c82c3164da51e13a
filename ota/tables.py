"""The director's tables on the bridge database: releases and kiosk states."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cloud_bridge.store.schema import UtcDateTime, metadata

releases = sa.Table(
    "ota_releases",
    metadata,
    sa.Column("sequence", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("target", sa.String(100), nullable=False, unique=True),
    sa.Column("bundle_version", sa.String(40), nullable=False),
    sa.Column("channel", sa.String(24), nullable=False),
    sa.Column("stages", sa.JSON, nullable=False),
    sa.Column("stage_index", sa.Integer, nullable=False),
    sa.Column("kiosks", sa.JSON, nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(300), nullable=False, default=""),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

kiosk_states = sa.Table(
    "ota_kiosk_states",
    metadata,
    sa.Column("kiosk_id", sa.String(63), primary_key=True),
    sa.Column("channel", sa.String(24), nullable=False),
    sa.Column("target", sa.String(100), nullable=False, default=""),
    sa.Column("running_version", sa.String(40), nullable=False, default=""),
    sa.Column("state", sa.String(16), nullable=False, default="unknown"),
    sa.Column("last_error", sa.String(500), nullable=False, default=""),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

OTA_TABLES = (releases, kiosk_states)


def create_ota_tables(connection: Connection) -> None:
    """Create the OTA releases and kiosk states tables (migration 5)."""
    metadata.create_all(connection, tables=list(OTA_TABLES))
