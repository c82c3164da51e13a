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
    "agent": (
        "edge.agent:agent_command",
        "Run the kiosk agent and its touch-screen web UI.",
    ),
    "devices": ("drivers.cli:devices", "Check and exercise the kiosk's devices."),
    "models": ("models.cli:models_group", "Fetch, check and quantize the model files."),
    "ocr": (
        "models.cli:ocr_command",
        "Read document images and print one JSON line per image.",
    ),
    "face": ("models.cli:face_group", "Embed and verify faces."),
    "console": ("kiosk.cli:console", "Manage the officer console's users."),
    "reuse": ("kiosk.cli:reuse", "Manage the public services that reuse copies."),
    "audit": ("kiosk.cli:audit", "Check the audit log's hash chain."),
    "provision": (
        "provisioning.cli:provision_command",
        "Enroll this kiosk with the office and renew its certificate.",
    ),
    "fleet": (
        "cloud_bridge.fleet.cli:fleet_group",
        "List, enroll and revoke kiosks; run the telemetry consumer.",
    ),
    "ota": (
        "ota.cli:ota_group",
        "Publish signed model updates and follow their rollout.",
    ),
    "config-example": (
        "kiosk.examples:config_example_command",
        "Print a role's configuration file with every default, annotated.",
    ),
    "run": (
        "kiosk.stack:run_command",
        "Run the embedded default stack: broker, bridge and one kiosk agent.",
    ),
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
    "intake": (
        "cloud_bridge.commands.serve:intake_command",
        "Take kiosks' requests (MQTT) and page images (HTTPS, mutual TLS).",
    ),
    "broker-config": (
        "cloud_bridge.fleet.cli:broker_config_command",
        "Write the Mosquitto configuration: TLS, client certificates, ACL.",
    ),
    "run": (
        "cloud_bridge.commands.serve:run_command",
        "Run the bridge and its trust services alone (no broker, no kiosk).",
    ),
}

CONSOLE_COMMANDS: dict[str, tuple[str, str]] = {
    "add-user": (
        "cloud_bridge.commands.console:add_user_command",
        "Add an officer, supervisor, fleet manager, auditor or administrator.",
    ),
}

REUSE_COMMANDS: dict[str, tuple[str, str]] = {
    "add-client": (
        "cloud_bridge.commands.console:add_client_command",
        "Register a public service and print its client secret once.",
    ),
}

AUDIT_COMMANDS: dict[str, tuple[str, str]] = {
    "verify": (
        "cloud_bridge.commands.audit:verify_command",
        "Check the audit log's hash chain; name the first broken row.",
    ),
}

BENCHES: dict[str, tuple[str, str]] = {
    "console": (
        "cloud_bridge.console.bench:console_bench",
        "Approve clean requests in Chromium; print review and email times.",
    ),
    "sign": (
        "cloud_bridge.bench:sign_bench",
        "Render, sign, timestamp and archive copies; print rates and latency.",
    ),
    "fleet": (
        "cloud_bridge.fleet.bench:fleet_bench",
        "Simulate a fleet over TLS; print ingest rate, lag and losses.",
    ),
    "visit": (
        "edge.bench:visit_bench",
        "Run simulated visits; print step times, idle load and submit-to-print.",
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


@click.group(cls=LazyGroup, lazy=CONSOLE_COMMANDS)
def console() -> None:
    """Manage the officer console's users."""


@click.group(cls=LazyGroup, lazy=REUSE_COMMANDS)
def reuse() -> None:
    """Manage the public services that reuse copies."""


@click.group(cls=LazyGroup, lazy=AUDIT_COMMANDS)
def audit() -> None:
    """Check the audit log's hash chain."""


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
