"""Command checks on the kiosk: signature, staleness, replay, visits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from cloud_bridge.fleet.commander import make_command
from edge.telemetry.commands import CommandHandler, ConfigShadow, recent_logs
from edge.telemetry.outbox import Outbox
from protocol.commands import CommandAck

KIOSK = "kiosk-301"


@pytest.fixture
def office_key() -> ed25519.Ed25519PrivateKey:
    """The office's command-signing key."""
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture
def handler(tmp_path: Path, office_key: ed25519.Ed25519PrivateKey) -> CommandHandler:
    """A handler that trusts ``office_key`` and is idle."""
    return CommandHandler(KIOSK, office_key.public_key(), Outbox(tmp_path / "o.db"))


def command(
    key: ed25519.Ed25519PrivateKey,
    name: str = "ping",
    *,
    kiosk: str = KIOSK,
    ttl: timedelta = timedelta(minutes=5),
    urgent: bool = False,
    args: dict[str, str | int | float | bool | None] | None = None,
) -> bytes:
    """A signed command's bytes."""
    return make_command(kiosk, name, args, urgent=urgent, ttl=ttl, key=key).to_bytes()


def outcome(ack: CommandAck) -> str:
    """The outcome of an acknowledgement."""
    return ack.outcome


def test_signed_ping_is_answered_on_the_response_topic(
    handler: CommandHandler, office_key: ed25519.Ed25519PrivateKey
) -> None:
    answer = handler.handle(
        command(office_key), f"kiosk/{KIOSK}/responses/commands", b"corr-1"
    )
    assert outcome(answer.ack) == "done"
    assert answer.ack.result == {"pong": True}
    assert answer.correlation == b"corr-1"
    assert answer.topic == f"kiosk/{KIOSK}/responses/commands"


def test_response_topic_outside_own_topics_is_not_used(
    handler: CommandHandler, office_key: ed25519.Ed25519PrivateKey
) -> None:
    answer = handler.handle(command(office_key), "kiosk/other-kiosk/responses", None)
    assert answer.topic == f"kiosk/{KIOSK}/responses/commands"


def test_unsigned_forged_stale_and_misaddressed_commands_are_refused(
    handler: CommandHandler, office_key: ed25519.Ed25519PrivateKey
) -> None:
    stranger = ed25519.Ed25519PrivateKey.generate()
    signed = make_command(
        KIOSK, "ping", None, urgent=False, ttl=timedelta(minutes=5), key=office_key
    )
    unsigned = signed.model_copy(update={"signature": ""}).to_bytes()
    tampered = signed.model_copy(update={"name": "restart_agent"}).to_bytes()
    cases = {
        "not signed": unsigned,
        "not the office": command(stranger),
        "expired": command(office_key, ttl=timedelta(seconds=-1)),
        "addressed to": command(office_key, kiosk="kiosk-999"),
        "not a valid": b"{nonsense",
    }
    for reason, payload in cases.items():
        answer = handler.handle(payload)
        assert outcome(answer.ack) == "rejected"
        assert reason in answer.ack.detail
    assert outcome(handler.handle(tampered).ack) == "rejected"


def test_future_dated_command_is_refused(
    handler: CommandHandler, office_key: ed25519.Ed25519PrivateKey
) -> None:
    early = datetime.now(UTC) - timedelta(hours=1)
    answer = handler.handle(command(office_key), now=early)
    assert "future" in answer.ack.detail


def test_replayed_command_is_refused(
    handler: CommandHandler, office_key: ed25519.Ed25519PrivateKey
) -> None:
    payload = command(office_key)
    assert outcome(handler.handle(payload).ack) == "done"
    again = handler.handle(payload)
    assert outcome(again.ack) == "rejected"
    assert "already" in again.ack.detail


def test_busy_kiosk_defers_until_the_visit_ends_unless_urgent(
    tmp_path: Path, office_key: ed25519.Ed25519PrivateKey
) -> None:
    visiting = [True]
    ran: list[str] = []

    def restart(_args: object) -> dict[str, str | int | float | bool | None]:
        ran.append("restart")
        return {}

    handler = CommandHandler(
        KIOSK,
        office_key.public_key(),
        Outbox(tmp_path / "o.db"),
        busy=lambda: visiting[0],
        actions={"restart_agent": restart},
    )
    deferred = handler.handle(command(office_key, "restart_agent"))
    urgent = handler.handle(command(office_key, "ping", urgent=True))

    assert outcome(deferred.ack) == "deferred"
    assert outcome(urgent.ack) == "done"
    assert ran == []
    visiting[0] = False
    answers = handler.run_deferred()
    assert [outcome(a.ack) for a in answers] == ["done"]
    assert ran == ["restart"]


def test_missing_and_failing_actions_are_reported(
    handler: CommandHandler, office_key: ed25519.Ed25519PrivateKey
) -> None:
    def broken(_args: object) -> dict[str, str]:
        raise OSError("printer on fire")

    handler.actions["check_devices"] = broken  # type: ignore[assignment]
    missing = handler.handle(command(office_key, "print_test_page"))
    failing = handler.handle(command(office_key, "check_devices"))
    assert outcome(missing.ack) == "failed"
    assert "not available" in missing.ack.detail
    assert outcome(failing.ack) == "failed"
    assert "printer on fire" in failing.ack.detail


def test_config_shadow_records_desired_and_reported(tmp_path: Path) -> None:
    shadow = ConfigShadow(tmp_path / "shadow.json", lambda _k, v: str(v).upper())
    result = shadow.set({"key": "ui.language", "value": "vi"})
    assert result == {"key": "ui.language", "desired": "vi", "reported": "VI"}
    assert shadow.state()["reported"] == {"ui.language": "VI"}


def test_uploaded_logs_are_masked(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_text("line one\ncitizen 001099012345 served\n", encoding="utf-8")
    result = recent_logs(log)
    assert "001099012345" not in str(result["log"])
    assert result["lines"] == 2


def test_default_actions_set_config_upload_logs_and_renew(
    tmp_path: Path, office_key: ed25519.Ed25519PrivateKey
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from cloud_bridge.fleet.ca import KioskCa, ensure_kiosk_ca
    from edge.telemetry.service import default_actions
    from provisioning.identity import KioskIdentity

    ensure_kiosk_ca(tmp_path / "ca", ["127.0.0.1"])
    key = ec.generate_private_key(ec.SECP256R1())
    cert = KioskCa(tmp_path / "ca").issue_for_key(
        KIOSK, key.public_key(), timedelta(days=30)
    )
    identity = KioskIdentity(tmp_path / "id", KIOSK, "127.0.0.1", 8883, "http://b")
    identity.dir.mkdir()
    identity.certificate_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    log = tmp_path / "agent.log"
    log.write_text("started\n", encoding="utf-8")
    shadow = ConfigShadow(tmp_path / "shadow.json", lambda _k, v: v)
    handler = CommandHandler(
        KIOSK,
        office_key.public_key(),
        Outbox(tmp_path / "o.db"),
        actions=default_actions(identity, shadow, log, lambda: identity),
    )
    setting = handler.handle(
        command(office_key, "set_config", args={"key": "volume", "value": 3})
    )
    logs = handler.handle(command(office_key, "upload_logs"))
    renewed = handler.handle(command(office_key, "renew_certificate"))
    assert setting.ack.result["reported"] == 3
    assert logs.ack.result["log"] == "started"
    assert str(renewed.ack.result["expires_at"]).startswith(
        cert.not_valid_after_utc.date().isoformat()
    )
