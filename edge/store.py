"""The agent's durable state in SQLite (WAL): the session and the outbox.

One row holds the current citizen's session (its step and answers) and a
table its page images. Submitting moves the session's request and pages
into the outbox in one transaction, so a request is either not submitted
or on disk; it leaves the outbox only when the office acknowledges it.
Decisions are recorded against the outbox row, so a restart knows which
request was approved and whether its copy was printed.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import StorageError

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS session (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    session_id TEXT NOT NULL,
    step TEXT NOT NULL,
    data TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pages (
    session_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    jpeg BLOB NOT NULL,
    findings TEXT NOT NULL,
    PRIMARY KEY (session_id, position)
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    acked_at REAL,
    ack TEXT,
    decision TEXT,
    printed_at REAL
);
CREATE TABLE IF NOT EXISTS outbox_pages (
    request_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    jpeg BLOB NOT NULL,
    PRIMARY KEY (request_id, position)
);
"""


SELECT_OUTBOX = (
    "SELECT seq, request_id, kind, payload, attempts, acked_at, decision, "
    "printed_at FROM outbox "
)


@dataclass(frozen=True)
class SessionRow:
    """The persisted part of a citizen's session."""

    session_id: str
    step: str
    data: dict[str, Any]
    updated_at: float


@dataclass(frozen=True)
class StoredPage:
    """One captured page of the current session."""

    position: int
    sha256: str
    jpeg: bytes
    findings: list[str]


@dataclass(frozen=True)
class OutboxEntry:
    """A request or event waiting for the office's acknowledgement."""

    seq: int
    request_id: str
    kind: str
    payload: str
    attempts: int
    acked: bool
    decision: dict[str, Any] | None
    printed: bool


