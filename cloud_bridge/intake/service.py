"""Store a kiosk's request once and answer with an acknowledgement.

A request is accepted when its pages were uploaded and the copy service
takes it; the same request id again (a kiosk retrying after a lost
acknowledgement) stores nothing new and is acknowledged again. A request
that can never be stored (bad pages, unknown document type) is refused
with a reason; one that fails for a passing cause (database down) gets no
answer, so the kiosk sends it again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from cloud_bridge.copies import CopyRequest
from cloud_bridge.errors import BridgeError, InputError, NotFoundError
from cloud_bridge.intake.tables import intake_requests
from cloud_bridge.store.engine import write_transaction
from protocol.envelope import new_message
from protocol.requests import CertificationRequest, Decision, RequestAck

logger = logging.getLogger(__name__)


class IntakeService:
    """Turn kiosk requests into stored, pending requests."""

    def __init__(self, bridge: Any) -> None:
        self.bridge = bridge

    def receive(
        self, kiosk_id: str, request: CertificationRequest
    ) -> RequestAck | None:
        """Store ``request`` from ``kiosk_id``; None when it should be retried."""
        if request.kiosk_id != kiosk_id:
            return self._refuse(request, "the request names another kiosk")
        try:
            sources = [self.bridge.archive.get(d) for d in request.page_sha256]
        except (NotFoundError, BridgeError) as exc:
            logger.warning("request %s: pages missing: %s", request.request_id, exc)
            return None
        try:
            self.bridge.copies.submit(sources, _copy_request(request))
        except InputError as exc:
            return self._refuse(request, str(exc))
        except BridgeError as exc:
            logger.error("request %s not stored: %s", request.request_id, exc)
            return None
        self._record(request)
        return new_message(
            RequestAck,
            request_id=request.request_id,
            accepted=True,
            queue_position=self.queue_position(request.request_id, request.office_code),
        )

    def queue_position(self, request_id: str, office_code: str) -> int:
        """Return how many pending requests of the office are older."""
        pending = self.bridge.store.list_requests(
            state="pending", office_code=office_code, limit=1000
        )
        ids = [record.request_id for record in pending]
        return ids.index(request_id) if request_id in ids else 0

    def _record(self, request: CertificationRequest) -> None:
        details = request.model_dump(
            mode="json",
            include={
                "fields",
                "face",
                "liveness",
                "quality",
                "mismatches",
                "fee_vnd",
                "delivery",
                "language",
            },
        )
        with write_transaction(self.bridge.store.engine) as connection:
            exists = connection.execute(
                sa.select(intake_requests.c.request_id).where(
                    intake_requests.c.request_id == request.request_id
                )
            ).first()
            if exists is not None:
                logger.debug("request %s received again", request.request_id)
                return
            connection.execute(
                intake_requests.insert().values(
                    request_id=request.request_id,
                    kiosk_id=request.kiosk_id,
                    sequence=request.sequence,
                    message_id=request.message_id,
                    metadata=details,
                    received_at=datetime.now(UTC),
                )
            )
        logger.info(
            "request %s (number %s) from kiosk %s stored",
            request.request_id,
            request.sequence,
            request.kiosk_id,
        )

    def _refuse(self, request: CertificationRequest, reason: str) -> RequestAck:
        logger.warning("request %s refused: %s", request.request_id, reason)
        return new_message(
            RequestAck, request_id=request.request_id, accepted=False, reason=reason
        )

    def details(self, request_id: str) -> dict[str, Any] | None:
        """Return what the kiosk reported with a request."""
        with self.bridge.store.engine.connect() as connection:
            row = connection.execute(
                sa.select(intake_requests.c.metadata).where(
                    intake_requests.c.request_id == request_id
                )
            ).first()
        return None if row is None else dict(row[0])


def decision_message(payload: dict[str, Any], lookup_url: str) -> Decision:
    """Build the kiosk's decision message from a decision outbox payload."""
    approved = payload.get("decision") == "approved"
    copy_id = payload.get("copy_id")
    return new_message(
        Decision,
        request_id=payload["request_id"],
        approved=approved,
        reason=payload.get("reason"),
        copy_id=copy_id,
        access_code=payload.get("access_code"),
        lookup_url=lookup_url.rstrip("/") + "/" + copy_id if copy_id else None,
        pdf_sha256=payload.get("pdf_sha256"),
    )


def _copy_request(request: CertificationRequest) -> CopyRequest:
    return CopyRequest(
        document_type=request.document_type,
        citizen_name=request.citizen_name,
        citizen_id_number=request.citizen_id_masked,
        page_count=len(request.page_sha256),
        office_code=request.office_code,
        kiosk_id=request.kiosk_id,
        request_id=request.request_id,
    )
