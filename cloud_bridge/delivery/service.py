"""Queue deliveries in the database and attempt them until acknowledged.

A delivery row is written when a copy is issued (one per channel, unique per
copy and channel, so a copy is never queued twice). :meth:`run_due` attempts
every row whose time has come; a failure doubles the wait before the next
attempt, up to ``max_retry_s``, and nothing is ever dropped: a row stays
``pending`` until acknowledged, and the console lists those that failed.
The access code is kept in the row only until the delivery succeeds.

Several bridge instances may run :meth:`run_due` on one database: each
delivery is leased (:mod:`.leases`) before it is sent, so only one of them
sends it, and a lease left by a crashed instance expires and is taken over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud_bridge import audit
from cloud_bridge.archive import BlobStore
from cloud_bridge.config import BridgeConfig
from cloud_bridge.console.tables import deliveries, delivery_leases
from cloud_bridge.delivery.leases import DeliveryLeases, new_owner
from cloud_bridge.delivery.mail import build_message, send_message
from cloud_bridge.delivery.wallet import post_to_wallet
from cloud_bridge.errors import BridgeError
from cloud_bridge.store import CopyStore, RequestRecord
from cloud_bridge.store.engine import read_transaction, write_transaction

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One queued delivery and its state."""

    delivery_id: int
    copy_id: str
    channel: str
    target: str
    attach_pdf: bool
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None


def wanted_channels(request: RequestRecord) -> list[tuple[str, str, bool]]:
    """Return (channel, target, attach_pdf) the citizen chose in the request."""
    choice = request.metadata.get("delivery")
    if not isinstance(choice, dict):
        return []
    wanted: list[tuple[str, str, bool]] = []
    email = choice.get("email")
    if isinstance(email, str) and "@" in email:
        wanted.append(("email", email.strip(), bool(choice.get("attach_pdf"))))
    wallet = choice.get("wallet")
    if isinstance(wallet, str) and wallet.strip():
        wanted.append(("wallet", wallet.strip(), False))
    return wanted


