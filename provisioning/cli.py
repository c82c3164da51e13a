"""``kiosk provision``: enroll this kiosk with the office bridge."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import click
import httpx

from provisioning.config import ProvisioningSection
from provisioning.enroll import provision
from provisioning.keys import KioskKey, token_key_opener


@click.command("provision")
@click.option("--bridge", "bridge_url", required=True, help="Bridge base URL.")
@click.option("--token", required=True, help="One-time token from the fleet manager.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Identity directory (default: the agent's services.identity_dir).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help=(
        "Agent TOML file: its [services.key] says whether the key is made in "
        "a file or on a PKCS#11 token (PIN from "
        "KIOSK_AGENT__SERVICES__KEY__PKCS11_PIN)."
    ),
)
def provision_command(
    bridge_url: str, token: str, directory: Path | None, config_path: Path | None
) -> None:
    """Make this kiosk's key, enroll it and store its certificate."""
    section = ProvisioningSection()
    target = directory or section.identity_dir
    with ExitStack() as stack:
        key: KioskKey | None = None
        if config_path is not None:
            from edge.config import load_agent_config

            config = load_agent_config(config_path)
            target = directory or config.path(config.services.identity_dir)
            opener = token_key_opener(config.services.key)
            if opener is not None:
                key = stack.enter_context(opener())
        http = stack.enter_context(httpx.Client(timeout=section.timeout_s))
        identity = provision(target, bridge_url, token, http, key=key)
    click.echo(
        f"kiosk {identity.kiosk_id} enrolled; certificate until "
        f"{identity.expires_at():%Y-%m-%d %H:%M} UTC; broker "
        f"{identity.broker_host}:{identity.broker_port}"
    )
