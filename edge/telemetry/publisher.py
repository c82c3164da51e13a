"""Send the outbox to the broker with the kiosk's certificate, in order.

On connect the kiosk publishes its retained ``online`` status; its last
will, registered at connect, is the retained ``offline`` status. A drain
thread publishes outbox rows at QoS 1 in sequence order with a bounded
window in flight and deletes each row when its PUBACK arrives. After a
disconnection the window is forgotten and the drain starts again from the
oldest row; what the broker had already accepted is sent again, and the
bridge drops it by message id. A PUBACK saying that no subscriber took the
message (the bridge is not subscribed, e.g. after a broker restart without
persistence) keeps the row, and the drain sends it again a second later.

The connection's client id is ``kiosk-<id>-telemetry``, apart from the
agent's request link (``kiosk-<id>``), so the two never take over each
other's session. After a certificate renewal :meth:`Publisher.reload_certificate`
reconnects with the new files; the drain replays what was in flight.

When the kiosk's key is on a token, :meth:`Publisher.use_tunnel` points the
connection at the agent's local TLS tunnel (:mod:`edge.tunnel`) before it
starts: the client then speaks plain MQTT to it and stunnel does the TLS.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.telemetry.outbox import EVENT, TELEMETRY, Outbox
from protocol.envelope import Envelope, new_message
from protocol.telemetry import Event, Health, Status
from protocol.topics import COMMANDS, EVENTS, STATUS, UPDATES, kiosk_topic, office_topic
from protocol.topics import TELEMETRY as TELEMETRY_LEAF
from protocol.updates import InstallReport

logger = logging.getLogger(__name__)

WINDOW = 50
RETRY_S = 1.0
# MQTT 5 PUBACK reason: accepted, but no subscriber wanted it.
NO_MATCHING_SUBSCRIBERS = 16
KEEPALIVE_S = 30

MessageHandler = Callable[[mqtt.MQTTMessage], None]


@dataclass(frozen=True)
class BrokerLink:
    """Where the broker is and the kiosk's TLS files."""

    kiosk_id: str
    host: str
    port: int
    ca: Path
    certificate: Path
    key: Path
    tunnelled: bool = False


