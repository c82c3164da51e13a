"""Command-line commands of the bridge, one module per area."""

from pathlib import Path

import click

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Bridge configuration file (TOML); the embedded defaults without it.",
)
