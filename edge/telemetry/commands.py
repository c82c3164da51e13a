"""Check and run the office's commands on the kiosk, and answer them.

A command must be addressed to this kiosk, signed with the office's
Ed25519 key, not expired, not sent from the future (beyond a small clock
skew) and not seen before. During a citizen's visit (``busy()`` true) a
command that is not urgent is deferred and run by :meth:`run_deferred`
when the visit ends. The answer goes to the request's MQTT 5 response
topic, which must lie below the kiosk's own topics, with its correlation
data.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.telemetry.errors import CommandRejectedError
from edge.telemetry.outbox import Outbox
from kiosk.logs import mask_id_number
from protocol.commands import ACK_LEAF, ArgValue, Command, CommandAck, Outcome
from protocol.envelope import MessageError, new_message, parse_message
from protocol.topics import kiosk_topic

logger = logging.getLogger(__name__)

CLOCK_SKEW = timedelta(minutes=2)
MAX_LOG_LINES = 200

Action = Callable[[dict[str, ArgValue]], dict[str, ArgValue]]


@dataclass(frozen=True)
class Answer:
    """A command's acknowledgement and where it goes."""

    ack: CommandAck
    topic: str
    correlation: bytes | None


@dataclass
class CommandHandler:
    """Verify and run commands for one kiosk."""

    kiosk_id: str
    office_key: ed25519.Ed25519PublicKey
    outbox: Outbox
    busy: Callable[[], bool] = lambda: False
    actions: dict[str, Action] = field(default_factory=dict)
    _deferred: list[Answer | Command] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        """Add the built-in ping."""
        self.actions.setdefault("ping", lambda _args: {"pong": True})

    def handle(
        self,
        payload: bytes,
        response_topic: str | None = None,
        correlation: bytes | None = None,
        now: datetime | None = None,
    ) -> Answer:
        """Check and run (or defer) one command; return the answer to send."""
        topic = self._reply_topic(response_topic)
        try:
            command = self.check(payload, now)
        except CommandRejectedError as exc:
            logger.warning("command refused: %s", exc)
            return self._answer(
                "0" * 32, "unknown", "rejected", str(exc), {}, topic, correlation
            )
        if self.busy() and not command.urgent:
            with self._lock:
                self._deferred.append(command)
            logger.info("command %s deferred until the visit ends", command.name)
            return self._answer(
                command.message_id,
                command.name,
                "deferred",
                "a citizen is being served; it runs when the visit ends",
                {},
                topic,
                correlation,
            )
        return self._run(command, topic, correlation)

    def check(self, payload: bytes, now: datetime | None = None) -> Command:
        """Return the command if it is for us, signed, fresh and new."""
        now = now or datetime.now(UTC)
        try:
            command = parse_message(Command, payload)
        except MessageError as exc:
            raise CommandRejectedError(f"not a valid command: {exc}") from exc
        if command.kiosk_id != self.kiosk_id:
            raise CommandRejectedError(
                f"addressed to {command.kiosk_id}, not this kiosk"
            )
        self._verify(command)
        if command.expires_at <= now:
            raise CommandRejectedError("the command has expired")
        if command.sent_at > now + CLOCK_SKEW:
            raise CommandRejectedError("the command is dated in the future")
        if not self.outbox.remember_command(command.message_id):
            raise CommandRejectedError("the command was already received")
        return command

    def run_deferred(self) -> list[Answer]:
        """Run the commands deferred during a visit; return their answers."""
        with self._lock:
            waiting, self._deferred = self._deferred, []
        topic = kiosk_topic(self.kiosk_id, ACK_LEAF)
        return [
            self._run(c, topic, c.message_id.encode())
            for c in waiting
            if isinstance(c, Command)
        ]

    def _verify(self, command: Command) -> None:
        if not command.signature:
            raise CommandRejectedError("the command is not signed")
        try:
            signature = base64.urlsafe_b64decode(command.signature)
            self.office_key.verify(signature, command.signed_bytes())
        except (binascii.Error, ValueError, InvalidSignature) as exc:
            raise CommandRejectedError("the signature is not the office's") from exc

    def _run(self, command: Command, topic: str, correlation: bytes | None) -> Answer:
        action = self.actions.get(command.name)
        if action is None:
            return self._answer(
                command.message_id,
                command.name,
                "failed",
                f"{command.name} is not available on this kiosk",
                {},
                topic,
                correlation,
            )
        try:
            result = action(dict(command.args))
        except Exception as exc:
            logger.exception("command %s failed", command.name)
            return self._answer(
                command.message_id,
                command.name,
                "failed",
                str(exc)[:400],
                {},
                topic,
                correlation,
            )
        logger.info("command %s done", command.name)
        return self._answer(
            command.message_id, command.name, "done", "", result, topic, correlation
        )

    def _reply_topic(self, requested: str | None) -> str:
        own = kiosk_topic(self.kiosk_id, "")
        if requested and requested.startswith(own):
            return requested
        return kiosk_topic(self.kiosk_id, ACK_LEAF)

    def _answer(
        self,
        command_id: str,
        name: str,
        outcome: Outcome,
        detail: str,
        result: dict[str, ArgValue],
        topic: str,
        correlation: bytes | None,
    ) -> Answer:
        ack = new_message(
            CommandAck,
            kiosk_id=self.kiosk_id,
            command_id=command_id,
            name=name[:40],
            outcome=outcome,
            detail=detail[:500],
            result=result,
        )
        return Answer(ack, topic, correlation)


