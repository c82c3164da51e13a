"""The bridge database behind one object: requests, numbered copies, revocation.

Every method runs in its own transaction and returns frozen records. Write
transactions on SQLite begin with ``BEGIN IMMEDIATE``. Driver errors come
out as :class:`~cloud_bridge.errors.StoreError` naming the database with its
password masked; an unknown copy or request raises ``NotFoundError``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cloud_bridge.store import copies, migrations
from cloud_bridge.store import requests as request_rows
from cloud_bridge.store.engine import (
    MAX_OVERFLOW,
    POOL_SIZE,
    create_store_engine,
    database_errors,
    masked,
    read_transaction,
    write_transaction,
)
from cloud_bridge.store.records import (
    CopyDraft,
    CopyRecord,
    RequestDraft,
    RequestRecord,
    Reservation,
    check_sha256_hex,
)

logger = logging.getLogger(__name__)

ResultT = TypeVar("ResultT")


def utc_now() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class CopyStore:
    """Requests, certification numbers and copies in one SQL database.

    Args:
        url: ``sqlite:///FILE`` or ``postgresql+psycopg://USER@HOST/NAME``.
        pool_size: PostgreSQL connections kept open by this process.
        max_overflow: extra PostgreSQL connections allowed under load.
        clock: returns the current UTC time (a seam for tests).
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = POOL_SIZE,
        max_overflow: int = MAX_OVERFLOW,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.engine: Engine = create_store_engine(
            url, pool_size=pool_size, max_overflow=max_overflow
        )
        self._clock = clock

    def __repr__(self) -> str:
        return f"CopyStore({masked(self.engine.url)!r})"

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def migrate(self) -> int:
        """Create or upgrade the schema and return its version."""
        return migrations.migrate(self.engine)

    def schema_version(self) -> int:
        """Return the database's schema version (0 when empty)."""
        return migrations.schema_version(self.engine)

    def check_schema(self) -> int:
        """Return the schema version; StoreError unless it is the expected one."""
        return migrations.check_schema(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Yield a connection in a write transaction, committed at the end.

        For composing the functions of :mod:`cloud_bridge.store.copies` and
        :mod:`cloud_bridge.store.requests` in one transaction.
        """
        with (
            database_errors(self.engine, "write to the database"),
            write_transaction(self.engine) as connection,
        ):
            yield connection

    # Requests

    def add_request(self, draft: RequestDraft) -> RequestRecord:
        """Store a kiosk's request as pending; the same request again is a no-op.

        Raises:
            StoreError: another request is stored under the same identifier.
        """
        return self._write(
            "store the request",
            lambda conn: request_rows.add(conn, draft, self._now()),
            retry_conflict=True,
        )

    def get_request(self, request_id: str) -> RequestRecord:
        """Return one request; NotFoundError when unknown."""
        return self._read(
            "read the request", lambda conn: request_rows.get(conn, request_id)
        )

    def list_requests(
        self,
        *,
        state: str | None = None,
        office_code: str | None = None,
        limit: int = 100,
    ) -> list[RequestRecord]:
        """Return requests oldest first, optionally by state and office."""
        return self._read(
            "list requests",
            lambda conn: request_rows.listing(conn, state, office_code, limit),
        )

    def decide_request(
        self,
        request_id: str,
        *,
        approve: bool,
        decided_by: str,
        reason: str | None = None,
    ) -> RequestRecord:
        """Record an officer's approval or rejection of a pending request."""
        return self._write(
            "record the decision",
            lambda conn: request_rows.decide(
                conn,
                request_id,
                approve=approve,
                decided_by=decided_by,
                reason=reason,
                now=self._now(),
            ),
        )

    def approved_without_copy(self) -> list[RequestRecord]:
        """Return approved requests with no copy yet, to resume after a crash."""
        return self._read("list approved requests", request_rows.approved_without_copy)

    # Copies

    def reserve_copy(self, draft: CopyDraft) -> Reservation:
        """Give ``draft`` the next certification number, in state ``reserved``.

        For a request that already has a copy, that copy's reservation is
        returned (``new`` False) and no number is taken.

        Raises:
            StoreError: the request is not approved, or the copy id is taken.
        """
        return self._write(
            "reserve a certification number",
            lambda conn: copies.reserve(conn, draft, self._now()),
            retry_conflict=draft.request_id is not None,
        )

    def approve_and_reserve(
        self, request_id: str, decided_by: str, draft: CopyDraft
    ) -> Reservation:
        """Approve a pending request and reserve its copy's number, atomically.

        One transaction instead of :meth:`decide_request` then
        :meth:`reserve_copy`: one commit (and one fsync) less per copy, and
        no approved request without a reservation after a crash.

        Raises:
            StoreError: the request is not pending, or the copy id is taken.
        """

        def approve_then_reserve(conn: Connection) -> Reservation:
            now = self._now()
            request_rows.decide(
                conn,
                request_id,
                approve=True,
                decided_by=decided_by,
                reason=None,
                now=now,
            )
            return copies.reserve(conn, draft, now)

        return self._write(
            "approve the request and reserve a certification number",
            approve_then_reserve,
            retry_conflict=True,
        )

    def complete_copy(
        self, copy_id: str, pdf_sha256: str, pdf_size: int, pages_digest: str
    ) -> CopyRecord:
        """Mark a reserved copy issued once its signed PDF is archived."""
        check_sha256_hex("pdf_sha256", pdf_sha256)
        check_sha256_hex("pages_digest", pages_digest)
        if pdf_size < 1:
            raise ValueError(f"pdf_size must be positive, not {pdf_size}")
        return self._write(
            "complete the copy",
            lambda conn: copies.complete(
                conn,
                copy_id,
                pdf_sha256=pdf_sha256,
                pdf_size=pdf_size,
                pages_digest=pages_digest,
                now=self._now(),
            ),
        )

    def get_copy(self, copy_id: str) -> CopyRecord:
        """Return one copy; NotFoundError when unknown."""
        return self._read("read the copy", lambda conn: copies.get(conn, copy_id))

    def find_copy_by_pdf_sha256(self, pdf_sha256: str) -> CopyRecord | None:
        """Return the copy whose signed PDF has this SHA-256 (hex), or None."""
        digest = pdf_sha256.lower()
        return self._read(
            "look up the copy", lambda conn: copies.find_by_pdf(conn, digest)
        )

    def find_copy_by_request(self, request_id: str) -> CopyRecord | None:
        """Return the copy made for a request, or None."""
        return self._read(
            "look up the copy", lambda conn: copies.find_by_request(conn, request_id)
        )

    def reserved_copies(self, office_code: str | None = None) -> list[CopyRecord]:
        """Return copies whose number is reserved but not issued (to resume)."""
        return self._read(
            "list reserved copies", lambda conn: copies.reserved(conn, office_code)
        )

    def revoke_copy(self, copy_id: str, reason: str, revoked_by: str) -> CopyRecord:
        """Revoke a copy, recording who, when and why.

        Raises:
            NotFoundError: no such copy.
            StoreError: already revoked; the first record is kept.
        """
        if not reason.strip() or not revoked_by.strip():
            raise ValueError("a revocation needs a reason and who revokes it")
        return self._write(
            "revoke the copy",
            lambda conn: copies.revoke(
                conn, copy_id, reason=reason, revoked_by=revoked_by, now=self._now()
            ),
        )

    def replace_access_code(self, copy_id: str, salt: str, digest: str) -> CopyRecord:
        """Replace a reserved copy's access code salt and hash before issuing."""
        return self._write(
            "replace the access code",
            lambda conn: copies.replace_access_code(
                conn, copy_id, salt=salt, digest=digest
            ),
        )

    def cert_numbers(self, office_code: str, book: str, year: int) -> list[int]:
        """Return the numbers given in one office's book for a year, ascending."""
        return self._read(
            "list certification numbers",
            lambda conn: copies.cert_numbers(conn, office_code, book, year),
        )

    def pdf_digests(self) -> set[str]:
        """Return the SHA-256 of every issued PDF."""
        return self._read("list archived digests", copies.pdf_digests)

    def referenced_digests(self) -> set[str]:
        """Return every archive digest the database refers to.

        That is each copy's PDF and each page image listed in a request's
        ``metadata["pages"]``: pass it to ``Archive.orphans`` or ``sweep``.
        """
        return self._read(
            "list archived digests",
            lambda conn: copies.pdf_digests(conn) | request_rows.page_digests(conn),
        )

    # Plumbing

    def _now(self) -> datetime:
        return self._clock()

    def _read(self, action: str, work: Callable[[Connection], ResultT]) -> ResultT:
        with (
            database_errors(self.engine, action),
            read_transaction(self.engine) as connection,
        ):
            return work(connection)

    def _write(
        self,
        action: str,
        work: Callable[[Connection], ResultT],
        *,
        retry_conflict: bool = False,
    ) -> ResultT:
        with database_errors(self.engine, action):
            if retry_conflict:
                # A concurrent writer may have stored the same request's row
                # first; the retry then finds and returns it.
                try:
                    with write_transaction(self.engine) as connection:
                        return work(connection)
                except sa.exc.IntegrityError:
                    logger.debug("retrying to %s after a conflicting insert", action)
            with write_transaction(self.engine) as connection:
                return work(connection)
