"""The whole system on one machine for end-to-end tests.

A TLS Mosquitto with an ACL, a bridge (SoftHSM token, trust services, SQLite)
with its intake consumer and its HTTPS endpoint requiring client
certificates, an officer who approves at once, and the kiosk agent with
simulated devices serving its UI.
"""

from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from cloud_bridge.config import BridgeConfig, IntakeSection
from cloud_bridge.context import Bridge
from cloud_bridge.copies import Officer
from cloud_bridge.decisions import OutboxDecisionSink
from cloud_bridge.http.app import create_app
from cloud_bridge.intake.blobs import intake_router
from cloud_bridge.intake.consumer import IntakeConsumer
from edge.agent import Agent, build_agent
from edge.config import AgentConfig
from edge.speech import RecordingSpeaker
from tests.conftest import free_port
from tests.edge.conftest import agent_config
from tests.edge.tls_broker import Identity, TestCa, TlsBroker


def fleet_config(tmp_path: Path, ca_dir: Path, broker_port: int) -> BridgeConfig:
    """A bridge configuration for the fleet's broker, with SQLite under tmp_path."""
    return BridgeConfig.model_validate(
        {
            "data_dir": str(tmp_path / "bridge"),
            "database": {"url": f"sqlite:///{tmp_path / 'bridge.db'}"},
            "fleet": {"ca_dir": str(ca_dir), "broker_port": broker_port},
        }
    )


class ServerThread:
    """A uvicorn server in a thread."""

    def __init__(self, app: FastAPI, port: int, **tls: Any) -> None:
        self.port = port
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", **tls
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        """Start and wait until it serves."""
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop serving."""
        self.server.should_exit = True
        self.thread.join(10)


class Officer_:
    """An officer who approves (or rejects) every pending request at once."""

    def __init__(self, bridge: Bridge, reject_reason: str | None = None) -> None:
        self.bridge = bridge
        self.reject_reason = reject_reason
        self.sink = OutboxDecisionSink(bridge.store.engine)
        self.decided: list[str] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        """Start deciding."""
        self.thread.start()

    def stop(self) -> None:
        """Stop deciding."""
        self._stop.set()
        self.thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for record in self.bridge.store.list_requests(state="pending"):
                self.decide(record.request_id)

    def decide(self, request_id: str) -> None:
        """Decide one request as this officer does."""
        record = self.bridge.store.get_request(request_id)
        if self.reject_reason is not None:
            decided = self.bridge.store.decide_request(
                request_id, approve=False, decided_by="Test", reason=self.reject_reason
            )
            self.sink.rejected(decided, self.reject_reason)
        else:
            issued = self.bridge.copies.certify(
                request_id, Officer("Nguyễn Văn Mẫu", "Công chức Tư pháp")
            )
            self.sink.approved(record, issued)
        self.decided.append(request_id)


class Office:
    """Broker, bridge, intake and HTTPS endpoint."""

    def __init__(self, tmp_path: Path, bridge_config: BridgeConfig) -> None:
        self.ca = TestCa(tmp_path / "tls")
        self.broker = TlsBroker(self.ca, tmp_path / "tls")
        self.broker.start()
        bridge_id = self.ca.issue("bridge-intake")
        intake = IntakeSection(
            mqtt_host="127.0.0.1",
            mqtt_port=self.broker.port,
            ca_file=self.ca.ca_file,
            cert_file=bridge_id.cert,
            key_file=bridge_id.key,
            decision_poll_s=0.05,
        )
        self.bridge = Bridge(bridge_config.model_copy(update={"intake": intake}))
        self.consumer = IntakeConsumer(self.bridge)
        self.consumer.start()
        app = create_app(self.bridge)
        app.include_router(intake_router(self.bridge))
        server_id = self.ca.issue("127.0.0.1", server=True)
        self.https = ServerThread(
            app,
            free_port(),
            ssl_keyfile=str(server_id.key),
            ssl_certfile=str(server_id.cert),
            ssl_ca_certs=str(self.ca.ca_file),
            ssl_cert_reqs=ssl.CERT_REQUIRED,
        )
        self.https.start()
        if not self.consumer.connected.wait(10):
            raise RuntimeError("the intake did not connect to the broker")

    def kiosk_config(
        self, tmp_path: Path, kiosk_id: str = "kiosk-test-01"
    ) -> AgentConfig:
        """Return an agent configuration for a kiosk enrolled with this office."""
        identity: Identity = self.ca.issue(kiosk_id)
        return agent_config(
            tmp_path,
            kiosk_id=kiosk_id,
            port=free_port(),
            lookup_url=self.bridge.config.copies.lookup_url,
            office={
                "mqtt_host": "127.0.0.1",
                "mqtt_port": self.broker.port,
                "https_url": f"https://127.0.0.1:{self.https.port}",
                "ca_file": str(self.ca.ca_file),
                "cert_file": str(identity.cert),
                "key_file": str(identity.key),
                "retry_s": 0.5,
            },
        )

    def close(self) -> None:
        """Stop everything."""
        self.consumer.stop()
        self.https.stop()
        self.broker.stop()
        self.bridge.close()


class Kiosk:
    """The agent and its UI server."""

    def __init__(self, config: AgentConfig) -> None:
        self.speaker = RecordingSpeaker()
        self.agent: Agent = build_agent(config, self.speaker)
        self.agent.start()
        self.server = ServerThread(self.agent.ui.app, config.port)
        self.server.start()
        self.url = f"http://127.0.0.1:{config.port}"

    def close(self) -> None:
        """Stop the agent."""
        self.server.stop()
        self.agent.stop()
