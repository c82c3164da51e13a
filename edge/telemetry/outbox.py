"""The kiosk's telemetry outbox: SQLite (WAL), ordered, bounded, events kept.

Every health report and event is written here before it is sent, and
deleted only when the broker acknowledges it, so an outage loses nothing:
the publisher replays from the oldest row in order. The outbox holds at
most ``max_rows``; beyond that, old health reports are thinned (every other
one of the older half goes) and then dropped oldest first. Events are never
dropped; if events alone exceed the bound the outbox grows and says so.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edge.telemetry.errors import TelemetryError

logger = logging.getLogger(__name__)

TELEMETRY = "telemetry"
EVENT = "event"

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('telemetry', 'event')),
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_kind ON outbox (kind, seq);
CREATE TABLE IF NOT EXISTS seen_commands (
    command_id TEXT PRIMARY KEY,
    seen_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Pending:
    """One message waiting to be sent."""

    seq: int
    kind: str
    topic: str
    payload: bytes


class Outbox:
    """A bounded, ordered store-and-forward queue in one SQLite file."""

    def __init__(self, path: Path, max_rows: int = 10_000) -> None:
        self.path = path
        self.max_rows = max_rows
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise TelemetryError(
                f"cannot open the telemetry outbox {path}: {exc}; check the disk"
            ) from exc

    def put(self, kind: str, topic: str, payload: bytes) -> int:
        """Store a message; return its sequence number."""
        with self._lock, self._errors("store a message"):
            cursor = self._db.execute(
                "INSERT INTO outbox (kind, topic, payload, created_at) "
                "VALUES (?, ?, ?, ?)",
                (kind, topic, payload, time.time()),
            )
            self._bound()
            return int(cursor.lastrowid or 0)

    def pending(self, after: int = 0, limit: int = 100) -> list[Pending]:
        """Return up to ``limit`` messages after sequence ``after``, oldest first."""
        with self._lock, self._errors("read messages"):
            rows = self._db.execute(
                "SELECT seq, kind, topic, payload FROM outbox WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        return [Pending(int(r[0]), str(r[1]), str(r[2]), bytes(r[3])) for r in rows]

    def delete(self, seq: int) -> None:
        """Forget a message the broker acknowledged."""
        with self._lock, self._errors("delete a message"):
            self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    def depth(self) -> int:
        """Return how many messages wait."""
        with self._lock, self._errors("count messages"):
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def count(self, kind: str) -> int:
        """Return how many messages of ``kind`` wait."""
        with self._lock, self._errors("count messages"):
            query = "SELECT count(*) FROM outbox WHERE kind = ?"
            return int(self._db.execute(query, (kind,)).fetchone()[0])

    def remember_command(self, command_id: str) -> bool:
        """Record a command id; return False when it was seen before."""
        with self._lock, self._errors("record a command"):
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO seen_commands VALUES (?, ?)",
                (command_id, time.time()),
            )
            self._db.execute(
                "DELETE FROM seen_commands WHERE seen_at < ?",
                (time.time() - 30 * 86400,),
            )
            return cursor.rowcount == 1

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def _bound(self) -> None:
        total = int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])
        if total <= self.max_rows:
            return
        telemetry = [
            int(r[0])
            for r in self._db.execute(
                "SELECT seq FROM outbox WHERE kind = 'telemetry' ORDER BY seq"
            )
        ]
        older = telemetry[: len(telemetry) // 2]
        doomed = older[1::2]
        excess = total - len(doomed) - self.max_rows
        if excess > 0:
            thinned = set(doomed)
            kept = [seq for seq in telemetry if seq not in thinned]
            doomed.extend(kept[:excess])
        self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in doomed])
        if total - len(doomed) > self.max_rows:
            logger.warning(
                "telemetry outbox holds %s events, over its bound of %s; events "
                "are kept until the office is reachable",
                total - len(doomed),
                self.max_rows,
            )
        else:
            logger.info("telemetry outbox thinned by %s health reports", len(doomed))

    def _errors(self, action: str) -> _SqliteErrors:
        return _SqliteErrors(self.path, action)


class _SqliteErrors:
    """Turn sqlite3 errors into TelemetryError."""

    def __init__(self, path: Path, action: str) -> None:
        self.path = path
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, _tb: object) -> None:
        if isinstance(exc, sqlite3.Error):
            raise TelemetryError(
                f"cannot {self.action} in the outbox {self.path}: {exc}"
            ) from exc
