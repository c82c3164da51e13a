"""Bring a bridge database to the latest schema with numbered migrations.

Each migration runs once, in order, and is recorded in ``schema_migrations``.
All of them run in one transaction under a lock (a PostgreSQL advisory lock,
SQLite's write lock from ``BEGIN IMMEDIATE``), so two processes starting at
once do not both apply a step: the second waits, then finds nothing to do.
DDL is transactional on both engines, so a failed step leaves no trace.

Migration 1 creates the tables from :mod:`.schema`. When a later migration
changes a table, the version-1 definitions must first be frozen into
migration 1 (copied, not imported), so that migration keeps meaning what it
meant when it was released.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cloud_bridge.console.migration import add_shared_state, create_console_tables
from cloud_bridge.errors import StoreError
from cloud_bridge.fleet.migration import create_fleet_tables
from cloud_bridge.fleet.retention import add_retention_indexes
from cloud_bridge.intake.tables import create_intake_tables
from cloud_bridge.store import schema
from cloud_bridge.store.engine import database_errors, masked, write_transaction
from cloud_bridge.store.schema import UtcDateTime
from ota.migration import create_ota_tables

logger = logging.getLogger(__name__)

# Key of the PostgreSQL advisory lock held while migrating ("kiosk" in ASCII).
ADVISORY_LOCK_KEY = 0x6B696F736B

ledger = sa.Table(
    "schema_migrations",
    sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("applied_at", UtcDateTime, nullable=False),
)


@dataclass(frozen=True)
class Migration:
    """One numbered step of the schema's history."""

    version: int
    name: str
    apply: Callable[[Connection], None]


def _create_tables(connection: Connection) -> None:
    schema.metadata.create_all(
        connection, tables=[schema.requests, schema.copies, schema.counters]
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "create requests, copies and counters", _create_tables),
    Migration(2, "create console, audit and reuse tables", create_console_tables),
    Migration(3, "create fleet kiosks and telemetry", create_fleet_tables),
    Migration(4, "create kiosk intake details", create_intake_tables),
    Migration(5, "create OTA releases and kiosk states", create_ota_tables),
    Migration(6, "add delivery leases and shared rate limits", add_shared_state),
    Migration(7, "index fleet telemetry for retention", add_retention_indexes),
)
LATEST_VERSION = max(migration.version for migration in MIGRATIONS)


def migrate(engine: Engine, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Apply every migration not yet applied and return the schema version.

    Raises:
        StoreError: the database is unreachable, a step failed, or the
            database was migrated by newer code than this.
    """
    steps = _ordered(migrations)
    with (
        database_errors(engine, "migrate the database"),
        write_transaction(engine) as connection,
    ):
        _lock(connection)
        ledger.create(connection, checkfirst=True)
        applied = set(connection.execute(sa.select(ledger.c.version)).scalars())
        _refuse_newer(engine, applied, steps)
        for step in steps:
            if step.version not in applied:
                _apply(connection, step)
        return max([*applied, *(step.version for step in steps)], default=0)


def schema_version(engine: Engine) -> int:
    """Return the highest applied migration (0 for an empty database)."""
    with (
        database_errors(engine, "read the schema version"),
        engine.connect() as connection,
    ):
        if not sa.inspect(connection).has_table(ledger.name):
            return 0
        query = sa.select(sa.func.max(ledger.c.version))
        return int(connection.execute(query).scalar() or 0)


def check_schema(engine: Engine) -> int:
    """Return the schema version if it is the one this code expects.

    Raises:
        StoreError: the schema is older (run the migration) or newer (upgrade
            the bridge) than this code.
    """
    version = schema_version(engine)
    if version < LATEST_VERSION:
        raise StoreError(
            f"the database {masked(engine.url)} has schema version {version}, "
            f"this bridge needs {LATEST_VERSION}; run 'kiosk bridge migrate'"
        )
    if version > LATEST_VERSION:
        raise StoreError(_newer_message(engine, version, LATEST_VERSION))
    return version


def _ordered(migrations: Sequence[Migration]) -> list[Migration]:
    steps = sorted(migrations, key=lambda step: step.version)
    versions = [step.version for step in steps]
    if len(set(versions)) != len(versions) or any(v < 1 for v in versions):
        raise ValueError(f"migration versions must be unique and >= 1: {versions}")
    return steps


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY)))


def _refuse_newer(engine: Engine, applied: set[int], steps: list[Migration]) -> None:
    known = max((step.version for step in steps), default=0)
    newest = max(applied, default=0)
    if newest > known:
        raise StoreError(_newer_message(engine, newest, known))


def _newer_message(engine: Engine, found: int, known: int) -> str:
    return (
        f"the database {masked(engine.url)} has schema version {found}, newer "
        f"than this bridge knows ({known}); upgrade the bridge software"
    )


def _apply(connection: Connection, step: Migration) -> None:
    logger.info("applying migration %s: %s", step.version, step.name)
    step.apply(connection)
    connection.execute(
        ledger.insert().values(
            version=step.version, name=step.name, applied_at=datetime.now(UTC)
        )
    )
