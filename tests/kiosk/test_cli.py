"""The one entry point lists every part's commands without importing them."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from kiosk.cli import COMMANDS, cli


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])

    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])

    assert result.exit_code == 0
    assert "version" in result.output


def test_our_errors_are_reported_without_a_traceback(tmp_path: object) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kiosk", "verify", "/nonexistent.pdf"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "does not exist" in done.stderr
