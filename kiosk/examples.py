"""``kiosk config-example ROLE``: an annotated configuration file of the defaults."""

from __future__ import annotations

import importlib

import click
from pydantic import BaseModel

from kiosk.settings import example_toml

# role -> "module:class" of its configuration model.
ROLES: dict[str, str] = {
    "bridge": "cloud_bridge.config:BridgeConfig",
    "agent": "edge.config:AgentConfig",
}


def role_model(role: str) -> type[BaseModel]:
    """Return the configuration model of ``role``."""
    module_name, name = ROLES[role].split(":")
    model = getattr(importlib.import_module(module_name), name)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{ROLES[role]} is not a configuration model")
    return model


@click.command("config-example")
@click.argument("role", type=click.Choice(sorted(ROLES)))
def config_example_command(role: str) -> None:
    """Print ROLE's configuration with every default and its description."""
    click.echo(example_toml(role_model(role)), nl=False)
