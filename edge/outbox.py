"""Send the outbox to the office, in order, until each entry is acknowledged.

The sender takes the oldest unacknowledged entry, uploads its pages, then
publishes it and waits for the office's :class:`~protocol.requests.RequestAck`;
only then does it move on, so requests reach the office in the order they
were submitted. A lost acknowledgement makes it send the same request again
with the same id, which the office stores once. Events are acknowledged by
the broker's PUBACK.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from edge.errors import TransportError
from edge.store import AgentStore, OutboxEntry
from protocol.envelope import MessageError, parse_message
from protocol.requests import Decision, RequestAck, schema_of
from protocol.topics import EVENTS, REQUESTS, kiosk_topic

logger = logging.getLogger(__name__)


class Publisher(Protocol):
    """Publish at QoS 1 and tell whether the broker acknowledged."""

    def publish(self, topic: str, payload: bytes, timeout: float) -> bool:
        """Publish ``payload`` on ``topic``."""


class Uploader(Protocol):
    """Upload page images by digest."""

    def upload(self, digest: str, data: bytes) -> None:
        """Upload one image."""


class OutboxSender:
    """A thread that drains the outbox in order."""

    def __init__(
        self,
        kiosk_id: str,
        store: AgentStore,
        publisher: Publisher,
        uploader: Uploader,
        retry_s: float = 2.0,
        ack_timeout_s: float = 10.0,
    ) -> None:
        self.kiosk_id = kiosk_id
        self.store = store
        self.publisher = publisher
        self.uploader = uploader
        self.retry_s = retry_s
        self.ack_timeout_s = ack_timeout_s
        self.on_ack: Callable[[RequestAck], None] = lambda ack: None
        self.on_decision: Callable[[Decision], None] = lambda decision: None
        self.dropped = 0
        self._wake = threading.Event()
        self._acked = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start sending."""
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sending (what is unsent stays on disk)."""
        self._stop.set()
        self._wake.set()
        with self._acked:
            self._acked.notify_all()
        if self._thread is not None:
            self._thread.join(5)

    def wake(self) -> None:
        """Look at the outbox now (after a submit or a reconnection)."""
        self._wake.set()

    def pending(self) -> int:
        """Return how many entries wait for the office."""
        return sum(1 for entry in self.store.entries() if not entry.acked)

    def handle(self, topic: str, payload: bytes) -> None:
        """Take an acknowledgement or a decision from the office."""
        try:
            kind = schema_of(payload)
            if kind == RequestAck.SCHEMA:
                self._take_ack(parse_message(RequestAck, payload))
            elif kind == Decision.SCHEMA:
                self._take_decision(parse_message(Decision, payload))
            else:
                raise MessageError(f"unexpected {kind!r} message")
        except MessageError as exc:
            self.dropped += 1
            logger.warning("dropped a message on %s: %s", topic, exc)

    def _take_ack(self, ack: RequestAck) -> None:
        if self.store.mark_acked(ack.request_id, ack.model_dump(mode="json")):
            logger.info("office acknowledged request %s", ack.request_id)
        with self._acked:
            self._acked.notify_all()
        self.on_ack(ack)

    def _take_decision(self, decision: Decision) -> None:
        if self.store.entry(decision.request_id) is None:
            logger.warning("decision for unknown request %s", decision.request_id)
            return
        self.store.mark_acked(decision.request_id, {"by": "decision"})
        with self._acked:
            self._acked.notify_all()
        if self.store.record_decision(
            decision.request_id, decision.model_dump(mode="json")
        ):
            logger.info(
                "decision for request %s: approved %s",
                decision.request_id,
                decision.approved,
            )
        self.on_decision(decision)

    def _run(self) -> None:
        while not self._stop.is_set():
            entry = self.store.next_unacked()
            if entry is None:
                self._wake.wait(5.0)
                self._wake.clear()
                continue
            try:
                sent = self._send(entry)
            except TransportError as exc:
                logger.warning("request %s not sent yet: %s", entry.request_id, exc)
                sent = False
            except Exception:
                logger.exception("sending request %s failed", entry.request_id)
                sent = False
            if not sent:
                self._wake.wait(self.retry_s)
                self._wake.clear()

    def _send(self, entry: OutboxEntry) -> bool:
        if entry.kind == "event":
            topic = kiosk_topic(self.kiosk_id, EVENTS)
            if not self.publisher.publish(topic, entry.payload.encode(), 5.0):
                return False
            return self.store.mark_acked(entry.request_id, {"by": "puback"}) or True
        for digest, jpeg in self.store.outbox_pages(entry.request_id):
            self.uploader.upload(digest, jpeg)
        self.store.count_attempt(entry.request_id)
        topic = kiosk_topic(self.kiosk_id, REQUESTS)
        if not self.publisher.publish(topic, entry.payload.encode(), 5.0):
            return False
        return self._wait_ack(entry.request_id)

    def _wait_ack(self, request_id: str) -> bool:
        with self._acked:
            return self._acked.wait_for(
                lambda: self._is_acked(request_id) or self._stop.is_set(),
                self.ack_timeout_s,
            )

    def _is_acked(self, request_id: str) -> bool:
        entry = self.store.entry(request_id)
        return entry is None or entry.acked
