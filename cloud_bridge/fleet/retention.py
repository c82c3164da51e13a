"""Delete old fleet telemetry, in batches, table by table.

Health reports, events and commands are kept for a configured number of days
each (``fleet.health_retention_days``, ``events_retention_days`` and
``commands_retention_days``), counted from when the bridge received or
sent them (the bridge's clock, not a kiosk's). Rows go in batches of
``batch_rows``, each in its own short transaction, so a prune of millions of
rows never holds a lock long enough to stall ingestion. ``kiosk fleet prune``
runs it; ``deploy/kiosk-fleet-prune.timer`` runs that daily. Kiosks,
certificates and enrollment tokens are never pruned here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cloud_bridge.errors import FleetError

logger = logging.getLogger(__name__)

DEFAULT_BATCH_ROWS = 5_000


@dataclass(frozen=True)
class PrunedTable:
    """One table's rule: its key and the column that dates a row."""

    table: sa.Table
    key: sa.Column[str]
    dated_by: sa.Column[datetime]


TABLES = ("health", "events", "commands")


def _rule(name: str) -> PrunedTable:
    # Imported here, as in prune(): the migrations import this module, and
    # the store's package imports the migrations.
    from cloud_bridge.fleet import schema

    rules = {
        "health": PrunedTable(
            schema.health, schema.health.c.message_id, schema.health.c.received_at
        ),
        "events": PrunedTable(
            schema.events, schema.events.c.message_id, schema.events.c.received_at
        ),
        "commands": PrunedTable(
            schema.commands,
            schema.commands.c.command_id,
            schema.commands.c.created_at,
        ),
    }
    return rules[name]


# Indexes on the dating columns, so each batch finds its rows without a scan.
# Migration 7 creates them; plain DDL keeps migration 3's tables as they were.
RETENTION_INDEXES = (
    "CREATE INDEX IF NOT EXISTS ix_fleet_health_received ON fleet_health (received_at)",
    "CREATE INDEX IF NOT EXISTS ix_fleet_events_received ON fleet_events (received_at)",
    "CREATE INDEX IF NOT EXISTS ix_fleet_commands_created "
    "ON fleet_commands (created_at)",
)


def add_retention_indexes(connection: Connection) -> None:
    """Migration 7: index the columns retention deletes by."""
    for statement in RETENTION_INDEXES:
        connection.exec_driver_sql(statement)


def check_retention(days: Mapping[str, int]) -> None:
    """Refuse unknown table names and ages under one day.

    Raises:
        FleetError: the configured retention is not usable.
    """
    unknown = sorted(set(days) - set(TABLES))
    if unknown:
        raise FleetError(
            f"retention names unknown fleet tables {unknown}; use {list(TABLES)}"
        )
    short = sorted(name for name, kept in days.items() if kept < 1)
    if short:
        raise FleetError(
            f"the retention of {short} is under one day; set "
            "fleet.<table>_retention_days to at least 1"
        )


def prune(
    engine: Engine,
    days: Mapping[str, int],
    batch_rows: int = DEFAULT_BATCH_ROWS,
    now: datetime | None = None,
) -> dict[str, int]:
    """Delete rows older than their table's retention; return counts by table.

    ``now`` (default: the current time) is what the ages are counted from.

    Raises:
        FleetError: the retention or batch size is not usable.
        StoreError: the database failed; rows deleted so far stay deleted.
    """
    check_retention(days)
    if batch_rows < 1:
        raise FleetError("the prune batch size must be at least 1 row")
    now = now or datetime.now(UTC)
    deleted: dict[str, int] = {}
    for name, kept in days.items():
        cutoff = now - timedelta(days=kept)
        deleted[name] = _prune_table(engine, _rule(name), cutoff, batch_rows)
        logger.info("pruned %s %s rows received before %s", deleted[name], name, cutoff)
    return deleted


def _prune_table(
    engine: Engine, rule: PrunedTable, cutoff: datetime, batch_rows: int
) -> int:
    from cloud_bridge.store.engine import database_errors, write_transaction

    oldest = (
        sa.select(rule.key)
        .where(rule.dated_by < cutoff)
        .order_by(rule.dated_by)
        .limit(batch_rows)
        .scalar_subquery()
    )
    statement = sa.delete(rule.table).where(rule.key.in_(oldest))
    total = 0
    while True:
        with (
            database_errors(engine, f"prune {rule.table.name}"),
            write_transaction(engine) as connection,
        ):
            count = int(connection.execute(statement).rowcount)
        total += count
        if count < batch_rows:
            return total


def configured_retention(
    health_days: int, events_days: int, commands_days: int
) -> dict[str, int]:
    """Return the days kept by table name, from the fleet configuration."""
    return {"health": health_days, "events": events_days, "commands": commands_days}
