"""Commands the office sends one kiosk, and the kiosk's acknowledgements.

A :class:`Command` travels on ``office/<id>/commands`` as an MQTT 5 request
whose response topic and correlation data the kiosk echoes in its
:class:`CommandAck`. The office signs the command (Ed25519) over
:meth:`Command.signed_bytes`; a kiosk refuses one that is unsigned, signed
by another key, addressed to another kiosk or past ``expires_at``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from protocol.envelope import Envelope
from protocol.telemetry import KIOSK_ID_PATTERN

CommandName = Literal[
    "ping",
    "restart_agent",
    "print_test_page",
    "check_devices",
    "set_config",
    "renew_certificate",
    "upload_logs",
]
COMMAND_NAMES: tuple[str, ...] = CommandName.__args__  # type: ignore[attr-defined]
ArgValue = str | int | float | bool | None
Outcome = Literal["done", "rejected", "deferred", "failed"]


class Command(Envelope):
    """One signed instruction for one kiosk."""

    SCHEMA = "command"
    VERSION = 1

    kiosk_id: str = Field(pattern=KIOSK_ID_PATTERN, description="The addressee.")
    name: CommandName = Field(description="What to do.")
    args: dict[str, ArgValue] = Field(
        default_factory=dict, max_length=16, description="The command's arguments."
    )
    urgent: bool = Field(
        False, description="Run even during a citizen's visit (else deferred)."
    )
    expires_at: datetime = Field(description="After this the kiosk refuses it.")
    signature: str = Field(
        "",
        max_length=200,
        pattern=r"^[A-Za-z0-9_\-]*={0,2}$",
        description="URL-safe Base64 Ed25519 signature of signed_bytes().",
    )

    def signed_bytes(self) -> bytes:
        """Return the bytes the office signs: the JSON without the signature."""
        return self.model_dump_json(exclude={"signature"}).encode("utf-8")


class CommandAck(Envelope):
    """A kiosk's answer to a command."""

    SCHEMA = "command_ack"
    VERSION = 1

    kiosk_id: str = Field(pattern=KIOSK_ID_PATTERN, description="The sender.")
    command_id: str = Field(
        pattern=r"^[0-9a-f]{32}$", description="The command's message_id."
    )
    name: str = Field(max_length=40, description="The command's name.")
    outcome: Outcome = Field(description="What became of the command.")
    detail: str = Field("", max_length=500, description="Why, for the operator.")
    result: dict[str, ArgValue] = Field(
        default_factory=dict, max_length=64, description="What it returned."
    )


# Acknowledgements go below the kiosk's responses leaf, apart from the
# answers to copy requests.
ACK_LEAF = "responses/commands"
