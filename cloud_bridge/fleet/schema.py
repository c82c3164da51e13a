"""The fleet's tables on the bridge database's shared metadata."""

from __future__ import annotations

import sqlalchemy as sa

from cloud_bridge.store.schema import UtcDateTime, metadata

ID = sa.String(63)
MESSAGE_ID = sa.String(32)
JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")

kiosks = sa.Table(
    "fleet_kiosks",
    metadata,
    sa.Column("kiosk_id", ID, primary_key=True),
    sa.Column("enrolled_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
    sa.Column("status", sa.String(16), nullable=False, default="unknown"),
    sa.Column("status_at", UtcDateTime, nullable=True),
    sa.Column("last_seen", UtcDateTime, nullable=True),
    sa.Column("software_version", sa.String(40), nullable=True),
    sa.Column("model_version", sa.String(40), nullable=True),
    sa.Column("last_health", JSON, nullable=True),
)

tokens = sa.Table(
    "fleet_enrollment_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("kiosk_id", ID, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("used_at", UtcDateTime, nullable=True),
)

certificates = sa.Table(
    "fleet_certificates",
    metadata,
    sa.Column("serial", sa.String(40), primary_key=True),
    sa.Column("kiosk_id", ID, nullable=False, index=True),
    sa.Column("issued_at", UtcDateTime, nullable=False),
    sa.Column("not_after", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
)

health = sa.Table(
    "fleet_health",
    metadata,
    sa.Column("message_id", MESSAGE_ID, primary_key=True),
    sa.Column("kiosk_id", ID, nullable=False),
    sa.Column("sent_at", UtcDateTime, nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("paper_percent", sa.Float, nullable=True),
    sa.Column("cpu_temp_c", sa.Float, nullable=True),
    sa.Column("load_1m", sa.Float, nullable=False),
    sa.Column("memory_used_percent", sa.Float, nullable=False),
    sa.Column("disk_used_percent", sa.Float, nullable=False),
    sa.Column("outbox_depth", sa.Integer, nullable=False),
    sa.Index("ix_fleet_health_kiosk_sent", "kiosk_id", "sent_at"),
)

events = sa.Table(
    "fleet_events",
    metadata,
    sa.Column("message_id", MESSAGE_ID, primary_key=True),
    sa.Column("kiosk_id", ID, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("occurred_at", UtcDateTime, nullable=False),
    sa.Column("sent_at", UtcDateTime, nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("detail", JSON, nullable=False),
    sa.Index("ix_fleet_events_kiosk_occurred", "kiosk_id", "occurred_at"),
)

commands = sa.Table(
    "fleet_commands",
    metadata,
    sa.Column("command_id", MESSAGE_ID, primary_key=True),
    sa.Column("kiosk_id", ID, nullable=False, index=True),
    sa.Column("name", sa.String(40), nullable=False),
    sa.Column("args", JSON, nullable=False),
    sa.Column("requested_by", sa.String(80), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=True),
    sa.Column("answered_at", UtcDateTime, nullable=True),
    sa.Column("detail", sa.String(500), nullable=True),
    sa.Column("result", JSON, nullable=True),
)

FLEET_TABLES = (kiosks, tokens, certificates, health, events, commands)
