"""Number, complete and revoke certified copies (functions over a Connection).

A certification number is taken from ``counters`` in the same transaction
that inserts the copy in state ``reserved``: the counter's row stays locked
(PostgreSQL) or the database stays write-locked (SQLite ``BEGIN IMMEDIATE``)
until that transaction ends, so concurrent approvals get consecutive numbers,
and a transaction that never commits (a crash, a kill) takes its number back
with it. A reserved copy keeps its number while signing is retried;
:func:`complete` moves it to ``issued`` once its PDF is archived.
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping

from cloud_bridge.errors import NotFoundError, StoreError
from cloud_bridge.store import requests as request_rows
from cloud_bridge.store.records import CopyDraft, CopyRecord, Reservation
from cloud_bridge.store.schema import copies, counters

logger = logging.getLogger(__name__)


def reserve(connection: Connection, draft: CopyDraft, now: datetime) -> Reservation:
    """Reserve the next number for ``draft``, or return the request's copy.

    Raises:
        StoreError: the request is unknown or not approved.
    """
    if draft.request_id is not None:
        # Lock the request first: a concurrent reservation for it then waits
        # here and finds the copy the first one made.
        _require_approved(connection, draft.request_id)
        existing = find_by_request(connection, draft.request_id)
        if existing is not None:
            return to_reservation(existing, new=False)
    year = draft.issued_on.year
    number = allocate_number(connection, draft.office_code, draft.book, year)
    connection.execute(
        copies.insert().values(
            copy_id=draft.copy_id,
            request_id=draft.request_id,
            office_code=draft.office_code,
            book=draft.book,
            year=year,
            cert_number=number,
            state="reserved",
            access_code_salt=draft.access_code_salt,
            access_code_hash=draft.access_code_hash,
            document_type=draft.document_type,
            page_count=draft.page_count,
            pages_digest=draft.pages_digest,
            officer_name=draft.officer_name,
            officer_title=draft.officer_title,
            issued_on=draft.issued_on,
            created_at=now,
        )
    )
    logger.info(
        "reserved number %s/%s in book %s of %s for copy %s",
        number,
        year,
        draft.book,
        draft.office_code,
        draft.copy_id,
    )
    return to_reservation(get(connection, draft.copy_id), new=True)


def allocate_number(
    connection: Connection, office_code: str, book: str, year: int
) -> int:
    """Take the next number of an office's book for ``year`` (first is 1).

    Call it inside a write transaction; the number is given back if that
    transaction rolls back.
    """
    key = {"office_code": office_code, "book": book, "year": year}
    insert = (
        postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    )
    connection.execute(
        insert(counters).values(**key, last_number=0).on_conflict_do_nothing()
    )
    number = connection.execute(
        counters.update()
        .where(
            counters.c.office_code == office_code,
            counters.c.book == book,
            counters.c.year == year,
        )
        .values(last_number=counters.c.last_number + 1)
        .returning(counters.c.last_number)
    ).scalar_one()
    return int(number)


def complete(
    connection: Connection,
    copy_id: str,
    *,
    pdf_sha256: str,
    pdf_size: int,
    pages_digest: str,
    now: datetime,
) -> CopyRecord:
    """Mark a reserved copy issued with its archived PDF's hash and size.

    Completing again with the same PDF returns the issued copy unchanged.

    Raises:
        NotFoundError: no such copy.
        StoreError: the copy is revoked, was issued with another PDF, or its
            pages differ from those it was reserved for.
    """
    current = get(connection, copy_id, lock=True)
    if current.revoked:
        raise StoreError(
            f"copy {copy_id} was revoked at {current.revoked_at}; it cannot be "
            "issued; make a new copy"
        )
    if current.issued:
        if current.pdf_sha256 == pdf_sha256:
            return current
        raise StoreError(
            f"copy {copy_id} was already issued with PDF {current.pdf_sha256}; "
            "a number is issued once"
        )
    if current.pages_digest not in (None, pages_digest):
        raise StoreError(
            f"copy {copy_id} was reserved for pages {current.pages_digest} but "
            f"is completed with pages {pages_digest}; render it from its own pages"
        )
    connection.execute(
        copies.update()
        .where(copies.c.copy_id == copy_id)
        .values(
            state="issued",
            pdf_sha256=pdf_sha256,
            pdf_size=pdf_size,
            pages_digest=pages_digest,
            issued_at=now,
        )
    )
    logger.info("issued copy %s with number %s", copy_id, current.cert_number)
    return get(connection, copy_id)


def revoke(
    connection: Connection, copy_id: str, *, reason: str, revoked_by: str, now: datetime
) -> CopyRecord:
    """Record who revoked a copy, when and why.

    Raises:
        NotFoundError: no such copy.
        StoreError: the copy is already revoked (the first record is kept).
    """
    current = get(connection, copy_id, lock=True)
    if current.revoked:
        raise StoreError(
            f"copy {copy_id} was already revoked at {current.revoked_at} by "
            f"{current.revoked_by}; the first revocation is kept"
        )
    connection.execute(
        copies.update()
        .where(copies.c.copy_id == copy_id)
        .values(revoked_at=now, revoked_by=revoked_by, revocation_reason=reason)
    )
    logger.info("copy %s revoked by %s", copy_id, revoked_by)
    return get(connection, copy_id)


def replace_access_code(
    connection: Connection, copy_id: str, *, salt: str, digest: str
) -> CopyRecord:
    """Store a new access code hash for a copy that is still reserved.

    Raises:
        NotFoundError: no such copy.
        StoreError: the copy is already issued (its code was handed out).
    """
    current = get(connection, copy_id, lock=True)
    if current.state != "reserved" or current.revoked:
        raise StoreError(
            f"copy {copy_id} is {current.state}; its access code can be "
            "replaced only while it is reserved"
        )
    connection.execute(
        copies.update()
        .where(copies.c.copy_id == copy_id)
        .values(access_code_salt=salt, access_code_hash=digest)
    )
    return get(connection, copy_id)


def get(connection: Connection, copy_id: str, *, lock: bool = False) -> CopyRecord:
    """Return the copy ``copy_id`` (row-locked when ``lock``).

    Raises:
        NotFoundError: no such copy.
    """
    query = sa.select(copies).where(copies.c.copy_id == copy_id)
    if lock:
        query = query.with_for_update()
    row = connection.execute(query).one_or_none()
    if row is None:
        raise NotFoundError(f"no certified copy {copy_id!r} is stored")
    return to_record(row._mapping)


def find_by_request(connection: Connection, request_id: str) -> CopyRecord | None:
    """Return the copy made for ``request_id``, or None."""
    return _find(connection, copies.c.request_id == request_id)


def find_by_pdf(connection: Connection, pdf_sha256: str) -> CopyRecord | None:
    """Return the copy whose signed PDF has this SHA-256, or None."""
    return _find(connection, copies.c.pdf_sha256 == pdf_sha256)


def reserved(connection: Connection, office_code: str | None) -> list[CopyRecord]:
    """Return copies still reserved and not revoked, oldest first."""
    query = (
        sa.select(copies)
        .where(copies.c.state == "reserved", copies.c.revoked_at.is_(None))
        .order_by(copies.c.created_at, copies.c.copy_id)
    )
    if office_code is not None:
        query = query.where(copies.c.office_code == office_code)
    return [to_record(row._mapping) for row in connection.execute(query)]


def cert_numbers(
    connection: Connection, office_code: str, book: str, year: int
) -> list[int]:
    """Return the numbers given in an office's book for a year, ascending."""
    query = (
        sa.select(copies.c.cert_number)
        .where(
            copies.c.office_code == office_code,
            copies.c.book == book,
            copies.c.year == year,
        )
        .order_by(copies.c.cert_number)
    )
    return [int(number) for number in connection.execute(query).scalars()]


