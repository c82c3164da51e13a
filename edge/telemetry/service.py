"""Run telemetry and commands for the agent: publisher, health timer, commands.

The agent builds one :class:`TelemetryService` after provisioning, hands it
its callbacks (``busy``, command actions, health sources), calls
:meth:`event` as visits happen and :meth:`visit_finished` when one ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from edge.telemetry.commands import (
    Action,
    CommandHandler,
    ConfigShadow,
    handle_message,
    publish_answer,
    recent_logs,
)
from edge.telemetry.health import HealthSources, collect_health
from edge.telemetry.outbox import Outbox
from edge.telemetry.publisher import BrokerLink, Publisher
from protocol.commands import ArgValue
from protocol.envelope import new_message
from protocol.telemetry import DetailValue, Event
from protocol.updates import InstallReport
from provisioning.identity import KioskIdentity

logger = logging.getLogger(__name__)


def link_for(identity: KioskIdentity) -> BrokerLink:
    """Return the broker link a provisioned identity describes (file key)."""
    return BrokerLink(
        identity.kiosk_id,
        identity.broker_host,
        identity.broker_port,
        identity.ca_path,
        identity.certificate_path,
        identity.key_path,
    )


class TelemetryService:
    """Publish health every ``interval_s``, queue events, answer commands."""

    def __init__(
        self,
        identity: KioskIdentity,
        outbox: Outbox,
        sources: HealthSources,
        *,
        busy: Callable[[], bool] = lambda: False,
        actions: dict[str, Action] | None = None,
        interval_s: float = 60.0,
    ) -> None:
        self.identity = identity
        self.outbox = outbox
        self.sources = sources
        self.interval_s = interval_s
        self.publisher = Publisher(link_for(identity), outbox, sources.software_version)
        self.commands = CommandHandler(
            identity.kiosk_id, identity.command_key(), outbox, busy, dict(actions or {})
        )
        sources.outbox_depth = outbox.depth
        sources.certificate_expires_at = identity.expires_at
        self.publisher.on_command = self._on_command
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._tick, name="health", daemon=True)

    def start(self) -> None:
        """Connect and start the health timer."""
        self.publisher.start()
        self._timer.start()

    def stop(self) -> None:
        """Stop the timer and disconnect (publishing the offline status)."""
        self._stop.set()
        self.publisher.stop()

    def event(self, event_type: str, **detail: DetailValue) -> None:
        """Queue an event of ``event_type`` with small facts."""
        message: Event = new_message(
            Event,
            kiosk_id=self.identity.kiosk_id,
            event_type=event_type,
            occurred_at=datetime.now(UTC),
            detail=detail,
        )
        self.publisher.send_event(message)

    def reload_certificate(self) -> None:
        """Reconnect with the renewed certificate."""
        self.publisher.reload_certificate()

    def send_install_report(self, report: InstallReport) -> None:
        """Queue an update's install report for the bridge (never dropped)."""
        self.publisher.send_install_report(report)

    def visit_finished(self) -> None:
        """Run the commands deferred during the visit."""
        for answer in self.commands.run_deferred():
            publish_answer(self.publisher.client, answer)

    def send_health(self) -> None:
        """Queue a health report now."""
        self.publisher.send_health(collect_health(self.sources))

    def _tick(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.send_health()
            except Exception:
                logger.exception("could not gather the health report")

    def _on_command(self, message: mqtt.MQTTMessage) -> None:
        # Commands run on their own thread so a slow one does not block MQTT.
        threading.Thread(
            target=self._answer, args=(message,), name="command", daemon=True
        ).start()

    def _answer(self, message: Any) -> None:
        handle_message(self.commands, self.publisher.client, message)


def default_actions(
    identity: KioskIdentity,
    shadow: ConfigShadow,
    log_path: Path,
    renew_certificate: Callable[[], KioskIdentity],
) -> dict[str, Action]:
    """Return the actions every kiosk has: settings, logs and renewal.

    The agent adds ``restart_agent``, ``print_test_page`` and
    ``check_devices``, which need its own parts. After a renewal the
    connections reload the new certificate (:mod:`edge.services`).
    """

    def renew(_args: dict[str, ArgValue]) -> dict[str, ArgValue]:
        renewed = renew_certificate()
        return {"expires_at": renewed.expires_at().isoformat()}

    return {
        "set_config": shadow.set,
        "upload_logs": lambda args: recent_logs(
            log_path, int(args.get("lines") or 200)
        ),
        "renew_certificate": renew,
    }
