"""The kiosk's link to the office: MQTT 5 and HTTPS, both with mutual TLS.

:class:`MqttLink` keeps a persistent MQTT 5 session (the broker queues the
office's decisions while the kiosk is away) and hands every message on
``office/<id>/decisions`` to a callback. The kiosk's online status and last
will belong to the telemetry connection (:mod:`edge.telemetry.publisher`),
which sends them as versioned ``Status`` messages; two connections saying
it would contradict each other whenever one of them dropped.
:class:`HttpsBlobs` uploads page images and fetches copies by SHA-256 with
the same client certificate.

When the kiosk's key is on a token, both are handed the local address of
the agent's TLS tunnel (:mod:`edge.tunnel`) as ``via``: they then speak
plain MQTT and HTTP to it, and stunnel does the mutual TLS and checks the
server's name.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.config import OfficeLinkSection
from edge.errors import TransportError
from edge.tunnel import LocalAddress
from protocol.topics import DECISIONS, office_topic

logger = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
MessageHandler = Callable[[str, bytes], None]


class MqttLink:
    """A persistent, reconnecting MQTT 5 client for one kiosk."""

    def __init__(
        self,
        kiosk_id: str,
        section: OfficeLinkSection,
        on_message: MessageHandler,
        *,
        via: LocalAddress | None = None,
    ) -> None:
        self.kiosk_id = kiosk_id
        self.section = section
        self.via = via
        self.on_message = on_message
        self.connected = threading.Event()
        self.on_connected: Callable[[], None] = lambda: None
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"kiosk-{kiosk_id}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        # Kept so a renewed certificate can be loaded into it (reload_certificate).
        self._tls: ssl.SSLContext | None = None
        if section.cert_file is not None and via is None:
            self._tls = ssl.create_default_context(cafile=_str(section.ca_file))
            self._tls.load_cert_chain(str(section.cert_file), _str(section.key_file))
            self._client.tls_set_context(self._tls)
        self._client.reconnect_delay_set(1, 10)
        self._client.on_connect = self._connected
        self._client.on_disconnect = self._disconnected
        self._client.on_message = self._received

    def start(self) -> None:
        """Connect in the background; reconnect whenever the link drops."""
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        host, port = self.via or (self.section.mqtt_host, self.section.mqtt_port)
        self._client.connect_async(
            host,
            port,
            self.section.keepalive_s,
            clean_start=False,
            properties=properties,
        )
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()

    def reload_certificate(self) -> None:
        """Reconnect with the certificate files as they are now (after renewal).

        Through the tunnel, stunnel has loaded them; reconnecting uses them.
        """
        if self.via is None:
            if self._tls is None or self.section.cert_file is None:
                return
            self._tls.load_cert_chain(
                str(self.section.cert_file), _str(self.section.key_file)
            )
        self._client.disconnect()
        self._client.loop_stop()
        self.start()

    def publish(self, topic: str, payload: bytes, timeout: float) -> bool:
        """Publish at QoS 1; True once the broker acknowledged it."""
        if not self.connected.is_set():
            return False
        info = self._client.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def _connected(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            logger.warning("the broker refused the kiosk: %s", reason)
            return
        client.subscribe(office_topic(self.kiosk_id, DECISIONS), qos=1)
        self.connected.set()
        logger.info("connected to the office broker")
        self.on_connected()

    def _disconnected(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if self.connected.is_set():
            logger.warning("lost the office broker: %s", reason)
        self.connected.clear()

    def _received(self, client: mqtt.Client, userdata: Any, message: Any) -> None:
        try:
            self.on_message(message.topic, bytes(message.payload))
        except Exception:
            logger.exception("a message on %s could not be handled", message.topic)


class HttpsBlobs:
    """Upload page images and fetch copies by SHA-256 over mutual TLS."""

    def __init__(
        self, section: OfficeLinkSection, *, via: LocalAddress | None = None
    ) -> None:
        self._section = section
        self._via = via
        self._tls: ssl.SSLContext | None = None
        if via is None and section.ca_file is not None:
            self._tls = ssl.create_default_context(cafile=str(section.ca_file))
            if section.cert_file is not None:
                self._tls.load_cert_chain(
                    str(section.cert_file), _str(section.key_file)
                )
        self._client = self._new_client()

    def _new_client(self) -> httpx.Client:
        section = self._section
        if self._via is None:
            return httpx.Client(
                base_url=section.https_url.rstrip("/"),
                verify=self._tls if self._tls is not None else True,
                timeout=section.timeout_s,
            )
        # Plain HTTP to the tunnel, which speaks TLS to the office; the Host
        # header still names the office, as it would without the tunnel.
        parts = urlsplit(section.https_url.rstrip("/"))
        return httpx.Client(
            base_url=f"http://{self._via.host}:{self._via.port}{parts.path}",
            headers={"host": parts.netloc},
            timeout=section.timeout_s,
        )

    def reload_certificate(self) -> None:
        """Use the certificate files as they are now for new connections.

        Through the tunnel, kept-alive connections still carry the previous
        certificate's TLS session, so they are dropped.
        """
        if self._via is not None:
            old, self._client = self._client, self._new_client()
            old.close()
            return
        if self._tls is not None and self._section.cert_file is not None:
            self._tls.load_cert_chain(
                str(self._section.cert_file), _str(self._section.key_file)
            )

    def upload(self, digest: str, data: bytes) -> None:
        """Upload one page image unless the office has it already."""
        url = f"/api/v1/kiosk/blobs/{digest}"
        try:
            if self._client.head(url).status_code == 200:
                return
            answer = self._client.put(
                url, content=data, headers={"content-type": "image/jpeg"}
            )
        except httpx.HTTPError as exc:
            raise TransportError(f"cannot upload page {digest[:12]}: {exc}") from exc
        if answer.status_code not in (200, 201):
            raise TransportError(
                f"the office refused page {digest[:12]}: HTTP {answer.status_code}"
            )

    def fetch(self, digest: str) -> bytes:
        """Return the blob ``digest`` (an issued copy's PDF)."""
        try:
            answer = self._client.get(f"/api/v1/kiosk/blobs/{digest}")
        except httpx.HTTPError as exc:
            raise TransportError(f"cannot fetch {digest[:12]}: {exc}") from exc
        if answer.status_code != 200:
            raise TransportError(
                f"the office has no {digest[:12]}: HTTP {answer.status_code}"
            )
        return answer.content

    def close(self) -> None:
        """Close the connections."""
        self._client.close()


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)
