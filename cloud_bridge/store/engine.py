"""Open the bridge database: SQLite by default, PostgreSQL by URL.

SQLite runs in WAL mode with a busy timeout and foreign keys on. pysqlite's
own transaction handling is switched off and SQLAlchemy's ``begin`` event
emits ``BEGIN IMMEDIATE`` for write transactions, so a writer takes the
database lock before it reads, instead of upgrading a read lock later, which
fails with "database is locked" when two writers meet. PostgreSQL runs
through psycopg 3 with a small pool, sized for a few worker processes.

SQL parameters are hidden from SQLAlchemy's error messages and logs, since
they include citizens' ID numbers. Create the engine (or the CopyStore) in
each worker process after it forks; pooled connections cannot be shared.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine

from cloud_bridge.errors import StoreError

logger = logging.getLogger(__name__)

WRITE_OPTION = "kiosk_write"
SQLITE_BUSY_TIMEOUT_MS = 30_000
WAL_SWITCH_S = 10.0
POOL_SIZE = 4
MAX_OVERFLOW = 4


def parse_url(url: str) -> URL:
    """Parse a database URL; a bare ``postgresql://`` means psycopg 3."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(
            f"the database URL {url!r} is not valid; use sqlite:///FILE or "
            "postgresql+psycopg://USER:PASSWORD@HOST/NAME"
        ) from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreError(
            f"the database URL {masked(parsed)} names {backend!r}; "
            "the bridge supports sqlite and postgresql"
        )
    return parsed


def masked(url: URL | str) -> str:
    """Return the URL with its password replaced by stars."""
    parsed = sa.make_url(url) if isinstance(url, str) else url
    return parsed.render_as_string(hide_password=True)


def create_store_engine(
    url: str, *, pool_size: int = POOL_SIZE, max_overflow: int = MAX_OVERFLOW
) -> Engine:
    """Create the engine for ``url`` with the settings the store relies on."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return sa.create_engine(
        parsed,
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": 10, "application_name": "kiosk-bridge"},
    )


def _sqlite_engine(url: URL) -> Engine:
    engine = sa.create_engine(
        url,
        hide_parameters=True,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )
    event.listen(engine, "connect", configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite)
    return engine


def configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    """Set up a new SQLite connection: busy timeout, WAL, full sync, foreign keys."""
    # Let SQLAlchemy's begin event emit BEGIN instead of pysqlite.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        _use_wal(cursor)
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _use_wal(cursor: Any) -> None:
    """Put the database in WAL mode (it stays so, in the file, once set).

    Switching needs the database to itself, and SQLite answers "database is
    locked" at once, without waiting out the busy timeout, when several
    processes open a new database together and each tries to switch; so
    the switch is retried for a few seconds.
    """
    deadline = time.monotonic() + WAL_SWITCH_S
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _begin_sqlite(connection: Connection) -> None:
    write = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """Yield a connection in a transaction that will write (IMMEDIATE on SQLite).

    The transaction commits when the block ends and rolls back on an error.
    """
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            yield connection


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """Yield a connection in a transaction that only reads."""
    with engine.connect() as connection, connection.begin():
        yield connection


@contextmanager
def database_errors(engine: Engine, action: str) -> Iterator[None]:
    """Turn driver errors raised while doing ``action`` into StoreError."""
    try:
        yield
    except sa.exc.IntegrityError as exc:
        raise StoreError(
            f"cannot {action}: it conflicts with a stored record "
            f"({_first_line(exc.orig)}); check the identifiers and retry"
        ) from exc
    except sa.exc.OperationalError as exc:
        raise StoreError(
            f"cannot {action}: the database {masked(engine.url)} is unreachable "
            f"or busy ({_first_line(exc.orig)}); check that it runs, that the "
            "[database] url is right, and retry"
        ) from exc
    except sa.exc.DBAPIError as exc:
        raise StoreError(
            f"cannot {action}: the database {masked(engine.url)} refused it "
            f"({_first_line(exc.orig)}); run 'kiosk bridge migrate' if the "
            "schema is missing"
        ) from exc


def _first_line(error: BaseException | None) -> str:
    text = str(error) if error is not None else "no detail"
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
