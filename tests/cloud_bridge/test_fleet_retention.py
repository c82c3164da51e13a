"""Retention of fleet telemetry, on SQLite and PostgreSQL, and ``fleet prune``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from cloud_bridge.errors import FleetError
from cloud_bridge.fleet import schema
from cloud_bridge.fleet.cli import fleet_group
from cloud_bridge.fleet.registry import Batch, FleetRegistry
from cloud_bridge.fleet.retention import prune
from cloud_bridge.store.engine import write_transaction
from protocol.commands import Command
from protocol.envelope import new_message
from protocol.telemetry import Event, Health

KIOSK = "kiosk-r01"


@pytest.fixture(params=["sqlite", "postgresql"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FleetRegistry]:
    """A migrated, empty fleet registry on each engine."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fleet.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    opened = FleetRegistry.open(url)
    yield opened
    opened.close()


def store_telemetry(
    registry: FleetRegistry, health: int, events: int
) -> tuple[set[str], set[str]]:
    """Store ``health`` reports and ``events`` events; return both sets of ids."""
    batch = Batch(
        health=[new_message(Health, kiosk_id=KIOSK) for _ in range(health)],
        events=[
            new_message(
                Event,
                kiosk_id=KIOSK,
                event_type="copy_printed",
                occurred_at=datetime.now(UTC),
            )
            for _ in range(events)
        ],
    )
    registry.store(batch)
    return {h.message_id for h in batch.health}, {e.message_id for e in batch.events}


def add_command(registry: FleetRegistry) -> str:
    """Record a ping command and return its id."""
    command = new_message(
        Command,
        kiosk_id=KIOSK,
        name="ping",
        args={},
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
        signature="00",
    )
    registry.add_command(command, "manager")
    return command.message_id


def age(registry: FleetRegistry, ids: set[str], days: int) -> None:
    """Make the rows with ``ids`` look ``days`` old to the bridge."""
    when = datetime.now(UTC) - timedelta(days=days)
    with write_transaction(registry.engine) as conn:
        for table, key, column in (
            (schema.health, schema.health.c.message_id, "received_at"),
            (schema.events, schema.events.c.message_id, "received_at"),
            (schema.commands, schema.commands.c.command_id, "created_at"),
        ):
            conn.execute(sa.update(table).where(key.in_(ids)).values({column: when}))


def ids_in(registry: FleetRegistry, table: sa.Table, key: sa.Column[str]) -> set[str]:
    """Return the keys stored in ``table``."""
    with registry.engine.connect() as conn:
        return set(conn.execute(sa.select(key)).scalars())


def test_old_rows_go_in_batches_and_recent_rows_stay(registry: FleetRegistry) -> None:
    old_health, old_events = store_telemetry(registry, health=7, events=5)
    old_command = add_command(registry)
    age(registry, old_health | old_events | {old_command}, days=40)
    middle_health, middle_events = store_telemetry(registry, health=2, events=3)
    age(registry, middle_health | middle_events, days=20)
    fresh_health, fresh_events = store_telemetry(registry, health=2, events=2)
    fresh_command = add_command(registry)

    deleted = prune(
        registry.engine, {"health": 30, "events": 10, "commands": 30}, batch_rows=3
    )

    assert deleted == {"health": 7, "events": 5 + 3, "commands": 1}
    health = ids_in(registry, schema.health, schema.health.c.message_id)
    events = ids_in(registry, schema.events, schema.events.c.message_id)
    commands = ids_in(registry, schema.commands, schema.commands.c.command_id)
    assert health == middle_health | fresh_health
    assert events == fresh_events
    assert commands == {fresh_command}
    again = prune(registry.engine, {"health": 30, "events": 10, "commands": 30})
    assert again == {"health": 0, "events": 0, "commands": 0}


def test_migration_7_indexes_the_dating_columns(registry: FleetRegistry) -> None:
    inspector = sa.inspect(registry.engine)
    names = {
        index["name"]
        for table in ("fleet_health", "fleet_events", "fleet_commands")
        for index in inspector.get_indexes(table)
    }
    assert {
        "ix_fleet_health_received",
        "ix_fleet_events_received",
        "ix_fleet_commands_created",
    } <= names


@pytest.mark.parametrize(
    ("days", "message"),
    [({"photos": 3}, "unknown fleet tables"), ({"health": 0}, "under one day")],
)
def test_unusable_retention_is_refused(
    registry: FleetRegistry, days: dict[str, int], message: str
) -> None:
    store_telemetry(registry, health=1, events=1)
    with pytest.raises(FleetError, match=message):
        prune(registry.engine, days)
    assert registry.count(schema.health) == 1


def test_prune_command_uses_the_configured_days(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    config = tmp_path / "bridge.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        f'[database]\nurl = "{url}"\n'
        "[fleet]\nhealth_retention_days = 2\nevents_retention_days = 400\n",
        encoding="utf-8",
    )
    registry = FleetRegistry.open(url)
    try:
        health, events = store_telemetry(registry, health=4, events=4)
        age(registry, health | events, days=3)
    finally:
        registry.close()

    result = CliRunner().invoke(
        fleet_group, ["prune", "--config", str(config), "--batch-rows", "2"]
    )

    assert result.exit_code == 0, result.output
    assert "health: 4 rows older than 2 days deleted" in result.output
    assert "events: 0 rows older than 400 days deleted" in result.output
    registry = FleetRegistry.open(url)
    try:
        assert registry.count(schema.health) == 0
        assert registry.count(schema.events) == 4
    finally:
        registry.close()