def pdf_digests(connection: Connection) -> set[str]:
    """Return the SHA-256 of every issued copy's PDF (what the archive keeps)."""
    query = sa.select(copies.c.pdf_sha256).where(copies.c.pdf_sha256.is_not(None))
    return {str(digest) for digest in connection.execute(query).scalars()}


def to_record(row: RowMapping) -> CopyRecord:
    """Build a CopyRecord from a ``copies`` row."""
    return CopyRecord(**dict(row))


def to_reservation(record: CopyRecord, *, new: bool) -> Reservation:
    """Describe a copy's number as a Reservation."""
    return Reservation(
        copy_id=record.copy_id,
        request_id=record.request_id,
        office_code=record.office_code,
        book=record.book,
        year=record.year,
        cert_number=record.cert_number,
        issued_on=record.issued_on,
        state=record.state,
        new=new,
    )


def _find(
    connection: Connection, condition: sa.ColumnElement[bool]
) -> CopyRecord | None:
    row = connection.execute(sa.select(copies).where(condition)).one_or_none()
    return None if row is None else to_record(row._mapping)


def _require_approved(connection: Connection, request_id: str) -> None:
    request = request_rows.find(connection, request_id, lock=True)
    if request is None:
        raise StoreError(
            f"no request {request_id!r} is stored; store the kiosk's request "
            "before reserving a number for it"
        )
    if request.state != "approved":
        raise StoreError(
            f"request {request_id} is {request.state}; only an approved request "
            "gets a certification number"
        )
