"""``kiosk provision``: enroll this kiosk with the office bridge."""

from __future__ import annotations

from pathlib import Path

import click
import httpx

from provisioning.config import ProvisioningSection
from provisioning.enroll import provision


@click.command("provision")
@click.option("--bridge", "bridge_url", required=True, help="Bridge base URL.")
@click.option("--token", required=True, help="One-time token from the fleet manager.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Identity directory (default: provisioning.identity_dir).",
)
def provision_command(bridge_url: str, token: str, directory: Path | None) -> None:
    """Make this kiosk's key, enroll it and store its certificate."""
    section = ProvisioningSection()
    target = directory or section.identity_dir
    with httpx.Client(timeout=section.timeout_s) as http:
        identity = provision(target, bridge_url, token, http)
    click.echo(
        f"kiosk {identity.kiosk_id} enrolled; certificate until "
        f"{identity.expires_at():%Y-%m-%d %H:%M} UTC; broker "
        f"{identity.broker_host}:{identity.broker_port}"
    )
