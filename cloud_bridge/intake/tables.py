"""The intake's table: what a kiosk reported with each request (migration 4).

The requests table keeps only the pages in its metadata, so the kiosk's
fields, face and liveness results, capture findings, fee and delivery
choice are kept here, keyed by the request id.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cloud_bridge.store.schema import UtcDateTime, metadata

intake_requests = sa.Table(
    "intake_requests",
    metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("kiosk_id", sa.String(64), nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("message_id", sa.String(32), nullable=False),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
)


def create_intake_tables(connection: Connection) -> None:
    """Create the intake's table (migration 4)."""
    metadata.create_all(connection, tables=[intake_requests])
