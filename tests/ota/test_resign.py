"""Re-signing before expiry keeps kiosks updating; the timer's command works."""

from __future__ import annotations

import shlex
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner

from ota.cli import ota_group
from ota.repository import utc_now
from tests.ota.conftest import Kiosk, Office

ROOT = Path(__file__).resolve().parents[2]
MARGIN = timedelta(hours=12)


def sign_as_of(office: Office, hours_ago: float) -> None:
    """Sign a timestamp as if it were ``hours_ago`` hours ago."""
    then = utc_now() - timedelta(hours=hours_ago)
    office.repository.clock = lambda: then
    office.repository.resign_timestamp()
    office.repository.clock = utc_now


def test_timestamp_expiring_soon_is_refreshed_and_nothing_else(
    office: Office,
) -> None:
    sign_as_of(office, 23)  # a 24-hour timestamp with one hour left
    before = office.repository.expiries()

    signed = office.repository.refresh_expiring(MARGIN)

    after = office.repository.expiries()
    assert list(signed) == ["timestamp"]
    assert after["timestamp"] - before["timestamp"] > timedelta(hours=22)
    assert after["snapshot"] == before["snapshot"]
    assert office.repository.refresh_expiring(MARGIN) == {}


def test_frozen_kiosk_updates_again_after_the_refresh(
    office: Office, kiosk: Kiosk
) -> None:
    target = office.publish("2.0")
    sign_as_of(office, 25)  # expired an hour ago: kiosks refuse to update
    refused = kiosk.client.install(target)
    assert refused.state == "refused" and "Expired" in refused.error

    office.repository.refresh_expiring(MARGIN)

    assert kiosk.client.install(target).state == "installed"
    assert kiosk.client.running_version() == "2.0"


def test_snapshot_and_targets_near_expiry_are_re_signed_together(
    office: Office, kiosk: Kiosk
) -> None:
    first = office.publish("2.0")
    assert kiosk.client.install(first).state == "installed"
    kiosk.client.clock = lambda: 1e12
    kiosk.client.confirm()
    lifetimes = office.repository.lifetimes
    office.repository.clock = lambda: utc_now() - lifetimes.targets + timedelta(hours=1)
    target = office.publish("3.0")  # its targets and snapshot soon expire
    office.repository.clock = utc_now

    signed = office.repository.refresh_expiring(MARGIN)

    assert set(signed) == {"targets", "snapshot", "timestamp"}
    expiries = office.repository.expiries()
    assert expiries["targets"] > utc_now() + lifetimes.targets - timedelta(hours=1)
    assert kiosk.client.install(target).state == "installed"
    assert kiosk.client.running_version() == "3.0"


def test_the_timer_command_signs_only_when_due(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(f'data_dir = "{tmp_path / "bridge"}"\n', encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(ota_group, ["init", "--config", str(config)]).exit_code == 0
    unit = (ROOT / "deploy" / "kiosk-ota-resign.service").read_text("utf-8")
    exec_start = next(
        line for line in unit.splitlines() if line.startswith("ExecStart=")
    )
    words = shlex.split(exec_start.removeprefix("ExecStart="))
    args = words[words.index("ota") + 1 :]
    args[args.index("--config") + 1] = str(config)

    due_later = runner.invoke(ota_group, args)
    forced = runner.invoke(ota_group, ["resign-timestamp", "--config", str(config)])

    assert due_later.exit_code == 0, due_later.output
    assert "nothing due" in due_later.output
    assert forced.exit_code == 0, forced.output
    assert "timestamp version 2 signed" in forced.output
