"""The bridge database: requests, gap-free certification numbers, revocation.

SQLite by default, PostgreSQL by URL, one schema and one set of migrations.
Use :class:`CopyStore`; the modules below it hold functions over a
SQLAlchemy ``Connection`` for composing several steps in one transaction.
"""

from cloud_bridge.store.copy_store import CopyStore, utc_now
from cloud_bridge.store.engine import create_store_engine, masked
from cloud_bridge.store.migrations import (
    LATEST_VERSION,
    MIGRATIONS,
    Migration,
    check_schema,
    migrate,
    schema_version,
)
from cloud_bridge.store.records import (
    CopyDraft,
    CopyRecord,
    RequestDraft,
    RequestRecord,
    Reservation,
)

__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "CopyDraft",
    "CopyRecord",
    "CopyStore",
    "Migration",
    "RequestDraft",
    "RequestRecord",
    "Reservation",
    "check_schema",
    "create_store_engine",
    "masked",
    "migrate",
    "schema_version",
    "utc_now",
]
