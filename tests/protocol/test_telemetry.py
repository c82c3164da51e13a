"""Telemetry and command message schemas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from protocol.commands import Command, CommandAck
from protocol.envelope import MessageError, new_message, parse_message
from protocol.telemetry import DeviceHealth, Event, Health, Status


def test_health_round_trips_with_devices() -> None:
    health = new_message(
        Health,
        kiosk_id="kiosk-001",
        devices={"printer": DeviceHealth(state="degraded", reason="paper low")},
        paper_percent=12.5,
        cpu_temp_c=61.0,
        outbox_depth=3,
        visits=4,
        copies=7,
    )
    parsed = parse_message(Health, health.to_bytes())
    assert parsed == health
    assert parsed.devices["printer"].reason == "paper low"


@pytest.mark.parametrize(
    "fields",
    [
        {"kiosk_id": "Kiosk 1"},
        {"kiosk_id": "kiosk-001", "paper_percent": 140},
        {"kiosk_id": "kiosk-001", "surprise": 1},
        {"kiosk_id": "kiosk-001", "outbox_depth": -1},
    ],
)
def test_invalid_health_is_refused(fields: dict[str, object]) -> None:
    payload = {"schema_name": "health", "version": 1, **fields}
    import json

    with pytest.raises(MessageError):
        parse_message(Health, json.dumps(payload).encode())


def test_status_event_and_ack_parse() -> None:
    status = new_message(Status, kiosk_id="kiosk-001", state="offline")
    event = new_message(
        Event, kiosk_id="kiosk-001", event_type="fault", occurred_at=datetime.now(UTC)
    )
    ack = new_message(
        CommandAck,
        kiosk_id="kiosk-001",
        command_id="a" * 32,
        name="ping",
        outcome="done",
    )
    assert parse_message(Status, status.to_bytes()).state == "offline"
    assert parse_message(Event, event.to_bytes()).event_type == "fault"
    assert parse_message(CommandAck, ack.to_bytes()).outcome == "done"
    with pytest.raises(MessageError):
        parse_message(Status, event.to_bytes())


def test_command_signed_bytes_exclude_the_signature() -> None:
    command = new_message(
        Command,
        kiosk_id="kiosk-001",
        name="set_config",
        args={"key": "ui.language", "value": "vi"},
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
    )
    signed = command.model_copy(update={"signature": "c2ln"})
    assert signed.signed_bytes() == command.signed_bytes()
    assert b"signature" not in command.signed_bytes()
    with pytest.raises(MessageError):
        parse_message(Command, command.to_bytes().replace(b"set_config", b"rm_rf"))
