"""Build the bridge's MQTT 5 client: TLS with the bridge's client certificate."""

from __future__ import annotations

import ssl
import uuid
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud_bridge.config import BridgeConfig
from cloud_bridge.fleet.ca import BRIDGE_CERTIFICATE, BRIDGE_KEY, CA_CERTIFICATE


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker listens and the TLS files to connect with."""

    host: str
    port: int
    ca: Path
    certificate: Path
    key: Path

    @classmethod
    def for_bridge(cls, config: BridgeConfig) -> BrokerAddress:
        """Return the configured broker with the bridge's own certificate."""
        ca_dir = config.path(config.fleet.ca_dir)
        return cls(
            config.fleet.broker_host,
            config.fleet.broker_port,
            ca_dir / CA_CERTIFICATE,
            ca_dir / BRIDGE_CERTIFICATE,
            ca_dir / BRIDGE_KEY,
        )


def make_client(
    address: BrokerAddress,
    client_id: str | None = None,
    *,
    manual_ack: bool = False,
    client_class: type[mqtt.Client] = mqtt.Client,
) -> mqtt.Client:
    """Return an MQTT 5 client with TLS set up (not yet connected)."""
    client = client_class(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or f"bridge-{uuid.uuid4().hex[:12]}",
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    client.tls_set(
        ca_certs=str(address.ca),
        certfile=str(address.certificate),
        keyfile=str(address.key),
        tls_version=ssl.PROTOCOL_TLS_CLIENT,
    )
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client
