"""Store kiosk requests and officers' decisions (functions over a Connection)."""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from cloud_bridge.errors import NotFoundError, StoreError
from cloud_bridge.store.records import RequestDraft, RequestRecord
from cloud_bridge.store.schema import copies, requests

logger = logging.getLogger(__name__)

# Key of a request's metadata listing the archive digests of its page images.
PAGES_KEY = "pages"

# Fields that must match when a kiosk submits the same request id again.
_COMPARED = (
    "kiosk_id",
    "office_code",
    "document_type",
    "citizen_name",
    "citizen_id_number",
    "page_count",
)


def add(connection: Connection, draft: RequestDraft, now: datetime) -> RequestRecord:
    """Insert ``draft`` as a pending request, or return the identical stored one.

    Raises:
        StoreError: a different request is stored under the same identifier.
    """
    existing = find(connection, draft.request_id)
    if existing is not None:
        _require_same(existing, draft)
        return existing
    connection.execute(
        requests.insert().values(
            request_id=draft.request_id,
            kiosk_id=draft.kiosk_id,
            office_code=draft.office_code,
            document_type=draft.document_type,
            citizen_name=draft.citizen_name,
            citizen_id_number=draft.citizen_id_number,
            page_count=draft.page_count,
            metadata=dict(draft.metadata),
            state="pending",
            created_at=now,
        )
    )
    logger.info("stored request %s from kiosk %s", draft.request_id, draft.kiosk_id)
    return get(connection, draft.request_id)


def get(connection: Connection, request_id: str) -> RequestRecord:
    """Return the request ``request_id``; NotFoundError when there is none."""
    record = find(connection, request_id)
    if record is None:
        raise NotFoundError(f"no request {request_id!r} is stored")
    return record


def find(
    connection: Connection, request_id: str, *, lock: bool = False
) -> RequestRecord | None:
    """Return the request ``request_id`` or None (row-locked when ``lock``)."""
    query = sa.select(requests).where(requests.c.request_id == request_id)
    if lock:
        query = query.with_for_update()
    row = connection.execute(query).one_or_none()
    return None if row is None else to_record(row._mapping)


def listing(
    connection: Connection, state: str | None, office_code: str | None, limit: int
) -> list[RequestRecord]:
    """Return requests, oldest first, filtered by state and office."""
    query = sa.select(requests).order_by(requests.c.created_at, requests.c.request_id)
    if state is not None:
        query = query.where(requests.c.state == state)
    if office_code is not None:
        query = query.where(requests.c.office_code == office_code)
    rows = connection.execute(query.limit(limit))
    return [to_record(row._mapping) for row in rows]


def decide(
    connection: Connection,
    request_id: str,
    *,
    approve: bool,
    decided_by: str,
    reason: str | None,
    now: datetime,
) -> RequestRecord:
    """Record an officer's approval or rejection of a pending request.

    Raises:
        NotFoundError: no such request.
        StoreError: the request was already decided.
    """
    current = find(connection, request_id, lock=True)
    if current is None:
        raise NotFoundError(f"no request {request_id!r} is stored")
    if current.state != "pending":
        raise StoreError(
            f"request {request_id} was already {current.state} by "
            f"{current.decided_by} at {current.decided_at}; "
            "a decision cannot be changed"
        )
    state = "approved" if approve else "rejected"
    connection.execute(
        requests.update()
        .where(requests.c.request_id == request_id)
        .values(
            state=state, decided_at=now, decided_by=decided_by, decision_reason=reason
        )
    )
    logger.info("request %s %s by %s", request_id, state, decided_by)
    return get(connection, request_id)


def approved_without_copy(connection: Connection) -> list[RequestRecord]:
    """Return approved requests that have no copy yet (approval then a crash)."""
    query = (
        sa.select(requests)
        .outerjoin(copies, copies.c.request_id == requests.c.request_id)
        .where(requests.c.state == "approved", copies.c.copy_id.is_(None))
        .order_by(requests.c.decided_at)
    )
    return [to_record(row._mapping) for row in connection.execute(query)]


def page_digests(connection: Connection) -> set[str]:
    """Return the archive digests listed under ``metadata["pages"]``."""
    found: set[str] = set()
    for metadata in connection.execute(sa.select(requests.c["metadata"])).scalars():
        pages = (metadata or {}).get(PAGES_KEY)
        if isinstance(pages, list):
            found.update(digest for digest in pages if isinstance(digest, str))
    return found


def to_record(row: RowMapping) -> RequestRecord:
    """Build a RequestRecord from a ``requests`` row."""
    values = dict(row)
    values["metadata"] = dict(values["metadata"] or {})
    return RequestRecord(**values)


def _require_same(existing: RequestRecord, draft: RequestDraft) -> None:
    differing = [
        name for name in _COMPARED if getattr(existing, name) != getattr(draft, name)
    ]
    if dict(existing.metadata) != dict(draft.metadata):
        differing.append("metadata")
    if differing:
        raise StoreError(
            f"request {draft.request_id} is already stored with different "
            f"{', '.join(differing)}; a kiosk must use a new request id for a "
            "new request"
        )
