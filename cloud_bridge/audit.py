"""An append-only, hash-chained audit log of decisions and views of citizen data.

Each row carries the SHA-256 of the previous row and its own hash over its
fields and that link, so editing, deleting or reordering a row breaks the
chain at that row; :func:`verify_chain` names the first broken one. Rows are
appended in the caller's write transaction, serialised by the database's
write lock (SQLite) or an advisory lock (PostgreSQL), so two writers never
take the same sequence number. The log is only as tamper-evident as its
newest hash is kept elsewhere: an attacker who can rewrite the whole table
can rebuild the chain, which is why operators should copy the head hash
(``kiosk audit verify`` prints it) to paper or another system regularly.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cloud_bridge.console.tables import audit_log
from cloud_bridge.store.engine import read_transaction, write_transaction

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
# PostgreSQL advisory lock key serialising appends ("audit" in ASCII).
AUDIT_LOCK_KEY = 0x6175646974


@dataclass(frozen=True)
class AuditEntry:
    """One row of the audit log."""

    seq: int
    at: str
    actor: str
    action: str
    subject: str
    detail: str
    prev_hash: str
    row_hash: str


@dataclass(frozen=True)
class ChainReport:
    """The result of checking the chain: rows read and the first broken one."""

    rows: int
    head: str
    broken_seq: int | None
    problem: str | None

    @property
    def ok(self) -> bool:
        """Return True when every row links to the one before it."""
        return self.broken_seq is None


def row_hash(
    seq: int, at: str, actor: str, action: str, subject: str, detail: str, prev: str
) -> str:
    """Return the SHA-256 that seals one row and its link to the previous one."""
    canonical = json.dumps(
        [seq, at, actor, action, subject, detail, prev],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def append(
    connection: Connection,
    actor: str,
    action: str,
    subject: str,
    detail: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEntry:
    """Append one entry in the caller's write transaction and return it."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(AUDIT_LOCK_KEY)))
    last = connection.execute(
        sa.select(audit_log.c.seq, audit_log.c.row_hash)
        .order_by(audit_log.c.seq.desc())
        .limit(1)
    ).first()
    seq = 1 if last is None else int(last.seq) + 1
    prev = GENESIS if last is None else str(last.row_hash)
    at = (now or datetime.now(UTC)).isoformat()
    text = json.dumps(dict(detail or {}), ensure_ascii=False, sort_keys=True)
    digest = row_hash(seq, at, actor, action, subject, text, prev)
    entry = AuditEntry(seq, at, actor, action, subject, text, prev, digest)
    connection.execute(audit_log.insert().values(**entry.__dict__))
    return entry


def record(
    engine: Engine,
    actor: str,
    action: str,
    subject: str,
    detail: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in a transaction of its own."""
    with write_transaction(engine) as connection:
        entry = append(connection, actor, action, subject, detail)
    logger.debug("audit %s: %s %s %s", entry.seq, actor, action, subject)
    return entry


def recent(engine: Engine, limit: int = 100) -> list[AuditEntry]:
    """Return the newest entries, newest first."""
    query = sa.select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
    with read_transaction(engine) as connection:
        return [AuditEntry(**row._asdict()) for row in connection.execute(query)]


def verify_chain(engine: Engine) -> ChainReport:
    """Recompute every row's hash and link; report the first broken row."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    query = sa.select(audit_log).order_by(audit_log.c.seq)
    with read_transaction(engine) as connection:
        for row in connection.execute(query):
            count += 1
            problem = _row_problem(row, prev, expected_seq)
            if problem is not None:
                return ChainReport(count, prev, int(row.seq), problem)
            prev = str(row.row_hash)
            expected_seq += 1
    return ChainReport(count, prev, None, None)


def _row_problem(row: Any, prev: str, expected_seq: int) -> str | None:
    if row.seq != expected_seq:
        return f"expected row {expected_seq} but found {row.seq}: rows are missing"
    if row.prev_hash != prev:
        return "its link does not match the previous row's hash"
    digest = row_hash(
        row.seq, row.at, row.actor, row.action, row.subject, row.detail, prev
    )
    if digest != row.row_hash:
        return "its content does not match its hash: the row was edited"
    return None
