"""``kiosk console add-user`` and ``kiosk reuse add-client``.

The password is read from a hidden prompt, or from standard input with
``--password-stdin``, never from an argument (arguments are visible to
other users in the process list). The TOTP provisioning URI and a client's
secret are printed once and not stored in readable form.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from cloud_bridge.commands import config_option
from cloud_bridge.config import load_bridge_config
from cloud_bridge.console.tables import ROLES
from cloud_bridge.console.totp_secrets import box_from_config
from cloud_bridge.console.users import create_user
from cloud_bridge.errors import BridgeError
from cloud_bridge.reuse.credentials import create_client
from cloud_bridge.store import CopyStore

logger = logging.getLogger(__name__)


@click.command("add-user")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True, help="The role.")
@click.option("--full-name", required=True, help="Name printed on copies.")
@click.option(
    "--title", default="Công chức Tư pháp - Hộ tịch", help="Title printed on copies."
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input."
)
@config_option
def add_user_command(
    username: str,
    role: str,
    full_name: str,
    title: str,
    password_stdin: bool,
    config_path: Path | None,
) -> None:
    """Create a console user and print the TOTP provisioning URI once."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt(
            "Password", hide_input=True, confirmation_prompt=True, err=True
        )
    config = load_bridge_config(config_path)
    store = CopyStore(config.database_url())
    try:
        store.migrate()
        created = create_user(
            store.engine,
            username,
            role=role,
            full_name=full_name,
            title=title,
            password=password,
            issuer=config.console.totp_issuer,
            box=box_from_config(config),
        )
    except BridgeError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()
    logger.info("created console user %s with role %s", username, role)
    click.echo(f"created {username} ({role}). Add this to the authenticator app")
    click.echo("now; it is not shown again:")
    click.echo(created.provisioning_uri)


@click.command("add-client")
@click.argument("name")
@click.option(
    "--requests-per-minute",
    type=click.IntRange(1, 10_000),
    default=None,
    help="Rate limit (default: reuse.requests_per_minute).",
)
@config_option
def add_client_command(
    name: str, requests_per_minute: int | None, config_path: Path | None
) -> None:
    """Register a public service for the reuse API; print its secret once."""
    config = load_bridge_config(config_path)
    store = CopyStore(config.database_url())
    try:
        store.migrate()
        created = create_client(
            store.engine, name, requests_per_minute or config.reuse.requests_per_minute
        )
    except BridgeError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()
    click.echo(f"client_id:     {created.client.client_id}")
    click.echo(f"client_secret: {created.secret}")
    click.echo("Give both to the service now; the secret is not shown again.")
