"""The visit's events for the office: what happened, never who it happened to.

The controller reports each event to an :data:`EventSink`; on a provisioned
kiosk the sink is the telemetry service, which writes the event to its
SQLite outbox and sends it in order until the broker acknowledges it, each
with its message id as the idempotency key. Details are small facts: the
step, the face check's result and score, the request id. Names, ID
numbers, e-mail addresses and face data never go into an event;
:func:`safe_detail` refuses anything else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from protocol.telemetry import DetailValue

logger = logging.getLogger(__name__)

EventSink = Callable[[str, dict[str, DetailValue]], None]
ALLOWED_DETAILS = frozenset(
    {
        "visit",
        "n",
        "step",
        "from_step",
        "try",
        "matched",
        "live",
        "score",
        "reason",
        "request_id",
        "sequence",
        "pages",
        "copies",
        "outcome",
        "staff_checked",
    }
)


def no_events(kind: str, detail: dict[str, DetailValue]) -> None:
    """Drop the event (a kiosk without telemetry)."""


def safe_detail(detail: dict[str, DetailValue]) -> dict[str, DetailValue]:
    """Return ``detail`` restricted to the facts an event may carry."""
    unknown = sorted(set(detail) - ALLOWED_DETAILS)
    if unknown:
        logger.error("event details %s are not allowed and were dropped", unknown)
    return {key: value for key, value in detail.items() if key in ALLOWED_DETAILS}


class VisitEvents:
    """Number one kiosk's visit events and pass them to a sink; never raise."""

    def __init__(self, sink: EventSink = no_events) -> None:
        self.sink = sink
        self._visit = ""
        self._count = 0

    def start(self, visit: str) -> None:
        """Begin numbering the events of a new visit."""
        self._visit = visit[:12]
        self._count = 0

    def emit(self, kind: str, **detail: DetailValue) -> None:
        """Send one event of the current visit."""
        self._count += 1
        facts = safe_detail({"visit": self._visit, "n": self._count, **detail})
        try:
            self.sink(kind, facts)
        except Exception:
            logger.exception("the %s event could not be queued", kind)
