"""Message envelopes and topics: receivers drop what does not validate."""

from __future__ import annotations

from typing import ClassVar

import pytest

from protocol.envelope import Envelope, MessageError, new_message, parse_message
from protocol.topics import (
    TopicError,
    kiosk_topic,
    office_topic,
    shared,
    split_kiosk_topic,
)


class Ping(Envelope):
    """A tiny message for the tests."""

    SCHEMA: ClassVar[str] = "ping"
    VERSION: ClassVar[int] = 2

    text: str


def test_round_trip_keeps_every_field() -> None:
    message = new_message(Ping, text="xin chào")

    parsed = parse_message(Ping, message.to_bytes())

    assert parsed == message
    assert parsed.schema_name == "ping" and parsed.version == 2


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"schema_name": "ping", "version": 2}',
        b'{"schema_name": "pong", "version": 2, "text": "x"}',
        b'{"schema_name": "ping", "version": 1, "text": "x"}',
        b'{"schema_name": "ping", "version": 2, "text": "x", "extra": 1}',
        b"{" + b" " * 300_000 + b"}",
    ],
)
def test_bad_payloads_raise_message_error_only(payload: bytes) -> None:
    with pytest.raises(MessageError):
        parse_message(Ping, payload)


def test_topics() -> None:
    assert kiosk_topic("kiosk-001", "events") == "kiosk/kiosk-001/events"
    assert office_topic("kiosk-001", "decisions") == "office/kiosk-001/decisions"
    assert shared("bridge", "kiosk/+/requests") == "$share/bridge/kiosk/+/requests"
    assert split_kiosk_topic("kiosk/kiosk-001/telemetry") == ("kiosk-001", "telemetry")


@pytest.mark.parametrize("bad", ["", "Kiosk", "a/b", "+", "#", "ab", "x" * 70])
def test_bad_kiosk_ids_are_refused(bad: str) -> None:
    with pytest.raises(TopicError):
        kiosk_topic(bad, "events")