def handle_message(
    handler: CommandHandler, client: mqtt.Client, message: mqtt.MQTTMessage
) -> Answer:
    """Run one received command message and publish the answer."""
    properties = message.properties
    topic = getattr(properties, "ResponseTopic", None)
    correlation = getattr(properties, "CorrelationData", None)
    answer = handler.handle(bytes(message.payload), topic, correlation)
    publish_answer(client, answer)
    return answer


def publish_answer(client: mqtt.Client, answer: Answer) -> None:
    """Publish an acknowledgement with its correlation data."""
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if answer.correlation is not None:
        properties.CorrelationData = answer.correlation
    client.publish(answer.topic, answer.ack.to_bytes(), qos=1, properties=properties)


class ConfigShadow:
    """Desired and reported configuration values, in the manner of a device shadow.

    ``apply(key, value)`` makes a value take effect and returns what the
    kiosk now reports for it; both sides are kept in a JSON file.
    """

    def __init__(self, path: Path, apply: Callable[[str, ArgValue], ArgValue]) -> None:
        self.path = path
        self.apply = apply

    def state(self) -> dict[str, dict[str, ArgValue]]:
        """Return ``{"desired": {...}, "reported": {...}}``."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"desired": {}, "reported": {}}
        return {
            "desired": data.get("desired", {}),
            "reported": data.get("reported", {}),
        }

    def set(self, args: dict[str, ArgValue]) -> dict[str, ArgValue]:
        """Record the desired value, apply it and record what is reported."""
        key = str(args.get("key") or "")
        if not key:
            raise ValueError("set_config needs a 'key'")
        value = args.get("value")
        state = self.state()
        state["desired"][key] = value
        state["reported"][key] = self.apply(key, value)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(state, indent=2), encoding="utf-8")
        return {"key": key, "desired": value, "reported": state["reported"][key]}


def recent_logs(path: Path, lines: int = MAX_LOG_LINES) -> dict[str, ArgValue]:
    """Return the last lines of the agent's log, with ID numbers masked."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ValueError(f"cannot read the log {path}: {exc.strerror}") from exc
    tail = text.splitlines()[-min(lines, MAX_LOG_LINES) :]
    masked = mask_id_number("\n".join(tail))
    return {"lines": len(tail), "log": masked[-3500:]}
