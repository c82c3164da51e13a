"""The bridge database's tables, one SQLAlchemy Core MetaData for every engine.

The tables describe the latest schema. Migrations in :mod:`.migrations` bring
a database to it; a test compares the migrated database with these tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

REQUEST_STATES = ("pending", "approved", "rejected")
COPY_STATES = ("reserved", "issued")


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Store aware datetimes as UTC and return them aware, on every engine.

    SQLite has no time zone type, so the UTC value is stored without an
    offset and the offset is put back on reading.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        """Refuse naive datetimes and convert aware ones to UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        """Return the stored value as an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _states(column: str, states: tuple[str, ...]) -> str:
    listed = ", ".join(f"'{state}'" for state in states)
    return f"{column} IN ({listed})"


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

requests = sa.Table(
    "requests",
    metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("kiosk_id", sa.String(64), nullable=False),
    sa.Column("office_code", sa.String(24), nullable=False),
    sa.Column("document_type", sa.String(40), nullable=False),
    sa.Column("citizen_name", sa.String(120), nullable=False),
    sa.Column("citizen_id_number", sa.String(20), nullable=False),
    sa.Column("page_count", sa.Integer, nullable=False),
    sa.Column("metadata", _json(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("decided_at", UtcDateTime),
    sa.Column("decided_by", sa.String(80)),
    sa.Column("decision_reason", sa.Text),
    sa.CheckConstraint(_states("state", REQUEST_STATES), name="state"),
    sa.CheckConstraint("page_count >= 1", name="page_count"),
    sa.Index(None, "state", "office_code"),
)

copies = sa.Table(
    "copies",
    metadata,
    sa.Column("copy_id", sa.String(64), primary_key=True),
    sa.Column(
        "request_id",
        sa.String(64),
        sa.ForeignKey("requests.request_id"),
        unique=True,
    ),
    sa.Column("office_code", sa.String(24), nullable=False),
    sa.Column("book", sa.String(24), nullable=False),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("cert_number", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("access_code_salt", sa.String(128), nullable=False),
    sa.Column("access_code_hash", sa.String(256), nullable=False),
    sa.Column("document_type", sa.String(40), nullable=False),
    sa.Column("page_count", sa.Integer, nullable=False),
    sa.Column("pages_digest", sa.String(64)),
    sa.Column("pdf_sha256", sa.String(64), unique=True),
    sa.Column("pdf_size", sa.BigInteger),
    sa.Column("officer_name", sa.String(80), nullable=False),
    sa.Column("officer_title", sa.String(80), nullable=False),
    sa.Column("issued_on", sa.Date, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("issued_at", UtcDateTime),
    sa.Column("revoked_at", UtcDateTime),
    sa.Column("revoked_by", sa.String(80)),
    sa.Column("revocation_reason", sa.Text),
    sa.UniqueConstraint(
        "office_code", "book", "year", "cert_number", name="uq_copies_number"
    ),
    sa.CheckConstraint(_states("state", COPY_STATES), name="state"),
    sa.CheckConstraint("cert_number >= 1", name="cert_number"),
    sa.CheckConstraint(
        "state = 'reserved' OR pdf_sha256 IS NOT NULL", name="issued_has_pdf"
    ),
    sa.Index(None, "state"),
)

counters = sa.Table(
    "counters",
    metadata,
    sa.Column("office_code", sa.String(24), primary_key=True),
    sa.Column("book", sa.String(24), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("last_number", sa.Integer, nullable=False),
    sa.CheckConstraint("last_number >= 0", name="last_number"),
)
