"""Consume kiosk telemetry from the broker into the database.

Several bridge instances subscribe to the same MQTT 5 shared subscriptions
(``$share/<group>/kiosk/+/telemetry`` and so on), so the broker hands each
message to one of them. Messages are acknowledged (QoS 1, manual PUBACK)
only after the batch holding them is committed, so a bridge that dies
mid-batch loses nothing: the broker redelivers, and the unique message ids
drop what was already stored. Oversized, malformed, spoofed (payload names
another kiosk than the topic) and revoked kiosks' messages are dropped and
counted; nothing a kiosk sends can stop the consumer.

Shared subscriptions do not receive retained messages, so a bridge that
starts learns a kiosk's status from its next status change or health report.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from cloud_bridge.errors import StoreError
from cloud_bridge.fleet.mqtt_client import BrokerAddress, make_client
from cloud_bridge.fleet.registry import Batch, FleetRegistry
from protocol.commands import ACK_LEAF, CommandAck
from protocol.envelope import Envelope, MessageError, parse_message
from protocol.telemetry import Event, Health, Status
from protocol.topics import (
    EVENTS,
    STATUS,
    TELEMETRY,
    TopicError,
    shared,
    split_kiosk_topic,
)

logger = logging.getLogger(__name__)

LEAVES: dict[str, type[Envelope]] = {
    TELEMETRY: Health,
    EVENTS: Event,
    STATUS: Status,
    ACK_LEAF: CommandAck,
}
SESSION_EXPIRY_S = 3600
REVOKED_REFRESH_S = 30.0
LAG_SAMPLES = 20_000
RECEIVE_MAXIMUM = 20_000


@dataclass
class IngestStats:
    """What one consumer has seen since it started."""

    received: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    stored: int = 0
    batches: int = 0
    store_errors: int = 0
    lags_s: deque[float] = field(default_factory=lambda: deque(maxlen=LAG_SAMPLES))
    handled_ids: set[str] | None = None


@dataclass(frozen=True)
class _Incoming:
    mid: int
    qos: int
    topic: str
    payload: bytes


class Ingestor:
    """One bridge instance's consumer of the shared kiosk subscriptions."""

    def __init__(
        self,
        registry: FleetRegistry,
        address: BrokerAddress,
        *,
        share_group: str = "bridge",
        batch_size: int = 500,
        batch_wait_ms: int = 50,
        max_payload_bytes: int = 64_000,
        client_id: str | None = None,
        keep_ids: bool = False,
    ) -> None:
        self.registry = registry
        self.share_group = share_group
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_ms / 1000
        self.max_payload_bytes = max_payload_bytes
        self.stats = IngestStats(handled_ids=set() if keep_ids else None)
        self.connected = threading.Event()
        self._queue: queue.Queue[_Incoming] = queue.Queue()
        self._stop = threading.Event()
        self._revoked: set[str] = set()
        self._revoked_at = 0.0
        self._client = make_client(address, client_id, manual_ack=True)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._address = address
        self._writer = threading.Thread(
            target=self._run, name="fleet-ingest", daemon=True
        )

    def start(self, timeout: float = 10.0) -> None:
        """Connect, subscribe and start writing; wait until subscribed."""
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        # Without this the broker keeps only a few unacknowledged messages in
        # flight, and acknowledging after each commit would cap throughput.
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        self._client.connect(
            self._address.host,
            self._address.port,
            keepalive=30,
            clean_start=False,
            properties=properties,
        )
        self._client.loop_start()
        self._writer.start()
        if not self.connected.wait(timeout):
            self.stop()
            raise StoreError(
                f"the bridge could not subscribe at {self._address.host}:"
                f"{self._address.port} within {timeout:.0f} s; check the broker"
            )

    def stop(self) -> None:
        """Write what is queued, then disconnect."""
        self._stop.set()
        if self._writer.is_alive():
            self._writer.join(timeout=30)
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: object,
        code: ReasonCode,
        _properties: object,
    ) -> None:
        if code.is_failure:
            logger.error("broker refused the bridge: %s", code)
            return
        topics = [(shared(self.share_group, f"kiosk/+/{leaf}"), 1) for leaf in LEAVES]
        client.subscribe(topics)
        logger.info("bridge subscribed to %s kiosk topics", len(topics))
        self.connected.set()

    def _on_message(
        self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage
    ) -> None:
        self._queue.put(
            _Incoming(message.mid, message.qos, message.topic, bytes(message.payload))
        )

    def _run(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            incoming = self._collect()
            if incoming:
                self._handle(incoming)

    def _collect(self) -> list[_Incoming]:
        items: list[_Incoming] = []
        deadline = time.monotonic() + self.batch_wait_s
        while len(items) < self.batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                items.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                break
        return items

    def _handle(self, incoming: list[_Incoming]) -> None:
        batch = Batch()
        for item in incoming:
            self._add(batch, item)
        try:
            if len(batch):
                self.registry.store(batch)
        except StoreError:
            # Unacknowledged messages come back after a reconnect; drop the
            # connection so the broker redelivers them now.
            self.stats.store_errors += 1
            logger.exception(
                "could not store %s kiosk messages; reconnecting", len(batch)
            )
            self._client.reconnect()
            return
        self._record(batch)
        for item in incoming:
            if item.qos > 0:
                self._client.ack(item.mid, item.qos)

    def _add(self, batch: Batch, item: _Incoming) -> None:
        message = self._parse(item)
        if message is None:
            return
        if isinstance(message, Health):
            batch.health.append(message)
        elif isinstance(message, Event):
            batch.events.append(message)
        elif isinstance(message, Status):
            batch.statuses.append(message)
        elif isinstance(message, CommandAck):
            batch.acks.append(message)

    def _parse(self, item: _Incoming) -> Envelope | None:
        if len(item.payload) > self.max_payload_bytes:
            self._drop("oversized", item)
            return None
        try:
            kiosk_id, leaf = split_kiosk_topic(item.topic)
            kind = LEAVES[leaf]
            message = parse_message(kind, item.payload)
        except (TopicError, KeyError, MessageError):
            self._drop("malformed", item)
            return None
        if getattr(message, "kiosk_id", None) != kiosk_id:
            self._drop("spoofed", item)
            return None
        if kiosk_id in self._revoked_kiosks():
            self._drop("revoked", item)
            return None
        self.stats.received[kind.SCHEMA] += 1
        return message

    def _drop(self, reason: str, item: _Incoming) -> None:
        self.stats.dropped[reason] += 1
        logger.warning(
            "dropped a %s message of %s bytes on %s",
            reason,
            len(item.payload),
            item.topic[:120],
        )
        return None

    def _revoked_kiosks(self) -> set[str]:
        now = time.monotonic()
        if now - self._revoked_at > REVOKED_REFRESH_S:
            try:
                self._revoked = self.registry.revoked_kiosks()
                self._revoked_at = now
            except StoreError:
                logger.warning(
                    "could not refresh the revoked kiosks; using the last list"
                )
        return self._revoked

    def _record(self, batch: Batch) -> None:
        now = datetime.now(UTC)
        self.stats.batches += 1
        self.stats.stored += len(batch)
        for message in (*batch.health, *batch.events):
            self.stats.lags_s.append((now - message.sent_at).total_seconds())
        if self.stats.handled_ids is not None:
            for item in (*batch.health, *batch.events, *batch.statuses, *batch.acks):
                self.stats.handled_ids.add(item.message_id)
