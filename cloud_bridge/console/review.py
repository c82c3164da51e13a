"""Officers' decisions: approve (sign the copy), reject, and time each review.

An approval calls the certified-copy chain in the officer's name and title
from their user record, then tells the kiosk (the decision sink), queues
the citizen's deliveries and appends to the audit log. The time from the
officer opening the request page to the decision is recorded; the
supervisor's page shows the median. Approving several requests at once from
the queue records no review time, since no page was opened for them.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud_bridge import audit
from cloud_bridge.console.tables import review_times
from cloud_bridge.console.users import User
from cloud_bridge.copies import IssuedCopy, Officer
from cloud_bridge.decisions import DecisionSink
from cloud_bridge.delivery.service import DeliveryService
from cloud_bridge.errors import InputError
from cloud_bridge.store import RequestRecord
from cloud_bridge.store.engine import read_transaction, write_transaction

logger = logging.getLogger(__name__)

MAX_REASON = 500


@dataclass(frozen=True)
class ReviewStats:
    """How long officers took per decided request."""

    decisions: int
    median_s: float | None


class ReviewService:
    """Record decisions on requests and the time officers spent on them."""

    def __init__(
        self, bridge: Any, sink: DecisionSink, deliveries: DeliveryService
    ) -> None:
        self._bridge = bridge
        self._sink = sink
        self._deliveries = deliveries

    @property
    def engine(self) -> Engine:
        """The bridge database."""
        return self._bridge.store.engine  # type: ignore[no-any-return]

    def opened(self, request_id: str, user: User) -> None:
        """Record that an officer opened a request's page."""
        with write_transaction(self.engine) as connection:
            connection.execute(
                review_times.insert().values(
                    request_id=request_id,
                    username=user.username,
                    opened_at=datetime.now(UTC),
                )
            )
            audit.append(connection, user.username, "request.view", request_id, {})

    def approve(self, request_id: str, user: User) -> IssuedCopy:
        """Certify the request in the officer's name; return the issued copy."""
        issued: IssuedCopy = self._bridge.copies.certify(
            request_id, Officer(user.full_name, user.title)
        )
        request: RequestRecord = self._bridge.store.get_request(request_id)
        self._finish(request, user, "approved", {"copy_id": issued.copy_id})
        self._sink.approved(request, issued)
        self._deliveries.enqueue(request, issued.copy_id, issued.access_code)
        logger.info("request %s approved by %s", request_id, user.username)
        return issued

    def reject(self, request_id: str, user: User, reason: str) -> RequestRecord:
        """Reject a pending request with a reason the citizen will read."""
        reason = reason.strip()
        if not reason or len(reason) > MAX_REASON:
            raise InputError(
                f"give a reason for the rejection (1 to {MAX_REASON} characters)"
            )
        current: RequestRecord = self._bridge.store.get_request(request_id)
        if current.state != "pending":
            raise InputError(f"request {request_id} was already {current.state}")
        request: RequestRecord = self._bridge.store.decide_request(
            request_id, approve=False, decided_by=user.full_name, reason=reason
        )
        self._finish(request, user, "rejected", {"reason": reason})
        self._sink.rejected(request, reason)
        logger.info("request %s rejected by %s", request_id, user.username)
        return request

    def stats(self, since: timedelta = timedelta(days=30)) -> ReviewStats:
        """Return the number of timed decisions and their median duration."""
        query = sa.select(review_times.c.seconds).where(
            review_times.c.seconds.is_not(None),
            review_times.c.decided_at >= datetime.now(UTC) - since,
        )
        with read_transaction(self.engine) as connection:
            seconds = [float(value) for value in connection.execute(query).scalars()]
        median = statistics.median(seconds) if seconds else None
        return ReviewStats(len(seconds), median)

    def _finish(
        self,
        request: RequestRecord,
        user: User,
        decision: str,
        detail: dict[str, str],
    ) -> None:
        now = datetime.now(UTC)
        with write_transaction(self.engine) as connection:
            row = connection.execute(
                sa.select(review_times.c.review_id, review_times.c.opened_at)
                .where(
                    review_times.c.request_id == request.request_id,
                    review_times.c.username == user.username,
                    review_times.c.decided_at.is_(None),
                )
                .order_by(review_times.c.review_id.desc())
                .limit(1)
            ).first()
            if row is not None:
                connection.execute(
                    review_times.update()
                    .where(review_times.c.review_id == row.review_id)
                    .values(
                        decided_at=now,
                        decision=decision,
                        seconds=(now - row.opened_at).total_seconds(),
                    )
                )
            audit.append(
                connection,
                user.username,
                f"request.{decision}",
                request.request_id,
                detail,
            )
