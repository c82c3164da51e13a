"""Frozen records the store returns: requests, reservations and copies.

Timestamps are timezone-aware UTC. The citizen's ID number is kept out of
``repr`` so a record that reaches a log line does not leak it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from kiosk.logs import mask_id_number


@dataclass(frozen=True)
class RequestRecord:
    """A request a kiosk submitted, and the officer's decision on it."""

    request_id: str
    kiosk_id: str
    office_code: str
    document_type: str
    citizen_name: str
    citizen_id_number: str = field(repr=False)
    page_count: int
    metadata: dict[str, Any]
    state: str
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None

    @property
    def masked_id_number(self) -> str:
        """Return the citizen ID number with its middle digits hidden."""
        return mask_id_number(self.citizen_id_number)


@dataclass(frozen=True)
class Reservation:
    """A certification number held for one copy until it is issued.

    ``new`` is False when the request already had a copy and that copy's
    reservation is returned instead of a second number; ``state`` then says
    whether it is still ``reserved`` or already ``issued``.
    """

    copy_id: str
    request_id: str | None
    office_code: str
    book: str
    year: int
    cert_number: int
    issued_on: date
    state: str
    new: bool


@dataclass(frozen=True)
class CopyRecord:
    """A certified copy: its number, issuing officer, PDF hash and revocation."""

    copy_id: str
    request_id: str | None
    office_code: str
    book: str
    year: int
    cert_number: int
    state: str
    access_code_salt: str = field(repr=False)
    access_code_hash: str = field(repr=False)
    document_type: str
    page_count: int
    pages_digest: str | None
    pdf_sha256: str | None
    pdf_size: int | None
    officer_name: str
    officer_title: str
    issued_on: date
    created_at: datetime
    issued_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    revocation_reason: str | None

    @property
    def revoked(self) -> bool:
        """Return True when the copy has been revoked."""
        return self.revoked_at is not None

    @property
    def issued(self) -> bool:
        """Return True when the copy was signed, archived and completed."""
        return self.state == "issued"


@dataclass(frozen=True)
class RequestDraft:
    """What a kiosk submits, before it is stored."""

    request_id: str
    kiosk_id: str
    office_code: str
    document_type: str
    citizen_name: str
    citizen_id_number: str = field(repr=False)
    page_count: int
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse values the database would refuse less clearly."""
        _check_identifier("request_id", self.request_id)
        _check_identifier("kiosk_id", self.kiosk_id)
        if self.page_count < 1:
            raise ValueError(f"page_count must be at least 1, not {self.page_count}")


@dataclass(frozen=True)
class CopyDraft:
    """Everything needed to reserve a certification number for a copy.

    ``access_code_salt`` and ``access_code_hash`` come from
    ``protocol.identifier.hash_access_code``; the store keeps them as given.
    ``issued_on`` is the certification date; its year picks the counter.
    """

    copy_id: str
    office_code: str
    book: str
    issued_on: date
    document_type: str
    page_count: int
    officer_name: str
    officer_title: str
    access_code_salt: str = field(repr=False)
    access_code_hash: str = field(repr=False)
    request_id: str | None = None
    pages_digest: str | None = None

    def __post_init__(self) -> None:
        """Refuse values the database would refuse less clearly."""
        _check_identifier("copy_id", self.copy_id)
        if self.request_id is not None:
            _check_identifier("request_id", self.request_id)
        if self.page_count < 1:
            raise ValueError(f"page_count must be at least 1, not {self.page_count}")
        if self.pages_digest is not None:
            check_sha256_hex("pages_digest", self.pages_digest)
        if not self.access_code_salt or not self.access_code_hash:
            raise ValueError("the access code salt and hash must not be empty")


def check_sha256_hex(name: str, value: str) -> None:
    """Raise ValueError unless ``value`` is 64 lower-case hexadecimal digits."""
    if len(value) != 64 or value.strip("0123456789abcdef"):
        raise ValueError(f"{name} must be a lower-case hex SHA-256, not {value!r}")


def _check_identifier(name: str, value: str) -> None:
    if not value or len(value) > 64 or not value.isprintable():
        raise ValueError(f"{name} must be 1 to 64 printable characters: {value!r}")
