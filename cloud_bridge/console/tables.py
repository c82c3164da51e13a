"""Tables of the console, audit log, deliveries, decisions outbox and reuse API.

They live on the store's one ``metadata``; migration 2 creates them. This
module imports only the store's schema so the migrations can import it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cloud_bridge.store.schema import UtcDateTime, metadata

ROLES = ("officer", "supervisor", "fleet_manager", "auditor", "administrator")
DELIVERY_STATES = ("pending", "delivered")

users = sa.Table(
    "console_users",
    metadata,
    sa.Column("username", sa.String(40), primary_key=True),
    sa.Column("full_name", sa.String(80), nullable=False),
    sa.Column("title", sa.String(80), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    # Widened from 64 to 200 by migration 6 for the encrypted form.
    sa.Column("totp_secret", sa.String(200), nullable=False),
    sa.Column("last_totp_step", sa.BigInteger, nullable=False),
    sa.Column("failed_logins", sa.Integer, nullable=False),
    sa.Column("locked_until", UtcDateTime),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column(
        "username",
        sa.String(40),
        sa.ForeignKey("console_users.username"),
        nullable=False,
    ),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("last_seen_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
)

review_times = sa.Table(
    "review_times",
    metadata,
    sa.Column("review_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("username", sa.String(40), nullable=False),
    sa.Column("opened_at", UtcDateTime, nullable=False),
    sa.Column("decided_at", UtcDateTime),
    sa.Column("seconds", sa.Float),
    sa.Column("decision", sa.String(16)),
    sa.Index(None, "request_id", "username"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(80), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("subject", sa.String(80), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("row_hash", sa.String(64), nullable=False),
)

decision_outbox = sa.Table(
    "decision_outbox",
    metadata,
    sa.Column("outbox_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("kiosk_id", sa.String(64), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("copy_id", sa.String(64)),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("published_at", UtcDateTime),
    sa.Index(None, "published_at"),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("delivery_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("copy_id", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("target", sa.String(254), nullable=False),
    sa.Column("attach_pdf", sa.Boolean, nullable=False),
    sa.Column("access_code", sa.String(32)),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("delivered_at", UtcDateTime),
    sa.UniqueConstraint("copy_id", "channel", name="uq_deliveries_copy_channel"),
    sa.Index(None, "state"),
)

reuse_clients = sa.Table(
    "reuse_clients",
    metadata,
    sa.Column("client_id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("secret_hash", sa.String(200), nullable=False),
    sa.Column("requests_per_minute", sa.Integer, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

reuse_tokens = sa.Table(
    "reuse_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column(
        "client_id",
        sa.String(40),
        sa.ForeignKey("reuse_clients.client_id"),
        nullable=False,
    ),
    sa.Column("expires_at", UtcDateTime, nullable=False),
)

consents = sa.Table(
    "consents",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("copy_id", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime),
)

# Migration 6: which bridge instance is sending a delivery, until when.
delivery_leases = sa.Table(
    "delivery_leases",
    metadata,
    sa.Column(
        "delivery_id",
        sa.Integer,
        sa.ForeignKey("deliveries.delivery_id"),
        primary_key=True,
    ),
    sa.Column("owner", sa.String(120), nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
)

# Migration 6: attempts per key and fixed window, shared by every instance.
rate_windows = sa.Table(
    "rate_windows",
    metadata,
    sa.Column("key_hash", sa.String(64), primary_key=True),
    sa.Column("window", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hits", sa.Integer, nullable=False),
    # Epoch second after which the row counts for nothing (then pruned).
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Index(None, "expires_at"),
)

TABLES = (
    users,
    sessions,
    review_times,
    audit_log,
    decision_outbox,
    deliveries,
    reuse_clients,
    reuse_tokens,
    consents,
)


SHARED_STATE_TABLES = (delivery_leases, rate_windows)


def create_console_tables(connection: Connection) -> None:
    """Create this module's tables (migration 2)."""
    metadata.create_all(connection, tables=list(TABLES))


def add_shared_state(connection: Connection) -> None:
    """Add delivery leases and shared rate limits; widen TOTP secrets (6).

    Migration 2 now creates ``totp_secret`` 200 wide itself; altering it to
    the same width again is harmless, so that step needs no frozen copy.
    SQLite ignores string lengths and needs no change.
    """
    metadata.create_all(connection, tables=list(SHARED_STATE_TABLES))
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text(
                "ALTER TABLE console_users ALTER COLUMN totp_secret TYPE VARCHAR(200)"
            )
        )