class Publisher:
    """Keep one MQTT 5 connection for a kiosk and drain its outbox."""

    def __init__(
        self,
        link: BrokerLink,
        outbox: Outbox,
        software_version: str = "unknown",
        window: int = WINDOW,
    ) -> None:
        self.link = link
        self.outbox = outbox
        self.software_version = software_version
        self.window = window
        self.connected = threading.Event()
        self.on_command: MessageHandler | None = None
        self.on_update: Callable[[bytes], None] | None = None
        self._inflight: dict[int, int] = {}
        self._early_acks: set[int] = set()
        self._status_mids: set[int] = set()
        self._retry_from: int | None = None
        self._last_seq = 0
        self._lock = threading.Lock()
        self._client_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        # Made on first use, so use_tunnel() can come first: the token key
        # has no file that tls_set() could load.
        self._client_made: mqtt.Client | None = None
        self._drain = threading.Thread(
            target=self._run, name="outbox-drain", daemon=True
        )

    @property
    def client(self) -> mqtt.Client:
        """The underlying paho client (commands publish their answers on it)."""
        return self._client

    @property
    def _client(self) -> mqtt.Client:
        if self._client_made is None:
            self._client_made = self._make_client()
        return self._client_made

    @_client.setter
    def _client(self, client: mqtt.Client) -> None:
        self._client_made = client

    def start(self) -> None:
        """Connect (retrying in the background) and start draining."""
        self._client.connect_async(
            self.link.host, self.link.port, keepalive=KEEPALIVE_S
        )
        self._client.loop_start()
        self._drain.start()

    def stop(self) -> None:
        """Publish the offline status, then disconnect."""
        self._stop.set()
        self._wake.set()
        with self._client_lock:
            if self.connected.is_set():
                info = self._client.publish(
                    self._status_topic,
                    self._status("offline").to_bytes(),
                    1,
                    retain=True,
                )
                info.wait_for_publish(timeout=5)
            self._client.disconnect()
            self._client.loop_stop()
        if self._drain.is_alive():
            self._drain.join(timeout=5)

    def use_tunnel(self, host: str, port: int) -> None:
        """Connect in plain text to a local TLS tunnel (call before start)."""
        with self._client_lock:
            self.link = replace(self.link, host=host, port=port, tunnelled=True)
            self._client_made = None
        logger.debug(
            "kiosk %s telemetry goes through the tunnel at %s:%s",
            self.link.kiosk_id,
            host,
            port,
        )

    def reload_certificate(self) -> None:
        """Reconnect with the certificate and key files as they are now.

        The disconnect is a clean one, so the broker does not publish the
        offline last will; the new connection says ``online`` again.
        """
        with self._client_lock:
            old = self._client
            old.disconnect()
            old.loop_stop()
            self.connected.clear()
            self._client = self._make_client()
            self._client.connect_async(
                self.link.host, self.link.port, keepalive=KEEPALIVE_S
            )
            self._client.loop_start()
        logger.info(
            "kiosk %s reconnects with its renewed certificate", self.link.kiosk_id
        )

    def send_health(self, health: Health) -> None:
        """Queue a health report."""
        self._queue(TELEMETRY, TELEMETRY_LEAF, health)

    def send_event(self, event: Event) -> None:
        """Queue an event (never dropped)."""
        self._queue(EVENT, EVENTS, event)

    def send_install_report(self, report: InstallReport) -> None:
        """Queue an update's install report; it travels as an event."""
        self._queue(EVENT, EVENTS, report)

    def _queue(self, kind: str, leaf: str, message: Envelope) -> None:
        self.outbox.put(kind, kiosk_topic(self.link.kiosk_id, leaf), message.to_bytes())
        self._wake.set()

    @property
    def _status_topic(self) -> str:
        return kiosk_topic(self.link.kiosk_id, STATUS)

    def _status(self, state: str) -> Status:
        return new_message(
            Status,
            kiosk_id=self.link.kiosk_id,
            state=state,
            software_version=self.software_version,
        )

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"kiosk-{self.link.kiosk_id}-telemetry",
            protocol=mqtt.MQTTv5,
        )
        if not self.link.tunnelled:
            client.tls_set(
                ca_certs=str(self.link.ca),
                certfile=str(self.link.certificate),
                keyfile=str(self.link.key),
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        client.will_set(
            self._status_topic, self._status("offline").to_bytes(), qos=1, retain=True
        )
        client.reconnect_delay_set(min_delay=1, max_delay=60)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: object,
        code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if code.is_failure:
            logger.error("the broker refused kiosk %s: %s", self.link.kiosk_id, code)
            return
        status = self._status("online").to_bytes()
        info = client.publish(self._status_topic, status, 1, True)
        # Runs on the network thread, so the PUBACK cannot arrive before this.
        with self._lock:
            self._status_mids.add(info.mid)
        client.subscribe(
            [
                (office_topic(self.link.kiosk_id, COMMANDS), 1),
                (office_topic(self.link.kiosk_id, UPDATES), 1),
            ]
        )
        with self._lock:
            self._inflight.clear()
            self._early_acks.clear()
            self._last_seq = 0
        self.connected.set()
        self._wake.set()
        logger.info("kiosk %s connected to the broker", self.link.kiosk_id)

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: object,
        code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self.connected.clear()
        logger.warning("kiosk %s lost the broker: %s", self.link.kiosk_id, code)

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: object,
        mid: int,
        code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        with self._lock:
            if mid in self._status_mids:
                self._status_mids.discard(mid)
                return
            seq = self._inflight.pop(mid, None)
            if seq is None:
                self._early_acks.add(mid)
        if seq is None:
            return
        if code.value == NO_MATCHING_SUBSCRIBERS:
            # Nobody took it (the bridge is not subscribed yet): keep the row
            # and send it again after a pause.
            with self._lock:
                self._retry_from = min(self._retry_from or seq, seq)
            return
        if code.is_failure:
            logger.error("the broker refused outbox message %s: %s", seq, code)
        self.outbox.delete(seq)
        self._wake.set()

    def _on_message(
        self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage
    ) -> None:
        if message.topic == office_topic(self.link.kiosk_id, UPDATES):
            if self.on_update is not None:
                self.on_update(bytes(message.payload))
        elif self.on_command is not None:
            self.on_command(message)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=RETRY_S)
            self._wake.clear()
            self._rewind()
            if self.connected.is_set():
                self._send_window()

    def _rewind(self) -> None:
        with self._lock:
            if self._retry_from is None or self._inflight:
                return
            self._last_seq = min(self._last_seq, self._retry_from - 1)
            self._retry_from = None

    def _send_window(self) -> None:
        with self._lock:
            room = self.window - len(self._inflight)
            after = self._last_seq
        if room <= 0:
            return
        for row in self.outbox.pending(after=after, limit=room):
            if not self.connected.is_set():
                return
            # paho holds its own lock while calling on_publish, so publish
            # outside ours; a PUBACK that beats the bookkeeping is kept aside.
            info = self._client.publish(row.topic, row.payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return
            with self._lock:
                self._last_seq = row.seq
                acked = info.mid in self._early_acks
                self._early_acks.discard(info.mid)
                if not acked:
                    self._inflight[info.mid] = row.seq
            if acked:
                self.outbox.delete(row.seq)
