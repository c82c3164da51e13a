"""Consume kiosk telemetry from the broker into the database.

Several bridge instances subscribe to the same MQTT 5 shared subscriptions
(``$share/<group>/kiosk/+/telemetry`` and so on), so the broker hands each
message to one of them. Messages are acknowledged (QoS 1, manual PUBACK)
only after the batch holding them is committed, so a bridge that dies
mid-batch loses nothing: the broker redelivers, and the unique message ids
drop what was already stored. Oversized, malformed, spoofed (payload names
another kiosk than the topic) and revoked kiosks' messages are dropped and
counted; nothing a kiosk sends can stop the consumer.

The consumer is built for thousands of messages per second on one core:
:class:`BulkReadClient` reads the socket in large chunks and decodes PUBLISH
packets itself, the network thread only queues them, the writer thread
parses a batch (pydantic's Rust JSON validation), stores it with one
executemany per table in one transaction, and sends the batch's PUBACKs as
one buffer. ``kiosk bench fleet`` measures it.

Shared subscriptions do not receive retained messages, so a bridge that
starts learns a kiosk's status from its next status change or health report.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from cloud_bridge.errors import StoreError
from cloud_bridge.fleet.mqtt_client import BrokerAddress, make_client
from cloud_bridge.fleet.registry import Batch, FleetRegistry
from ota.director import Director
from ota.notices import record_update_report
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
PUBACK = 0x40
PUBLISH = 0x30
POLL_S = 0.1
READ_BYTES = 65_536
READS_PER_LOOP = 256


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
    first_commit: float | None = None
    last_commit: float | None = None


class _Incoming(NamedTuple):
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
        # Set to record the kiosks' install reports (kiosk events of that schema).
        self.director: Director | None = None
        self.connected = threading.Event()
        self._queue: queue.SimpleQueue[_Incoming] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._revoked: set[str] = set()
        self._revoked_at = 0.0
        self._client = make_client(
            address, client_id, manual_ack=True, client_class=BulkReadClient
        )
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        if isinstance(self._client, BulkReadClient):
            self._client.deliver = self._queue.put
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
        # Runs on paho's network thread for every message: keep it to a put.
        self._queue.put(
            _Incoming(message.mid, message.qos, message.topic, bytes(message.payload))
        )

    def _run(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            incoming = self._collect()
            if incoming:
                self._handle(incoming)

    def _collect(self) -> list[_Incoming]:
        """Wait for a first message, then take what comes within the batch wait."""
        try:
            items = [self._queue.get(timeout=POLL_S)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.batch_wait_s
        while len(items) < self.batch_size:
            try:
                items.append(self._queue.get_nowait())
                continue
            except queue.Empty:
                pass
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
        self._acknowledge(incoming)

    def _acknowledge(self, incoming: list[_Incoming]) -> None:
        """Send the PUBACKs of a committed batch, written to the socket at once.

        paho's ``ack`` queues one packet per message and wakes its network
        thread each time; at thousands of messages per second that cost more
        than storing them. A QoS 1 PUBACK with reason "success" and no
        properties is four bytes (MQTT 5, 3.4.2.1), so the batch's PUBACKs go
        out as one buffer through paho's own output queue.
        """
        packets = bytearray()
        for item in incoming:
            if item.qos == 1:
                packets += b"\x40\x02" + item.mid.to_bytes(2, "big")
            elif item.qos == 2:
                self._client.ack(item.mid, item.qos)
        if packets:
            self._client._packet_queue(PUBACK, bytes(packets), 0, 0)

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
            if self.director is not None and record_update_report(
                self.director, item.topic, item.payload
            ):
                return None
            self._drop("malformed", item)
            return None
        if not _times_are_aware(message):
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
        committed = time.time()
        if self.stats.first_commit is None:
            self.stats.first_commit = committed
        self.stats.last_commit = committed
        self.stats.batches += 1
        self.stats.stored += len(batch)
        for message in (*batch.health, *batch.events):
            self.stats.lags_s.append((now - message.sent_at).total_seconds())
        if self.stats.handled_ids is not None:
            for item in (*batch.health, *batch.events, *batch.statuses, *batch.acks):
                self.stats.handled_ids.add(item.message_id)


def _times_are_aware(message: Envelope) -> bool:
    """Whether the message's times carry an offset (naive ones are ambiguous)."""
    if message.sent_at.tzinfo is None:
        return False
    return not isinstance(message, Event) or message.occurred_at.tzinfo is not None


