"""The fleet's records: enrollment tokens, kiosks, certificates and telemetry.

Health and events are keyed by their message id and inserted with "on
conflict do nothing", so a message delivered twice (a kiosk's replay after
an outage, a broker's redelivery to another bridge instance) is stored once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from cryptography import x509
from sqlalchemy.engine import Connection, Engine

from cloud_bridge.errors import EnrollmentError, NotFoundError
from cloud_bridge.fleet import schema
from cloud_bridge.fleet.ca import RevokedSerial
from cloud_bridge.store.engine import (
    create_store_engine,
    database_errors,
    read_transaction,
    write_transaction,
)
from cloud_bridge.store.migrations import migrate
from protocol.commands import Command, CommandAck
from protocol.telemetry import Event, Health, Status
from protocol.topics import check_kiosk_id

logger = logging.getLogger(__name__)

TOKEN_BYTES = 24


@dataclass(frozen=True)
class KioskRecord:
    """What the registry knows about one kiosk."""

    kiosk_id: str
    enrolled_at: datetime
    revoked_at: datetime | None
    status: str
    last_seen: datetime | None
    software_version: str | None
    model_version: str | None
    last_health: dict[str, Any] | None
    certificate_expires_at: datetime | None


@dataclass
class Batch:
    """Parsed messages to store in one transaction."""

    health: list[Health] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    acks: list[CommandAck] = field(default_factory=list)

    def __len__(self) -> int:
        """Return how many messages the batch holds."""
        return len(self.health) + len(self.events) + len(self.statuses) + len(self.acks)


def hash_token(token: str) -> str:
    """Return the stored form of an enrollment token (SHA-256, hex)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def utc_now() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)


