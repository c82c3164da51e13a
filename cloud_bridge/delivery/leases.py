"""Leases in the database, so one delivery is sent by one bridge instance at a time.

Before sending, an instance claims the delivery with one statement: insert a
lease row naming itself, or take over an existing row only when that lease
has expired (``INSERT ... ON CONFLICT DO UPDATE ... WHERE expires_at <=
now``, the same statement on PostgreSQL and SQLite). PostgreSQL locks the
conflicting row while deciding, so two instances claiming at once cannot
both win. The claim then re-reads the delivery in the same transaction and
gives the lease back when another instance finished it meanwhile.

A sender that crashes leaves its lease until it expires; then any instance
takes it over and finishes the delivery. A crash after the mail server
accepted the message but before the row was marked delivered makes that
message go out twice: SMTP has no way to ask whether a message was
received, so delivery is at least once, and exactly once whenever no
instance dies in that window. The lease must outlast the longest send
(``delivery.lease_s``, well above the SMTP and wallet timeouts).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from cloud_bridge.console.tables import deliveries, delivery_leases
from cloud_bridge.store.engine import write_transaction

logger = logging.getLogger(__name__)


def new_owner() -> str:
    """Return a name for this sender: host, process and a random suffix."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


class DeliveryLeases:
    """Claim and release deliveries for one sender."""

    def __init__(self, engine: Engine, owner: str, lease_s: float) -> None:
        self._engine = engine
        self.owner = owner
        self._lease = timedelta(seconds=lease_s)

    def claim(self, delivery_id: int, now: datetime) -> Any | None:
        """Lease a due, pending delivery; return its row, or None if not ours."""
        with write_transaction(self._engine) as connection:
            if not self._take(connection, delivery_id, now):
                return None
            row = connection.execute(
                sa.select(deliveries).where(
                    deliveries.c.delivery_id == delivery_id,
                    deliveries.c.state == "pending",
                    deliveries.c.next_attempt_at <= now,
                )
            ).first()
            if row is None:
                self.release(connection, delivery_id)
                return None
        logger.debug("%s leased delivery %s", self.owner, delivery_id)
        return row

    def release(self, connection: Connection, delivery_id: int) -> bool:
        """Drop this sender's lease in the caller's transaction; False if lost."""
        result = connection.execute(
            delivery_leases.delete().where(
                delivery_leases.c.delivery_id == delivery_id,
                delivery_leases.c.owner == self.owner,
            )
        )
        return bool(result.rowcount)

    def _take(self, connection: Connection, delivery_id: int, now: datetime) -> bool:
        insert = _insert(connection).values(
            delivery_id=delivery_id, owner=self.owner, expires_at=now + self._lease
        )
        statement = insert.on_conflict_do_update(
            index_elements=[delivery_leases.c.delivery_id],
            set_={
                "owner": insert.excluded.owner,
                "expires_at": insert.excluded.expires_at,
            },
            where=delivery_leases.c.expires_at <= now,
        ).returning(delivery_leases.c.owner)
        taken = connection.execute(statement).first()
        return taken is not None and taken.owner == self.owner


def _insert(connection: Connection) -> Any:
    if connection.dialect.name == "postgresql":
        return postgresql.insert(delivery_leases)
    return sqlite.insert(delivery_leases)
