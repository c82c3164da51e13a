"""The bridge's MQTT 5 side: take requests, acknowledge, publish decisions.

Requests arrive through the shared subscription ``$share/<group>/kiosk/+/
requests``, so bridges running side by side each get a share. The kiosk id
is taken from the topic (the broker's ACL lets a kiosk publish only below
its own id). Decisions are read from the console's decision outbox and
published to ``office/<kiosk>/decisions`` at QoS 1; a row is marked
published only once the broker has it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from cloud_bridge.config import IntakeSection
from cloud_bridge.decisions import mark_published, pending_decisions
from cloud_bridge.intake.service import IntakeService, decision_message
from protocol.envelope import Envelope, MessageError, parse_message
from protocol.requests import CertificationRequest
from protocol.topics import (
    DECISIONS,
    REQUESTS,
    TopicError,
    office_topic,
    shared,
    split_kiosk_topic,
)

logger = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 5.0


class IntakeConsumer:
    """Consume kiosk requests and publish decisions, over one MQTT client."""

    def __init__(self, bridge: Any, section: IntakeSection | None = None) -> None:
        self.bridge = bridge
        self.section = section or bridge.config.intake
        self.service = IntakeService(bridge)
        self.dropped = 0
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        section = self.section
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=section.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if section.cert_file is not None:
            client.tls_set(
                ca_certs=None if section.ca_file is None else str(section.ca_file),
                certfile=str(section.cert_file),
                keyfile=None if section.key_file is None else str(section.key_file),
            )
        client.reconnect_delay_set(1, 10)
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_message = self._received
        return client

    def start(self) -> None:
        """Connect, subscribe, and start publishing decisions."""
        self._client.connect_async(
            self.section.mqtt_host, self.section.mqtt_port, keepalive=30
        )
        self._client.loop_start()
        self._thread = threading.Thread(
            target=self._publish_loop, name="decisions", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Disconnect and stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._client.disconnect()
        self._client.loop_stop()

    def publish_decisions(self) -> int:
        """Publish every unpublished decision; return how many went out."""
        sent = []
        for row in pending_decisions(self.bridge.store.engine):
            message = decision_message(
                row.payload, self.bridge.config.copies.lookup_url
            )
            if not self._publish(office_topic(row.kiosk_id, DECISIONS), message):
                break
            sent.append(row.outbox_id)
        mark_published(self.bridge.store.engine, sent)
        return len(sent)

    def handle(self, topic: str, payload: bytes) -> None:
        """Store one request and acknowledge it (drops what does not parse)."""
        try:
            kiosk_id, leaf = split_kiosk_topic(topic)
            if leaf != REQUESTS:
                raise MessageError(f"unexpected topic {topic!r}")
            request = parse_message(CertificationRequest, payload)
        except (MessageError, TopicError) as exc:
            self.dropped += 1
            logger.warning("dropped a message on %s: %s", topic, exc)
            return
        ack = self.service.receive(kiosk_id, request)
        if ack is not None:
            # This runs on paho's network thread: waiting here for the PUBACK
            # would block the very loop that receives it.
            self._client.publish(office_topic(kiosk_id, DECISIONS), ack.to_bytes(), 1)

    def _publish(self, topic: str, message: Envelope) -> bool:
        if not self.connected.is_set():
            return False
        info = self._client.publish(topic, message.to_bytes(), qos=1)
        try:
            info.wait_for_publish(PUBLISH_TIMEOUT_S)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def _publish_loop(self) -> None:
        while not self._stop.wait(self.section.decision_poll_s):
            if not self.connected.is_set():
                continue
            try:
                self.publish_decisions()
            except Exception:
                logger.exception("publishing decisions failed")

    def _connected(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            logger.warning("the broker refused the intake: %s", reason)
            return
        client.subscribe(shared(self.section.share_group, f"kiosk/+/{REQUESTS}"), qos=1)
        self.connected.set()
        logger.info("intake connected to the broker")

    def _disconnected(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self.connected.clear()
        logger.warning("intake lost the broker: %s", reason)

    def _received(self, client: mqtt.Client, userdata: Any, message: Any) -> None:
        try:
            self.handle(message.topic, bytes(message.payload))
        except Exception:
            logger.exception("a request on %s could not be handled", message.topic)
