"""Send signed commands to kiosks as MQTT 5 requests.

Each command is signed with the office's Ed25519 key, recorded, and
published on ``office/<id>/commands`` with a response topic below the
kiosk's own topics and the command id as correlation data. The kiosk's
acknowledgement comes back through the shared subscription, so whichever
bridge instance receives it records it.
"""

from __future__ import annotations

import base64
import logging
import threading
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric import ed25519
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from cloud_bridge.errors import FleetError
from cloud_bridge.fleet.mqtt_client import BrokerAddress, make_client
from cloud_bridge.fleet.registry import FleetRegistry
from protocol.commands import ACK_LEAF, ArgValue, Command
from protocol.envelope import new_message
from protocol.topics import COMMANDS, kiosk_topic, office_topic

logger = logging.getLogger(__name__)


def sign_command(command: Command, key: ed25519.Ed25519PrivateKey) -> Command:
    """Return ``command`` with the office's signature filled in."""
    signature = base64.urlsafe_b64encode(key.sign(command.signed_bytes())).decode()
    return command.model_copy(update={"signature": signature})


def make_command(
    kiosk_id: str,
    name: str,
    args: dict[str, ArgValue] | None,
    *,
    urgent: bool,
    ttl: timedelta,
    key: ed25519.Ed25519PrivateKey,
) -> Command:
    """Return a signed command valid for ``ttl``."""
    command = new_message(
        Command,
        kiosk_id=kiosk_id,
        name=name,
        args=args or {},
        urgent=urgent,
        expires_at=datetime.now(UTC) + ttl,
    )
    return sign_command(command, key)


class Commander:
    """Publish signed commands through one MQTT connection."""

    def __init__(
        self,
        registry: FleetRegistry,
        address: BrokerAddress,
        key: ed25519.Ed25519PrivateKey,
        ttl: timedelta,
    ) -> None:
        self.registry = registry
        self.key = key
        self.ttl = ttl
        self._address = address
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._lock = threading.Lock()

    def send(
        self,
        kiosk_id: str,
        name: str,
        args: dict[str, ArgValue] | None = None,
        *,
        urgent: bool = False,
        requested_by: str = "fleet manager",
    ) -> Command:
        """Sign, record and publish a command; return it."""
        command = make_command(
            kiosk_id, name, args, urgent=urgent, ttl=self.ttl, key=self.key
        )
        self.registry.add_command(command, requested_by)
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ResponseTopic = kiosk_topic(kiosk_id, ACK_LEAF)
        properties.CorrelationData = command.message_id.encode("ascii")
        info = self._connect().publish(
            office_topic(kiosk_id, COMMANDS),
            command.to_bytes(),
            qos=1,
            properties=properties,
        )
        info.wait_for_publish(timeout=10)
        logger.info("command %s sent to kiosk %s", name, kiosk_id)
        return command

    def close(self) -> None:
        """Disconnect from the broker."""
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def _connect(self) -> mqtt.Client:
        with self._lock:
            if self._client is not None:
                return self._client
            client = make_client(self._address)
            client.on_connect = self._on_connect
            try:
                client.connect(self._address.host, self._address.port, keepalive=30)
            except OSError as exc:
                raise FleetError(
                    f"cannot reach the broker at {self._address.host}:"
                    f"{self._address.port}: {exc}; check that it runs"
                ) from exc
            client.loop_start()
            if not self._connected.wait(10):
                client.loop_stop()
                raise FleetError("the broker did not accept the bridge's connection")
            self._client = client
            return client

    def _on_connect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: object,
        code: ReasonCode,
        _properties: object,
    ) -> None:
        if not code.is_failure:
            self._connected.set()
