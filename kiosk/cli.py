"""The ``kiosk`` command: one entry point, with a group of subcommands per part.

Subcommands are imported only when they are called, so the kiosk side does not
need the bridge's dependencies installed, nor the bridge the kiosk's.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from kiosk.errors import KioskError
from kiosk.logs import setup_logging

# name -> ("module:attribute", short help) of a command, imported on first use.
COMMANDS: dict[str, tuple[str, str]] = {
    "bridge": ("kiosk.cli:bridge", "Run and set up the office bridge."),
    "copy": (
        "cloud_bridge.commands.copies:copy_group",
        "Make and revoke certified copies.",
    ),
    "verify": (
        "cloud_bridge.commands.copies:verify_command",
        "Verify a certified copy (PDF) or the QR seal on a printed one.",
    ),
    "devices": ("drivers.cli:devices", "Check and exercise the kiosk's devices."),
    "models": ("models.cli:models_group", "Fetch, check and quantize the model files."),
    "ocr": (
        "models.cli:ocr_command",
        "Read document images and print one JSON line per image.",
    ),
    "face": ("models.cli:face_group", "Embed and verify faces."),
    "bench": ("kiosk.cli:bench", "Measure speed and memory against the targets."),
}

BRIDGE_COMMANDS: dict[str, tuple[str, str]] = {
    "init": (
        "cloud_bridge.commands.pki:init_command",
        "Create the development PKI, HSM token and database (idempotent).",
    ),
    "trust-services": (
        "cloud_bridge.commands.pki:trust_services_command",
        "Serve the local timestamp authority, CRL and OCSP responder.",
    ),
    "migrate": (
        "cloud_bridge.commands.store:migrate_command",
        "Create or upgrade the bridge database schema.",
    ),
    "serve": (
        "cloud_bridge.commands.serve:serve_command",
        "Serve the bridge's HTTP API and pages.",
    ),
    "run": (
        "cloud_bridge.commands.serve:run_command",
        "Run the embedded default stack on this machine.",
    ),
}

BENCHES: dict[str, tuple[str, str]] = {
    "sign": (
        "cloud_bridge.bench:sign_bench",
        "Render, sign, timestamp and archive copies; print rates and latency.",
    ),
    "vision": (
        "models.bench:vision_bench",
        "Measure OCR, face and liveness accuracy and speed.",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported from ``module:attr`` on demand."""

    def __init__(
        self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            return _load(self.lazy[cmd_name][0])
        return super().get_command(ctx, cmd_name)

    def format_commands(
        self, ctx: click.Context, formatter: click.HelpFormatter
    ) -> None:
        rows = [(name, self.lazy[name][1]) for name in sorted(self.lazy)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _load(target: str) -> click.Command:
    module_name, attribute = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = exc.name or str(exc)
        raise click.ClickException(
            f"this command needs the Python package {missing!r}, which is not "
            "installed; install the project with the extra for this role, e.g. "
            "pip install '.[bridge]' or '.[edge]'"
        ) from exc
    command = getattr(module, attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{target} is not a click command")
    return command


@click.group(cls=LazyGroup, lazy=COMMANDS)
@click.option("--log-level", default="INFO", show_default=True, help="Log level.")
@click.option("--log-json", is_flag=True, help="Log JSON lines instead of text.")
@click.version_option(package_name="ttpvhcc-kiosk")
def cli(log_level: str, log_json: bool) -> None:
    """Certified-copy kiosks: the kiosk agent and the office bridge."""
    setup_logging(log_level, log_json)


@click.group(cls=LazyGroup, lazy=BRIDGE_COMMANDS)
def bridge() -> None:
    """Run and set up the office bridge."""


@click.group(cls=LazyGroup, lazy=BENCHES)
def bench() -> None:
    """Measure speed and memory against the targets."""


def main() -> None:
    """Run the command line; report our own errors without a traceback."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KioskError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
