"""``kiosk devices check`` and ``kiosk devices test`` on simulated devices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from drivers.cli import devices


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "devices.toml"
    path.write_text(
        f'[document_printer]\noutput_dir = "{tmp_path / "printed"}"\n'
        "[cameras.document]\nfps = 30\n"
    )
    return path


def test_check_json_lists_every_device(config_file: Path) -> None:
    result = CliRunner().invoke(
        devices, ["check", "--json", "--config", str(config_file)]
    )
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)["devices"]}
    assert set(rows) == {
        "camera.document",
        "document_printer",
        "receipt_printer",
        "gpio",
        "code_reader",
    }
    assert rows["receipt_printer"]["backend"] == "simulated"
    assert rows["code_reader"]["backend"] == "camera"
    assert all(row["state"] == "ok" for row in rows.values())
    assert "print_copies" in rows["document_printer"]["capabilities"]


def test_check_exits_nonzero_when_a_device_failed(tmp_path: Path) -> None:
    path = tmp_path / "devices.toml"
    path.write_text(
        '[document_printer]\nbackend = "cups"\nport = 1\nrequest_timeout_s = 1\n'
    )
    result = CliRunner().invoke(devices, ["check", "--config", str(path)])
    assert result.exit_code == 1
    assert "document_printer   cups       failed (printer offline)" in result.output


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("camera.document", "captured 2592x1944"),
        ("receipt_printer", "test receipt printed"),
        ("document_printer", "completed"),
        ("light", "blinked 3 times"),
        ("presence", "presence: no change in 0.2 s"),
        ("code_reader", "nothing read in 0.2 s"),
    ],
)
def test_test_exercises_one_device(
    config_file: Path, tmp_path: Path, name: str, expected: str
) -> None:
    options = ["--config", str(config_file), "--output", str(tmp_path)]
    result = CliRunner().invoke(devices, ["test", name, *options, "--seconds", "0.2"])
    assert result.exit_code == 0, result.output
    assert expected in result.output
    if name == "camera.document":
        assert (tmp_path / "camera.document.jpg").stat().st_size > 1000


def test_test_unknown_device_is_a_usage_error(config_file: Path) -> None:
    result = CliRunner().invoke(
        devices, ["test", "toaster", "--config", str(config_file)]
    )
    assert result.exit_code == 2
    assert "no device named 'toaster'" in result.output


def test_kiosk_command_reaches_the_devices_group(config_file: Path) -> None:
    from kiosk.cli import cli

    result = CliRunner().invoke(cli, ["devices", "check", "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    assert "receipt_printer    simulated  ok" in result.output


def test_missing_camera_backend_fails_only_that_camera(tmp_path: Path) -> None:
    path = tmp_path / "devices.toml"
    path.write_text(
        '[cameras.document]\nbackend = "picamera2"\n'
        '[cameras.face]\nrole = "face"\n'
        '[code_reader]\ncamera = "face"\n'
        f'[document_printer]\noutput_dir = "{tmp_path}"\n'
    )
    result = CliRunner().invoke(devices, ["check", "--json", "--config", str(path)])
    assert result.exit_code == 1
    rows = {row["name"]: row for row in json.loads(result.output)["devices"]}
    assert rows["camera.document"]["state"] == "failed"
    assert rows["camera.document"]["reason"] == "camera gone"
    assert "python3-picamera2" in rows["camera.document"]["detail"]
    assert rows["camera.face"]["state"] == "ok"
    assert rows["receipt_printer"]["state"] == "ok"