class FleetRegistry:
    """Read and write the fleet tables through one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> FleetRegistry:
        """Open the database at ``url`` and bring its schema up to date."""
        engine = create_store_engine(url)
        migrate(engine)
        return cls(engine)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def create_token(self, kiosk_id: str, lifetime: timedelta) -> str:
        """Return a new one-time enrollment token, ``<kiosk_id>.<secret>``."""
        check_kiosk_id(kiosk_id)
        token = f"{kiosk_id}.{secrets.token_urlsafe(TOKEN_BYTES)}"
        now = utc_now()
        row = {
            "token_hash": hash_token(token),
            "kiosk_id": kiosk_id,
            "created_at": now,
            "expires_at": now + lifetime,
        }
        with self._write("create an enrollment token") as conn:
            conn.execute(schema.tokens.insert().values(**row))
        logger.info("enrollment token made for kiosk %s", kiosk_id)
        return token

    def redeem_token(self, token: str) -> str:
        """Mark ``token`` used and return its kiosk id.

        Raises:
            EnrollmentError: the token is unknown, used or expired.
        """
        now = utc_now()
        table = schema.tokens
        with self._write("redeem an enrollment token") as conn:
            kiosk_id = conn.execute(
                sa.update(table)
                .where(table.c.token_hash == hash_token(token))
                .where(table.c.used_at.is_(None))
                .where(table.c.expires_at > now)
                .values(used_at=now)
                .returning(table.c.kiosk_id)
            ).scalar()
        if kiosk_id is None:
            raise EnrollmentError(
                "the enrollment token is unknown, used or expired; ask the fleet "
                "manager for a new one ('kiosk fleet enroll-token')"
            )
        return str(kiosk_id)

    def record_certificate(self, kiosk_id: str, cert: x509.Certificate) -> None:
        """Register ``cert`` for ``kiosk_id`` (and the kiosk, when new)."""
        now = utc_now()
        with self._write("record a kiosk certificate") as conn:
            exists = conn.execute(
                sa.select(schema.kiosks.c.kiosk_id).where(
                    schema.kiosks.c.kiosk_id == kiosk_id
                )
            ).first()
            if exists is None:
                conn.execute(
                    schema.kiosks.insert().values(
                        kiosk_id=kiosk_id, enrolled_at=now, status="unknown"
                    )
                )
            else:
                conn.execute(
                    sa.update(schema.kiosks)
                    .where(schema.kiosks.c.kiosk_id == kiosk_id)
                    .values(revoked_at=None)
                )
            conn.execute(
                schema.certificates.insert().values(
                    serial=format(cert.serial_number, "x"),
                    kiosk_id=kiosk_id,
                    issued_at=now,
                    not_after=cert.not_valid_after_utc,
                )
            )

    def revoke(self, kiosk_id: str) -> int:
        """Revoke every certificate of ``kiosk_id``; return how many were revoked.

        Raises:
            NotFoundError: no such kiosk is registered.
        """
        now = utc_now()
        with self._write("revoke a kiosk") as conn:
            found = conn.execute(
                sa.update(schema.kiosks)
                .where(schema.kiosks.c.kiosk_id == kiosk_id)
                .values(revoked_at=now, status="revoked")
            ).rowcount
            if not found:
                raise NotFoundError(
                    f"no kiosk {kiosk_id!r} is registered; see 'kiosk fleet ls'"
                )
            count = conn.execute(
                sa.update(schema.certificates)
                .where(schema.certificates.c.kiosk_id == kiosk_id)
                .where(schema.certificates.c.revoked_at.is_(None))
                .values(revoked_at=now)
            ).rowcount
        logger.info("kiosk %s revoked (%s certificates)", kiosk_id, count)
        return int(count)

    def revoked_serials(self) -> list[RevokedSerial]:
        """Return the revoked certificates that have not yet expired."""
        table = schema.certificates
        query = (
            sa.select(table.c.serial, table.c.revoked_at)
            .where(table.c.revoked_at.is_not(None))
            .where(table.c.not_after > utc_now())
        )
        with self._read("list revoked certificates") as conn:
            rows = conn.execute(query).all()
        return [RevokedSerial(int(row.serial, 16), row.revoked_at) for row in rows]

    def revoked_kiosks(self) -> set[str]:
        """Return the ids of revoked kiosks."""
        query = sa.select(schema.kiosks.c.kiosk_id).where(
            schema.kiosks.c.revoked_at.is_not(None)
        )
        with self._read("list revoked kiosks") as conn:
            return set(conn.execute(query).scalars())

    def certificate_revoked(self, serial: int) -> bool:
        """Return whether the certificate with ``serial`` is revoked or unknown."""
        table = schema.certificates
        query = sa.select(table.c.revoked_at).where(
            table.c.serial == format(serial, "x")
        )
        with self._read("check a certificate") as conn:
            row = conn.execute(query).first()
        return row is None or row.revoked_at is not None

    def store(self, batch: Batch) -> None:
        """Store a batch of parsed messages in one transaction, dropping repeats."""
        received = utc_now()
        with self._write("store telemetry") as conn:
            to_db = _time_converter(conn.dialect.name)
            if batch.health:
                rows = _health_rows(batch, to_db(received), to_db)
                self._insert_new(conn, schema.health, HEALTH_COLUMNS, rows)
                self._update_kiosks(conn, _health_updates(batch.health, received))
            if batch.events:
                # Events do not touch last_seen: health reports and status do,
                # and one update per event would halve the ingestion rate.
                rows = _event_rows(batch, to_db(received), to_db)
                self._insert_new(conn, schema.events, EVENT_COLUMNS, rows)
            for status in batch.statuses:
                self._store_status(conn, status, received)
            for ack in batch.acks:
                self._store_ack(conn, ack, received)

    def add_command(self, command: Command, requested_by: str) -> None:
        """Record a command the office is about to send."""
        row = {
            "command_id": command.message_id,
            "kiosk_id": command.kiosk_id,
            "name": command.name,
            "args": dict(command.args),
            "requested_by": requested_by[:80],
            "created_at": utc_now(),
        }
        with self._write("record a command") as conn:
            conn.execute(schema.commands.insert().values(**row))

    def command(self, command_id: str) -> dict[str, Any] | None:
        """Return a command's row as a dict (None when unknown)."""
        query = sa.select(schema.commands).where(
            schema.commands.c.command_id == command_id
        )
        with self._read("read a command") as conn:
            row = conn.execute(query).first()
        return None if row is None else dict(row._mapping)

    def commands_for(self, kiosk_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """Return the kiosk's most recent commands, newest first."""
        table = schema.commands
        query = (
            sa.select(table)
            .where(table.c.kiosk_id == kiosk_id)
            .order_by(table.c.created_at.desc())
            .limit(limit)
        )
        with self._read("list commands") as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def kiosks(self) -> list[KioskRecord]:
        """Return every registered kiosk."""
        expiry = (
            sa.select(
                schema.certificates.c.kiosk_id,
                sa.func.max(schema.certificates.c.not_after).label("expires"),
            )
            .where(schema.certificates.c.revoked_at.is_(None))
            .group_by(schema.certificates.c.kiosk_id)
            .subquery()
        )
        table = schema.kiosks
        query = (
            sa.select(table, expiry.c.expires)
            .outerjoin(expiry, expiry.c.kiosk_id == table.c.kiosk_id)
            .order_by(table.c.kiosk_id)
        )
        with self._read("list kiosks") as conn:
            return [_kiosk(row) for row in conn.execute(query)]

    def kiosk(self, kiosk_id: str) -> KioskRecord:
        """Return one kiosk, or raise NotFoundError."""
        for record in self.kiosks():
            if record.kiosk_id == kiosk_id:
                return record
        raise NotFoundError(f"no kiosk {kiosk_id!r} is registered")

    def health_history(self, kiosk_id: str, limit: int = 120) -> list[dict[str, Any]]:
        """Return the kiosk's latest health rows, oldest first."""
        table = schema.health
        query = (
            sa.select(table)
            .where(table.c.kiosk_id == kiosk_id)
            .order_by(table.c.sent_at.desc())
            .limit(limit)
        )
        with self._read("read health history") as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
        return rows[::-1]

    def recent_events(self, kiosk_id: str, limit: int = 30) -> list[dict[str, Any]]:
        """Return the kiosk's latest events, newest first."""
        table = schema.events
        query = (
            sa.select(table)
            .where(table.c.kiosk_id == kiosk_id)
            .order_by(table.c.occurred_at.desc())
            .limit(limit)
        )
        with self._read("read events") as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def count(self, table: sa.Table) -> int:
        """Return the number of rows in one of the fleet tables."""
        with self._read("count rows") as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            )

    def _insert_new(
        self,
        conn: Connection,
        table: sa.Table,
        columns: Sequence[str],
        rows: list[tuple[Any, ...]],
    ) -> None:
        # Plain DBAPI executemany with positional rows already in the driver's
        # types: SQLAlchemy's per-row bind processing cost more than the
        # database itself at thousands of rows per second.
        dialect = conn.dialect.name
        values = ", ".join(_placeholder(table, c, dialect) for c in columns)
        # Table and column names come from our schema, never from a message.
        sql = (
            f"INSERT INTO {table.name} ({', '.join(columns)}) "  # noqa: S608
            f"VALUES ({values}) ON CONFLICT DO NOTHING"
        )
        conn.exec_driver_sql(sql, rows)

    def _update_kiosks(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        table = schema.kiosks
        statement = (
            sa.update(table)
            .where(table.c.kiosk_id == sa.bindparam("k_id"))
            .values(
                last_seen=sa.bindparam("k_seen"),
                last_health=sa.bindparam("k_health", type_=schema.JSON),
                software_version=sa.bindparam("k_software"),
                model_version=sa.bindparam("k_model"),
            )
        )
        conn.execute(statement, rows)

    def _store_status(self, conn: Connection, status: Status, when: datetime) -> None:
        table = schema.kiosks
        newer = sa.or_(table.c.status_at.is_(None), table.c.status_at <= status.sent_at)
        values: dict[str, Any] = {"status": status.state, "status_at": status.sent_at}
        if status.state == "online":
            values["last_seen"] = when
        conn.execute(
            sa.update(table)
            .where(table.c.kiosk_id == status.kiosk_id)
            .where(table.c.revoked_at.is_(None))
            .where(newer)
            .values(**values)
        )

    def _store_ack(self, conn: Connection, ack: CommandAck, when: datetime) -> None:
        table = schema.commands
        conn.execute(
            sa.update(table)
            .where(table.c.command_id == ack.command_id)
            .where(table.c.kiosk_id == ack.kiosk_id)
            .values(
                outcome=ack.outcome,
                answered_at=when,
                detail=ack.detail,
                result=dict(ack.result),
            )
        )

    def _write(self, action: str) -> Any:
        return _Transaction(self.engine, action, write=True)

    def _read(self, action: str) -> Any:
        return _Transaction(self.engine, action, write=False)


class _Transaction:
    """A write or read transaction whose driver errors become StoreError."""

    def __init__(self, engine: Engine, action: str, *, write: bool) -> None:
        self.errors = database_errors(engine, action)
        self.transaction = (write_transaction if write else read_transaction)(engine)

    def __enter__(self) -> Connection:
        self.errors.__enter__()
        return self.transaction.__enter__()

    def __exit__(self, *exc: Any) -> bool:
        handled = self.transaction.__exit__(*exc)
        return bool(self.errors.__exit__(*exc) or handled)


def _placeholder(table: sa.Table, column: str, dialect: str) -> str:
    if dialect == "sqlite":
        return "?"
    cast = "::jsonb" if isinstance(table.c[column].type, sa.JSON) else ""
    return f"%s{cast}"


def _time_converter(dialect: str) -> Callable[[datetime], Any]:
    """Return how to hand an aware time to the driver, as UtcDateTime would."""
    if dialect == "sqlite":
        return _sqlite_time
    return _utc


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _sqlite_time(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _json_text(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))


HEALTH_COLUMNS = (
    "message_id",
    "kiosk_id",
    "sent_at",
    "received_at",
    "paper_percent",
    "cpu_temp_c",
    "load_1m",
    "memory_used_percent",
    "disk_used_percent",
    "outbox_depth",
)
EVENT_COLUMNS = (
    "message_id",
    "kiosk_id",
    "kind",
    "occurred_at",
    "sent_at",
    "received_at",
    "detail",
)


def _health_rows(
    batch: Batch, received: Any, to_db: Callable[[datetime], Any]
) -> list[tuple[Any, ...]]:
    """Return the batch's health rows in HEALTH_COLUMNS order, driver-ready."""
    return [
        (
            h.message_id,
            h.kiosk_id,
            to_db(h.sent_at),
            received,
            h.paper_percent,
            h.cpu_temp_c,
            h.load_1m,
            h.memory_used_percent,
            h.disk_used_percent,
            h.outbox_depth,
        )
        for h in batch.health
    ]


def _health_updates(health: list[Health], received: datetime) -> list[dict[str, Any]]:
    latest: dict[str, Health] = {}
    for item in health:
        known = latest.get(item.kiosk_id)
        if known is None or known.sent_at <= item.sent_at:
            latest[item.kiosk_id] = item
    return [
        {
            "k_id": item.kiosk_id,
            "k_seen": received,
            "k_health": item.model_dump(mode="json"),
            "k_software": item.software_version,
            "k_model": item.model_version,
        }
        for item in latest.values()
    ]


def _event_rows(
    batch: Batch, received: Any, to_db: Callable[[datetime], Any]
) -> list[tuple[Any, ...]]:
    """Return the batch's event rows in EVENT_COLUMNS order, driver-ready."""
    return [
        (
            e.message_id,
            e.kiosk_id,
            e.event_type,
            to_db(e.occurred_at),
            to_db(e.sent_at),
            received,
            _json_text(dict(e.detail)),
        )
        for e in batch.events
    ]


def _kiosk(row: Any) -> KioskRecord:
    return KioskRecord(
        kiosk_id=row.kiosk_id,
        enrolled_at=row.enrolled_at,
        revoked_at=row.revoked_at,
        status=row.status,
        last_seen=row.last_seen,
        software_version=row.software_version,
        model_version=row.model_version,
        last_health=row.last_health,
        certificate_expires_at=row.expires,
    )