class DeliveryService:
    """Queue and attempt deliveries of issued copies."""

    def __init__(
        self,
        config: BridgeConfig,
        store: CopyStore,
        archive: BlobStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        owner: str | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._archive = archive
        self._clock = clock
        self._leases = DeliveryLeases(
            store.engine, owner or new_owner(), config.delivery.lease_s
        )

    @property
    def engine(self) -> Engine:
        """The database holding the queue."""
        return self._store.engine

    def enqueue(self, request: RequestRecord, copy_id: str, access_code: str) -> int:
        """Queue the deliveries the citizen chose; return how many were queued."""
        now = self._clock()
        queued = 0
        with write_transaction(self.engine) as connection:
            for channel, target, attach in wanted_channels(request):
                exists = connection.execute(
                    sa.select(deliveries.c.delivery_id).where(
                        deliveries.c.copy_id == copy_id,
                        deliveries.c.channel == channel,
                    )
                ).first()
                if exists:
                    continue
                connection.execute(
                    deliveries.insert().values(
                        copy_id=copy_id,
                        channel=channel,
                        target=target,
                        attach_pdf=attach,
                        access_code=access_code,
                        state="pending",
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
                queued += 1
        return queued

    def run_due(self) -> int:
        """Attempt every due delivery no other instance holds; count successes."""
        now = self._clock()
        query = (
            sa.select(deliveries.c.delivery_id)
            .outerjoin(
                delivery_leases,
                delivery_leases.c.delivery_id == deliveries.c.delivery_id,
            )
            .where(
                deliveries.c.state == "pending",
                deliveries.c.next_attempt_at <= now,
                sa.or_(
                    delivery_leases.c.expires_at.is_(None),
                    delivery_leases.c.expires_at <= now,
                ),
            )
            .order_by(deliveries.c.delivery_id)
        )
        with read_transaction(self.engine) as connection:
            due = list(connection.execute(query).scalars())
        delivered = 0
        for delivery_id in due:
            row = self._leases.claim(delivery_id, self._clock())
            if row is not None and self._attempt(row):
                delivered += 1
        return delivered

    def retry_now(self, delivery_id: int) -> None:
        """Make a pending delivery due at once (the console's Retry button)."""
        with write_transaction(self.engine) as connection:
            connection.execute(
                deliveries.update()
                .where(
                    deliveries.c.delivery_id == delivery_id,
                    deliveries.c.state == "pending",
                )
                .values(next_attempt_at=self._clock())
            )

    def listing(self, *, failed_only: bool = False, limit: int = 200) -> list[Delivery]:
        """Return deliveries, newest first; only retried ones when failed_only."""
        query = sa.select(deliveries).order_by(deliveries.c.delivery_id.desc())
        if failed_only:
            query = query.where(
                deliveries.c.state == "pending", deliveries.c.attempts > 0
            )
        with read_transaction(self.engine) as connection:
            rows = connection.execute(query.limit(limit)).all()
        return [_delivery(row) for row in rows]

    def _attempt(self, row: Any) -> bool:
        try:
            self._send(row)
        except BridgeError as exc:
            self._failed(row, str(exc))
            return False
        self._delivered(row)
        return True

    def _send(self, row: Any) -> None:
        record = self._store.get_copy(row.copy_id)
        link = self._config.copies.lookup_url + record.copy_id
        if row.channel == "email":
            pdf = None
            if row.attach_pdf and record.pdf_sha256:
                pdf = self._archive.get(record.pdf_sha256)
            settings = self._config.delivery.smtp
            message = build_message(
                settings, row.target, record, link, row.access_code or "", pdf
            )
            send_message(settings, message)
            return
        payload = {
            "copy_id": record.copy_id,
            "wallet_account": row.target,
            "lookup_url": link,
            "access_code": row.access_code,
            "document_type": record.document_type,
            "issued_on": record.issued_on.isoformat(),
            "pdf_sha256": record.pdf_sha256,
        }
        post_to_wallet(self._config.delivery.wallet, record.copy_id, payload)

    def _failed(self, row: Any, error: str) -> None:
        settings = self._config.delivery
        attempts = int(row.attempts) + 1
        wait = min(settings.first_retry_s * 2 ** (attempts - 1), settings.max_retry_s)
        logger.warning(
            "delivery %s of copy %s by %s failed (attempt %s): %s",
            row.delivery_id,
            row.copy_id,
            row.channel,
            attempts,
            error,
        )
        with write_transaction(self.engine) as connection:
            connection.execute(
                deliveries.update()
                .where(deliveries.c.delivery_id == row.delivery_id)
                .values(
                    attempts=attempts,
                    last_error=error[:2000],
                    next_attempt_at=self._clock() + timedelta(seconds=wait),
                )
            )
            self._leases.release(connection, row.delivery_id)

    def _delivered(self, row: Any) -> None:
        with write_transaction(self.engine) as connection:
            connection.execute(
                deliveries.update()
                .where(deliveries.c.delivery_id == row.delivery_id)
                .values(
                    state="delivered",
                    attempts=int(row.attempts) + 1,
                    delivered_at=self._clock(),
                    access_code=None,
                    last_error=None,
                )
            )
            if not self._leases.release(connection, row.delivery_id):
                logger.warning(
                    "the lease on delivery %s ran out while sending; another "
                    "instance may send it too: raise delivery.lease_s",
                    row.delivery_id,
                )
            audit.append(
                connection,
                "system",
                f"delivery.{row.channel}",
                row.copy_id,
                {"delivery_id": row.delivery_id},
            )
        logger.info("delivered copy %s by %s", row.copy_id, row.channel)


def _delivery(row: Any) -> Delivery:
    return Delivery(
        row.delivery_id,
        row.copy_id,
        row.channel,
        row.target,
        row.attach_pdf,
        row.state,
        row.attempts,
        row.next_attempt_at,
        row.last_error,
        row.delivered_at,
    )
