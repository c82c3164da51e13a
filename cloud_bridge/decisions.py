"""Tell kiosks about officers' decisions through an outbox in the database.

After each decision the console calls a :class:`DecisionSink`. The default
sink, :class:`OutboxDecisionSink`, writes one row to ``decision_outbox``;
the kiosk intake reads unpublished rows with :func:`pending_decisions`,
publishes each over MQTT to the kiosk, and marks them with
:func:`mark_published`, which also erases the access code from the row.

An approval's payload (JSON) holds ``request_id``, ``decision``
("approved"), ``copy_id``, ``access_code``, ``cert_number``, ``book``,
``issued_on`` and ``pdf_sha256``, which the kiosk needs to print the copy
and the receipt; a rejection's holds ``request_id``, ``decision``
("rejected") and ``reason``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud_bridge.console.tables import decision_outbox
from cloud_bridge.copies import IssuedCopy
from cloud_bridge.store import RequestRecord
from cloud_bridge.store.engine import read_transaction, write_transaction

logger = logging.getLogger(__name__)


class DecisionSink(Protocol):
    """Receives each decision right after it is recorded."""

    def approved(self, request: RequestRecord, issued: IssuedCopy) -> None:
        """Handle an approval and the copy it issued."""

    def rejected(self, request: RequestRecord, reason: str) -> None:
        """Handle a rejection and its reason."""


@dataclass(frozen=True)
class OutboxDecision:
    """One decision waiting to be published to its kiosk."""

    outbox_id: int
    request_id: str
    kiosk_id: str
    decision: str
    copy_id: str | None
    payload: dict[str, Any]
    created_at: datetime


class OutboxDecisionSink:
    """Record decisions in ``decision_outbox`` for the kiosk intake to publish."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def approved(self, request: RequestRecord, issued: IssuedCopy) -> None:
        """Queue an approval with what the kiosk needs to print."""
        record = issued.record
        payload = {
            "request_id": request.request_id,
            "decision": "approved",
            "copy_id": record.copy_id,
            "access_code": issued.access_code,
            "cert_number": record.cert_number,
            "book": record.book,
            "issued_on": record.issued_on.isoformat(),
            "pdf_sha256": record.pdf_sha256,
        }
        self._insert(request, "approved", record.copy_id, payload)

    def rejected(self, request: RequestRecord, reason: str) -> None:
        """Queue a rejection with its reason."""
        payload = {
            "request_id": request.request_id,
            "decision": "rejected",
            "reason": reason,
        }
        self._insert(request, "rejected", None, payload)

    def _insert(
        self,
        request: RequestRecord,
        decision: str,
        copy_id: str | None,
        payload: dict[str, Any],
    ) -> None:
        with write_transaction(self._engine) as connection:
            connection.execute(
                decision_outbox.insert().values(
                    request_id=request.request_id,
                    kiosk_id=request.kiosk_id,
                    decision=decision,
                    copy_id=copy_id,
                    payload=json.dumps(payload, ensure_ascii=False),
                    created_at=datetime.now(UTC),
                    published_at=None,
                )
            )
        logger.debug("queued %s of %s for kiosk", decision, request.request_id)


def pending_decisions(engine: Engine, limit: int = 100) -> list[OutboxDecision]:
    """Return unpublished decisions, oldest first."""
    query = (
        sa.select(decision_outbox)
        .where(decision_outbox.c.published_at.is_(None))
        .order_by(decision_outbox.c.outbox_id)
        .limit(limit)
    )
    with read_transaction(engine) as connection:
        rows = connection.execute(query).all()
    return [
        OutboxDecision(
            row.outbox_id,
            row.request_id,
            row.kiosk_id,
            row.decision,
            row.copy_id,
            json.loads(row.payload),
            row.created_at,
        )
        for row in rows
    ]


def mark_published(engine: Engine, outbox_ids: list[int]) -> None:
    """Mark decisions as delivered to their kiosk and erase their access codes."""
    if not outbox_ids:
        return
    with write_transaction(engine) as connection:
        rows = connection.execute(
            sa.select(decision_outbox.c.outbox_id, decision_outbox.c.payload).where(
                decision_outbox.c.outbox_id.in_(outbox_ids)
            )
        ).all()
        now = datetime.now(UTC)
        for row in rows:
            payload = json.loads(row.payload)
            payload.pop("access_code", None)
            connection.execute(
                decision_outbox.update()
                .where(decision_outbox.c.outbox_id == row.outbox_id)
                .values(published_at=now, payload=json.dumps(payload))
            )