def packet_bounds(buf: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """Return where the MQTT packet at ``pos`` has its body and where it ends.

    None when the buffer does not yet hold the whole packet.
    """
    length, multiplier, index = 0, 1, pos + 1
    while index < len(buf) and index < pos + 5:
        byte = buf[index]
        length += (byte & 0x7F) * multiplier
        multiplier *= 128
        index += 1
        if not byte & 0x80:
            end = index + length
            return (index, end) if end <= len(buf) else None
    if index >= pos + 5:
        raise MalformedPacket("remaining length longer than four bytes")
    return None


def decode_publish(header: int, body: bytes) -> _Incoming:
    """Decode an MQTT 5 PUBLISH body (QoS 0 or 1) into an incoming message.

    Raises:
        MalformedPacket: the body is shorter than its fields say.
    """
    qos = (header >> 1) & 0x03
    topic_end = 2 + int.from_bytes(body[0:2], "big")
    topic = body[2:topic_end].decode("utf-8", errors="replace")
    index, mid = topic_end, 0
    if qos:
        mid = int.from_bytes(body[index : index + 2], "big")
        index += 2
    properties, multiplier = 0, 1
    while True:
        if index >= len(body):
            raise MalformedPacket("PUBLISH ends inside its header")
        byte = body[index]
        properties += (byte & 0x7F) * multiplier
        multiplier *= 128
        index += 1
        if not byte & 0x80:
            break
    return _Incoming(mid, qos, topic, body[index + properties :])


class BulkReadClient(mqtt.Client):
    """paho's MQTT 5 client with a bulk read path for incoming PUBLISH packets.

    paho reads a packet a few bytes at a time and builds a message object,
    properties and reason codes for each; at thousands of messages per
    second that was most of the bridge's CPU. This client reads what the TLS
    socket holds in large chunks, decodes QoS 0 and 1 PUBLISH packets itself
    (topic, packet id, payload; properties skipped) and hands them to
    ``deliver``; every other packet (CONNACK, SUBACK, PINGRESP, DISCONNECT,
    QoS 2 flows) goes through paho's own handler, so connection, keepalive,
    reconnection and acknowledgement stay paho's. It relies on paho 2.x's
    internal packet state (``_in_packet``, ``_packet_handle``), which the
    ingestion tests exercise against a real broker.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deliver: Callable[[_Incoming], None] | None = None
        self._buffer = bytearray()

    def reconnect(self) -> MQTTErrorCode:
        """Forget a partly read packet of the old connection, then reconnect."""
        self._buffer = bytearray()
        return super().reconnect()

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Read what the socket holds and handle every complete packet."""
        if self.deliver is None:
            return super().loop_read(max_packets)
        sock = self._sock
        if sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        for _ in range(READS_PER_LOOP):
            try:
                data = sock.recv(READ_BYTES)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                break
            except OSError as exc:
                logger.warning("the broker connection failed: %s", exc)
                return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
            if not data:
                return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
            self._buffer += data
        with self._msgtime_mutex:
            self._last_bytes_received = time.monotonic()
        try:
            code = self._handle_buffer(self.deliver)
        except MalformedPacket as exc:
            logger.error("the broker sent a malformed packet: %s", exc)
            code = MQTTErrorCode.MQTT_ERR_PROTOCOL
        if code != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._buffer = bytearray()
            return self._loop_rc_handle(code)
        return code

    def _handle_buffer(self, deliver: Callable[[_Incoming], None]) -> MQTTErrorCode:
        buf, pos = self._buffer, 0
        try:
            while (bounds := packet_bounds(buf, pos)) is not None:
                start, end = bounds
                header = buf[pos]
                body = bytes(buf[start:end])
                pos = end
                if header & 0xF0 == PUBLISH and (header >> 1) & 0x03 < 2:
                    deliver(decode_publish(header, body))
                    continue
                code = self._paho_handle(header, body)
                if code != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    return code
        finally:
            del buf[:pos]
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _paho_handle(self, header: int, body: bytes) -> MQTTErrorCode:
        self._in_packet = _in_packet(header, body)
        try:
            return self._packet_handle()
        finally:
            self._in_packet = _in_packet(0, b"")


def _in_packet(header: int, body: bytes) -> Any:
    """paho's record of a packet being read, as complete as its reader leaves it."""
    return {
        "command": header,
        "have_remaining": 0,
        "remaining_count": [],
        "remaining_mult": 1,
        "remaining_length": len(body),
        "packet": bytearray(body),
        "to_process": 0,
        "pos": 0,
    }
