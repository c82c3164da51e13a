"""``kiosk bridge migrate``: create or upgrade the bridge database schema."""

from __future__ import annotations

import logging
from pathlib import Path

import click
import sqlalchemy as sa

from cloud_bridge.commands import config_option
from cloud_bridge.config import load_bridge_config
from cloud_bridge.store import CopyStore, masked

logger = logging.getLogger(__name__)


@click.command("migrate")
@config_option
def migrate_command(config_path: Path | None) -> None:
    """Create or upgrade the bridge database schema and print its version."""
    config = load_bridge_config(config_path)
    url = config.database_url()
    _make_sqlite_directory(url)
    store = CopyStore(url)
    try:
        before = store.schema_version()
        version = store.migrate()
    finally:
        store.close()
    change = "already current" if version == before else f"upgraded from {before}"
    logger.info("database %s at schema version %s", masked(url), version)
    click.echo(f"schema version {version} ({change}): {masked(url)}")


def _make_sqlite_directory(url: str) -> None:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (
        None,
        "",
        ":memory:",
    ):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
