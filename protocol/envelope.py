"""The fields every MQTT message carries: schema name, version, message id.

Each message type subclasses :class:`Envelope`; receivers parse with
:func:`parse_message`, which never raises anything but :class:`MessageError`,
so a receiver can drop and count what does not validate.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocol.errors import ProtocolError

MAX_MESSAGE_BYTES = 256 * 1024

MessageT = TypeVar("MessageT", bound="Envelope")


class MessageError(ProtocolError):
    """A message is too large, not JSON, or does not match its schema."""


class Envelope(BaseModel):
    """Base of every message: strict, versioned, with a unique id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    SCHEMA: ClassVar[str] = "envelope"
    VERSION: ClassVar[int] = 1

    schema_name: str = Field(description="The message type, e.g. 'request'.")
    version: int = Field(ge=1, le=1000, description="The schema's version.")
    message_id: str = Field(
        default_factory=lambda: uuid.uuid4().hex,
        pattern=r"^[0-9a-f]{32}$",
        description="Unique per message; receivers use it to drop duplicates.",
    )
    sent_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC),
        description="When the sender made the message (UTC).",
    )

    def to_bytes(self) -> bytes:
        """Return the message as UTF-8 JSON."""
        return self.model_dump_json().encode("utf-8")


def new_message(kind: type[MessageT], **fields: object) -> MessageT:
    """Return a ``kind`` message with its schema name and version filled in."""
    return kind(schema_name=kind.SCHEMA, version=kind.VERSION, **fields)


def parse_message(kind: type[MessageT], payload: bytes) -> MessageT:
    """Parse ``payload`` as a ``kind`` message.

    Raises:
        MessageError: the payload is too large, not JSON, of another schema
            or version, or invalid.
    """
    if len(payload) > MAX_MESSAGE_BYTES:
        raise MessageError(f"message of {len(payload)} bytes is over the limit")
    try:
        message = kind.model_validate_json(payload)
    except ValidationError as exc:
        raise MessageError(f"invalid {kind.SCHEMA} message: {exc}") from exc
    if message.schema_name != kind.SCHEMA:
        raise MessageError(
            f"expected a {kind.SCHEMA} message, got {message.schema_name!r}"
        )
    if message.version != kind.VERSION:
        raise MessageError(
            f"{kind.SCHEMA} version {message.version} is not supported "
            f"(this side speaks {kind.VERSION})"
        )
    return message
