"""Schema migrations on SQLite and PostgreSQL: fresh, repeated, concurrent."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Connection, Engine

from cloud_bridge.commands.store import migrate_command
from cloud_bridge.errors import StoreError
from cloud_bridge.store import (
    LATEST_VERSION,
    MIGRATIONS,
    Migration,
    check_schema,
    create_store_engine,
    migrate,
    schema_version,
)
from cloud_bridge.store.engine import configure_sqlite_connection
from cloud_bridge.store.migrations import ledger
from cloud_bridge.store.schema import metadata

FORK = multiprocessing.get_context("fork")


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database URL on each engine."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bridge.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the empty database, disposed afterwards."""
    store_engine = create_store_engine(database_url)
    yield store_engine
    store_engine.dispose()


def ledger_rows(engine: Engine) -> list[int]:
    """Return the versions recorded in schema_migrations."""
    with engine.connect() as connection:
        query = sa.select(ledger.c.version).order_by(ledger.c.version)
        return list(connection.execute(query).scalars())


def _migrate_after(url: str, start: Event) -> None:
    engine = create_store_engine(url)
    start.wait(30)
    migrate(engine)
    engine.dispose()


def _open_new_database(path: str, start: Event) -> None:
    start.wait(30)
    # what the engine's connect hook does to every new SQLite connection
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    configure_sqlite_connection(connection, None)
    mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    connection.close()
    raise SystemExit(0 if mode == "wal" else 3)


def test_processes_opening_a_new_sqlite_database_at_once(tmp_path: Path) -> None:
    # each switches the new file to WAL; SQLite refuses all but one at once
    for trial in range(20):
        path = str(tmp_path / f"new-{trial}.db")
        start = FORK.Event()
        workers = [
            FORK.Process(target=_open_new_database, args=(path, start))
            for _ in range(6)
        ]
        for worker in workers:
            worker.start()
        start.set()
        for worker in workers:
            worker.join(60)
        assert [worker.exitcode for worker in workers] == [0] * 6


def test_fresh_database_reaches_latest_version(engine: Engine) -> None:
    assert schema_version(engine) == 0

    assert migrate(engine) == LATEST_VERSION

    assert check_schema(engine) == LATEST_VERSION
    assert ledger_rows(engine) == [m.version for m in MIGRATIONS]
    tables = set(sa.inspect(engine).get_table_names())
    assert {"requests", "copies", "counters", "schema_migrations"} <= tables


def test_migrated_schema_matches_the_tables_in_code(engine: Engine) -> None:
    migrate(engine)
    inspector = sa.inspect(engine)

    for table in metadata.sorted_tables:
        columns = {column["name"] for column in inspector.get_columns(table.name)}
        assert columns == set(table.columns.keys()), table.name
    unique = inspector.get_unique_constraints("copies")
    assert {"office_code", "book", "year", "cert_number"} in [
        set(constraint["column_names"]) for constraint in unique
    ]


def test_migrating_again_changes_nothing(engine: Engine) -> None:
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO counters VALUES ('O', 'B', 2026, 7)"))

    assert migrate(engine) == LATEST_VERSION

    assert ledger_rows(engine) == [m.version for m in MIGRATIONS]
    with engine.connect() as connection:
        last = connection.execute(sa.text("SELECT last_number FROM counters"))
        assert last.scalar_one() == 7


def test_processes_migrating_at_once_apply_each_step_once(
    engine: Engine, database_url: str
) -> None:
    start = FORK.Event()
    workers = [
        FORK.Process(target=_migrate_after, args=(database_url, start))
        for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(60)

    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    assert ledger_rows(engine) == [m.version for m in MIGRATIONS]
    assert check_schema(engine) == LATEST_VERSION


def _add_note_column(connection: Connection) -> None:
    connection.execute(sa.text("ALTER TABLE counters ADD COLUMN note TEXT"))


def _half_done(connection: Connection) -> None:
    connection.execute(sa.text("CREATE TABLE half_done (id INTEGER PRIMARY KEY)"))
    raise RuntimeError("step failed halfway")


def test_later_migration_applies_only_the_new_step(engine: Engine) -> None:
    migrate(engine)
    step = Migration(LATEST_VERSION + 1, "add a note to counters", _add_note_column)

    assert migrate(engine, [*MIGRATIONS, step]) == LATEST_VERSION + 1

    columns = {column["name"] for column in sa.inspect(engine).get_columns("counters")}
    assert "note" in columns
    assert ledger_rows(engine)[-1] == LATEST_VERSION + 1


def test_failed_migration_leaves_no_trace(engine: Engine) -> None:
    migrate(engine)
    step = Migration(LATEST_VERSION + 1, "fails", _half_done)

    with pytest.raises(RuntimeError, match="halfway"):
        migrate(engine, [*MIGRATIONS, step])

    assert schema_version(engine) == LATEST_VERSION
    assert not sa.inspect(engine).has_table("half_done")


def test_schema_newer_than_the_code_is_refused(engine: Engine) -> None:
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(
            ledger.insert().values(
                version=LATEST_VERSION + 5, name="future", applied_at=datetime.now(UTC)
            )
        )

    with pytest.raises(StoreError, match="upgrade the bridge software"):
        migrate(engine)
    with pytest.raises(StoreError, match="newer than this bridge knows"):
        check_schema(engine)


def test_unmigrated_database_asks_for_migration(engine: Engine) -> None:
    with pytest.raises(StoreError, match="run 'kiosk bridge migrate'"):
        check_schema(engine)


def test_duplicate_migration_versions_are_a_programming_error(
    engine: Engine,
) -> None:
    with pytest.raises(ValueError, match="unique"):
        migrate(engine, [*MIGRATIONS, MIGRATIONS[0]])


def test_migrate_command_prints_the_version(tmp_path: Path, database_url: str) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[database]\nurl = "{database_url}"\n',
        encoding="utf-8",
    )

    first = CliRunner().invoke(migrate_command, ["--config", str(config)])
    second = CliRunner().invoke(migrate_command, ["--config", str(config)])

    assert first.exit_code == 0, first.output
    assert f"schema version {LATEST_VERSION} (upgraded from 0)" in first.output
    assert second.exit_code == 0, second.output
    assert f"schema version {LATEST_VERSION} (already current)" in second.output


def test_migrate_command_creates_the_sqlite_directory(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[database]\nurl = "sqlite:///db/b.db"\n',
        encoding="utf-8",
    )

    result = CliRunner().invoke(migrate_command, ["--config", str(config)])

    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "db" / "b.db").is_file()