class AgentStore:
    """SQLite store of the session and the outbox, safe across threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                str(path), check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise StorageError(
                f"cannot open the kiosk store {path}: {exc}; check the disk"
            ) from exc

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run statements in one immediate transaction."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StorageError(
                    f"the kiosk store could not be written: {exc}; free disk "
                    "space or call staff"
                ) from exc

    def load_session(self) -> SessionRow | None:
        """Return the current session, or None when the kiosk is idle."""
        with self._lock:
            row = self._db.execute(
                "SELECT session_id, step, data, updated_at FROM session"
            ).fetchone()
        if row is None:
            return None
        return SessionRow(row[0], row[1], json.loads(row[2]), row[3])

    def save_session(self, session_id: str, step: str, data: dict[str, Any]) -> None:
        """Write the session's step and answers."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO session (id, session_id, step, data, updated_at) "
                "VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "session_id = excluded.session_id, step = excluded.step, "
                "data = excluded.data, updated_at = excluded.updated_at",
                (session_id, step, json.dumps(data), time.time()),
            )

    def wipe_session(self) -> None:
        """Delete the session and its pages."""
        with self.transaction() as db:
            db.execute("DELETE FROM session")
            db.execute("DELETE FROM pages")

    def add_page(self, session_id: str, page: StoredPage) -> None:
        """Store a captured page at its position."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO pages VALUES (?, ?, ?, ?, ?)",
                (
                    session_id,
                    page.position,
                    page.sha256,
                    page.jpeg,
                    json.dumps(page.findings),
                ),
            )

    def delete_page(self, session_id: str, position: int) -> None:
        """Delete a page and close the gap in the numbering."""
        with self.transaction() as db:
            db.execute(
                "DELETE FROM pages WHERE session_id = ? AND position = ?",
                (session_id, position),
            )
            db.execute(
                "UPDATE pages SET position = position - 1 "
                "WHERE session_id = ? AND position > ?",
                (session_id, position),
            )

    def pages(self, session_id: str) -> list[StoredPage]:
        """Return the session's pages in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT position, sha256, jpeg, findings FROM pages "
                "WHERE session_id = ? ORDER BY position",
                (session_id,),
            ).fetchall()
        return [StoredPage(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def submit(
        self,
        session_id: str,
        request_id: str,
        payload_for: Any,
        step: str,
        data: dict[str, Any],
    ) -> int:
        """Move the session's request and pages into the outbox at once.

        ``payload_for(seq)`` returns the message JSON for the outbox number.
        Submitting the same request id again returns its number unchanged.
        """
        with self.transaction() as db:
            found = db.execute(
                "SELECT seq FROM outbox WHERE request_id = ?", (request_id,)
            ).fetchone()
            if found is not None:
                return int(found[0])
            last = db.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()
            seq = int(last[0]) + 1
            db.execute(
                "INSERT INTO outbox (seq, request_id, kind, payload, created_at) "
                "VALUES (?, ?, 'request', ?, ?)",
                (seq, request_id, payload_for(seq), time.time()),
            )
            db.execute(
                "INSERT INTO outbox_pages SELECT ?, position, sha256, jpeg "
                "FROM pages WHERE session_id = ?",
                (request_id, session_id),
            )
            db.execute("DELETE FROM pages WHERE session_id = ?", (session_id,))
            db.execute(
                "UPDATE session SET step = ?, data = ?, updated_at = ?",
                (step, json.dumps(data), time.time()),
            )
            return seq

    def add_event(self, event_id: str, payload: str) -> None:
        """Queue an event message for the office."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO outbox (request_id, kind, payload, "
                "created_at) VALUES (?, 'event', ?, ?)",
                (event_id, payload, time.time()),
            )

    def next_unacked(self) -> OutboxEntry | None:
        """Return the oldest entry the office has not acknowledged."""
        rows = self._entries("WHERE acked_at IS NULL ORDER BY seq LIMIT 1")
        return rows[0] if rows else None

    def entry(self, request_id: str) -> OutboxEntry | None:
        """Return the outbox entry of ``request_id``."""
        rows = self._entries("WHERE request_id = ?", (request_id,))
        return rows[0] if rows else None

    def entries(self) -> list[OutboxEntry]:
        """Return every outbox entry in order."""
        return self._entries("ORDER BY seq")

    def outbox_pages(self, request_id: str) -> list[tuple[str, bytes]]:
        """Return (sha256, jpeg) of a request's pages in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT sha256, jpeg FROM outbox_pages WHERE request_id = ? "
                "ORDER BY position",
                (request_id,),
            ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def count_attempt(self, request_id: str) -> None:
        """Count one more send of an entry."""
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1 WHERE request_id = ?",
                (request_id,),
            )

    def mark_acked(self, request_id: str, ack: dict[str, Any]) -> bool:
        """Record the office's acknowledgement and drop the request's pages."""
        with self.transaction() as db:
            changed = db.execute(
                "UPDATE outbox SET acked_at = ?, ack = ? "
                "WHERE request_id = ? AND acked_at IS NULL",
                (time.time(), json.dumps(ack), request_id),
            ).rowcount
            db.execute("DELETE FROM outbox_pages WHERE request_id = ?", (request_id,))
        return changed > 0

    def ack_of(self, request_id: str) -> dict[str, Any] | None:
        """Return the stored acknowledgement of a request."""
        with self._lock:
            row = self._db.execute(
                "SELECT ack FROM outbox WHERE request_id = ?", (request_id,)
            ).fetchone()
        return None if row is None or row[0] is None else dict(json.loads(row[0]))

    def record_decision(self, request_id: str, decision: dict[str, Any]) -> bool:
        """Record a decision once; return False for a repeat or unknown id."""
        with self.transaction() as db:
            changed = db.execute(
                "UPDATE outbox SET decision = ? "
                "WHERE request_id = ? AND decision IS NULL",
                (json.dumps(decision), request_id),
            ).rowcount
        return changed > 0

    def mark_printed(self, request_id: str) -> bool:
        """Record that printing started; False when it already had."""
        with self.transaction() as db:
            changed = db.execute(
                "UPDATE outbox SET printed_at = ? "
                "WHERE request_id = ? AND printed_at IS NULL",
                (time.time(), request_id),
            ).rowcount
        return changed > 0

    def _entries(self, where: str, args: tuple[Any, ...] = ()) -> list[OutboxEntry]:
        # ``where`` is always one of this module's literal clauses.
        query = SELECT_OUTBOX + where
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [
            OutboxEntry(
                seq=r[0],
                request_id=r[1],
                kind=r[2],
                payload=r[3],
                attempts=r[4],
                acked=r[5] is not None,
                decision=None if r[6] is None else json.loads(r[6]),
                printed=r[7] is not None,
            )
            for r in rows
        ]
