"""``kiosk audit verify``: check the audit log's hash chain."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from cloud_bridge.audit import verify_chain
from cloud_bridge.commands import config_option
from cloud_bridge.config import load_bridge_config
from cloud_bridge.store import CopyStore

logger = logging.getLogger(__name__)


@click.command("verify")
@config_option
def verify_command(config_path: Path | None) -> None:
    """Check that no audit log row was edited, removed or reordered."""
    config = load_bridge_config(config_path)
    store = CopyStore(config.database_url())
    try:
        store.check_schema()
        report = verify_chain(store.engine)
    finally:
        store.close()
    if not report.ok:
        logger.error("audit chain broken at row %s", report.broken_seq)
        raise click.ClickException(
            f"the audit log is broken at row {report.broken_seq}: "
            f"{report.problem}; restore the database from a backup and "
            "investigate who changed it"
        )
    click.echo(f"audit log intact: {report.rows} rows, head {report.head}")
