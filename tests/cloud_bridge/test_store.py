"""The copy store on SQLite and PostgreSQL: requests, copies, revocation."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from cloud_bridge.errors import NotFoundError, StoreError
from cloud_bridge.store import (
    CopyDraft,
    CopyStore,
    RequestDraft,
    create_store_engine,
    utc_now,
)
from cloud_bridge.store import copies as copy_rows
from cloud_bridge.store.engine import database_errors, write_transaction
from cloud_bridge.store.schema import requests

OFFICE, BOOK = "PHUONG-MAU", "01/SCT/BS"
ID_NUMBER = "001234567890"
PDF = "ab" * 32
PAGES = "cd" * 32


class Clock:
    """A clock that moves one second per reading."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database URL on each engine."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bridge.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(database_url: str) -> Iterator[CopyStore]:
    """A migrated store with a predictable clock, closed afterwards."""
    copy_store = CopyStore(database_url, clock=Clock())
    copy_store.migrate()
    yield copy_store
    copy_store.close()


def request_draft(request_id: str = "REQ-1", **changes: object) -> RequestDraft:
    """A kiosk request with plausible values."""
    values: dict[str, object] = {
        "request_id": request_id,
        "kiosk_id": "KIOSK-01",
        "office_code": OFFICE,
        "document_type": "birth_certificate",
        "citizen_name": "Lê Văn Mẫu",
        "citizen_id_number": ID_NUMBER,
        "page_count": 2,
        "metadata": {"language": "vi", "pages": [PAGES, "ef" * 32]},
    }
    values.update(changes)
    return RequestDraft(**values)  # type: ignore[arg-type]


def copy_draft(copy_id: str = "COPY-1", request_id: str | None = "REQ-1") -> CopyDraft:
    """A copy draft for REQ-1."""
    return CopyDraft(
        copy_id=copy_id,
        office_code=OFFICE,
        book=BOOK,
        issued_on=date(2026, 12, 3),
        document_type="birth_certificate",
        page_count=2,
        officer_name="Nguyễn Văn Mẫu",
        officer_title="Công chức Tư pháp - Hộ tịch",
        access_code_salt="salt-1",
        access_code_hash="hash-1",
        request_id=request_id,
    )


def approved(store: CopyStore, request_id: str = "REQ-1") -> None:
    """Store and approve a request."""
    store.add_request(request_draft(request_id))
    store.decide_request(request_id, approve=True, decided_by="officer-1")


def test_request_round_trip_keeps_full_id_and_hides_it_in_repr(
    store: CopyStore,
) -> None:
    stored = store.add_request(request_draft())
    again = store.get_request("REQ-1")

    assert again == stored
    assert again.citizen_id_number == ID_NUMBER
    assert again.metadata == {"language": "vi", "pages": [PAGES, "ef" * 32]}
    assert again.state == "pending" and again.created_at.tzinfo is UTC
    assert ID_NUMBER not in repr(again)
    assert again.masked_id_number == "001******890"


def test_same_request_twice_is_a_no_op_and_a_different_one_is_refused(
    store: CopyStore,
) -> None:
    first = store.add_request(request_draft())
    assert store.add_request(request_draft()) == first

    with pytest.raises(StoreError, match="citizen_name"):
        store.add_request(request_draft(citizen_name="Người Khác"))


def test_decision_is_recorded_once(store: CopyStore) -> None:
    store.add_request(request_draft())
    decided = store.decide_request(
        "REQ-1", approve=False, decided_by="officer-1", reason="blurred page"
    )

    assert (decided.state, decided.decided_by) == ("rejected", "officer-1")
    assert decided.decision_reason == "blurred page"
    assert decided.decided_at is not None and decided.decided_at > decided.created_at
    with pytest.raises(StoreError, match="already rejected"):
        store.decide_request("REQ-1", approve=True, decided_by="officer-2")
    assert store.list_requests(state="rejected") == [decided]
    assert store.list_requests(state="pending") == []


def test_unknown_request_and_copy_raise_not_found(store: CopyStore) -> None:
    with pytest.raises(NotFoundError):
        store.get_request("nope")
    with pytest.raises(NotFoundError):
        store.get_copy("nope")
    with pytest.raises(NotFoundError):
        store.revoke_copy("nope", "reason", "officer")
    assert store.find_copy_by_pdf_sha256(PDF) is None


def test_reserve_then_complete_issues_the_copy(store: CopyStore) -> None:
    approved(store)
    reservation = store.reserve_copy(copy_draft())
    assert [r.request_id for r in store.approved_without_copy()] == []
    assert [c.copy_id for c in store.reserved_copies()] == ["COPY-1"]

    issued = store.complete_copy("COPY-1", PDF, 12_345, PAGES)

    assert (reservation.cert_number, reservation.year) == (1, 2026)
    assert (issued.state, issued.pdf_sha256, issued.pdf_size) == ("issued", PDF, 12_345)
    assert issued.pages_digest == PAGES
    assert issued.issued_at is not None and issued.issued_at.tzinfo is UTC
    assert issued.issued_on == date(2026, 12, 3)
    assert store.reserved_copies() == []
    assert store.get_copy("COPY-1") == issued
    assert store.find_copy_by_pdf_sha256(PDF.upper()) == issued
    assert store.pdf_digests() == {PDF}
    assert store.referenced_digests() == {PDF, PAGES, "ef" * 32}
    assert store.complete_copy("COPY-1", PDF, 12_345, PAGES) == issued


def test_approval_and_reservation_commit_together(store: CopyStore) -> None:
    store.add_request(request_draft())
    store.reserve_copy(copy_draft("COPY-1", request_id=None))

    with pytest.raises(StoreError):  # the copy id is taken: nothing is kept
        store.approve_and_reserve("REQ-1", "officer", copy_draft("COPY-1"))
    assert store.get_request("REQ-1").state == "pending"

    reservation = store.approve_and_reserve("REQ-1", "officer", copy_draft("COPY-2"))

    assert store.get_request("REQ-1").state == "approved"
    assert (reservation.copy_id, reservation.cert_number) == ("COPY-2", 2)


def test_completing_with_another_pdf_is_refused(store: CopyStore) -> None:
    approved(store)
    store.reserve_copy(copy_draft())
    store.complete_copy("COPY-1", PDF, 100, PAGES)

    with pytest.raises(StoreError, match="already issued"):
        store.complete_copy("COPY-1", "ef" * 32, 100, PAGES)


def test_two_copies_with_one_pdf_hit_the_unique_constraint(store: CopyStore) -> None:
    store.reserve_copy(copy_draft("COPY-1", request_id=None))
    store.reserve_copy(copy_draft("COPY-2", request_id=None))
    store.complete_copy("COPY-1", PDF, 100, PAGES)

    with pytest.raises(StoreError, match="conflicts with a stored record"):
        store.complete_copy("COPY-2", PDF, 100, PAGES)
    assert store.get_copy("COPY-2").state == "reserved"


def test_approved_request_without_copy_is_listed_for_resuming(
    store: CopyStore,
) -> None:
    approved(store)

    assert [r.request_id for r in store.approved_without_copy()] == ["REQ-1"]


def test_revocation_is_recorded_and_reported(store: CopyStore) -> None:
    approved(store)
    store.reserve_copy(copy_draft())
    store.complete_copy("COPY-1", PDF, 100, PAGES)

    revoked = store.revoke_copy("COPY-1", "forged original", "officer-2")
    reported = store.get_copy("COPY-1")

    assert reported == revoked and reported.revoked
    assert reported.revoked_by == "officer-2"
    assert reported.revocation_reason == "forged original"
    assert reported.revoked_at is not None and reported.revoked_at.tzinfo is UTC
    assert reported.issued_at is not None and reported.revoked_at > reported.issued_at
    with pytest.raises(StoreError, match="already revoked"):
        store.revoke_copy("COPY-1", "again", "officer-3")
    assert store.get_copy("COPY-1").revoked_by == "officer-2"


def test_revoked_reservation_cannot_be_issued(store: CopyStore) -> None:
    store.reserve_copy(copy_draft(request_id=None))
    store.revoke_copy("COPY-1", "pages unreadable", "officer-1")

    assert store.reserved_copies() == []
    with pytest.raises(StoreError, match="revoked"):
        store.complete_copy("COPY-1", PDF, 100, PAGES)


def test_access_code_can_be_replaced_only_while_reserved(store: CopyStore) -> None:
    store.reserve_copy(copy_draft(request_id=None))
    replaced = store.replace_access_code("COPY-1", "salt-2", "hash-2")
    assert (replaced.access_code_salt, replaced.access_code_hash) == (
        "salt-2",
        "hash-2",
    )
    assert "hash-2" not in repr(replaced)

    store.complete_copy("COPY-1", PDF, 100, PAGES)
    with pytest.raises(StoreError, match="only while it is reserved"):
        store.replace_access_code("COPY-1", "salt-3", "hash-3")


def test_transaction_rolls_back_on_error(store: CopyStore) -> None:
    with pytest.raises(RuntimeError), store.transaction() as connection:
        copy_rows.reserve(connection, copy_draft(request_id=None), utc_now())
        raise RuntimeError("signing failed before commit")

    assert store.reserve_copy(copy_draft("COPY-2", request_id=None)).cert_number == 1


def test_foreign_key_on_request_is_enforced(database_url: str) -> None:
    engine = create_store_engine(database_url)
    copy_store = CopyStore(database_url)
    copy_store.migrate()
    with pytest.raises(sa.exc.IntegrityError), write_transaction(engine) as conn:
        conn.execute(
            sa.text(
                "INSERT INTO copies (copy_id, request_id, office_code, book, year,"
                " cert_number, state, access_code_salt, access_code_hash,"
                " document_type, page_count, officer_name, officer_title,"
                " issued_on, created_at) VALUES ('X', 'missing', 'O', 'B', 2026,"
                " 1, 'reserved', 's', 'h', 'd', 1, 'n', 't', '2026-12-03',"
                " '2026-12-03 00:00:00')"
            )
        )
    engine.dispose()
    copy_store.close()


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'b.db'}")
    with engine.connect() as connection:
        pragma = connection.exec_driver_sql
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
        assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert pragma("PRAGMA busy_timeout").scalar() == 30_000
    engine.dispose()


def test_sqlite_write_transactions_begin_immediate(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'b.db'}")
    statements: list[str] = []
    sa.event.listen(
        engine,
        "before_cursor_execute",
        lambda *args: statements.append(args[2]),
    )
    with write_transaction(engine) as connection:
        connection.exec_driver_sql("SELECT 1")
    with engine.connect() as connection, connection.begin():
        connection.exec_driver_sql("SELECT 2")

    assert statements == ["BEGIN IMMEDIATE", "SELECT 1", "BEGIN", "SELECT 2"]
    engine.dispose()


def test_unreachable_database_names_url_without_password() -> None:
    store = CopyStore("postgresql://kiosk:s3cret-pw@127.0.0.1:1/bridge")

    with pytest.raises(StoreError) as caught:
        store.get_copy("COPY-1")

    message = str(caught.value)
    assert "127.0.0.1:1/bridge" in message and "***" in message
    assert "s3cret-pw" not in message and "s3cret-pw" not in repr(store)
    store.close()


def test_unsupported_url_is_refused() -> None:
    with pytest.raises(StoreError, match="supports sqlite and postgresql"):
        CopyStore("mysql://u:p@localhost/db")


def test_id_number_never_reaches_the_log(
    store: CopyStore, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        store.add_request(request_draft())
        store.decide_request("REQ-1", approve=True, decided_by="officer-1")
        store.reserve_copy(copy_draft())

    assert caplog.records, "the store logged nothing"
    assert ID_NUMBER not in caplog.text


def test_taken_copy_id_is_refused_without_using_a_number(store: CopyStore) -> None:
    store.reserve_copy(copy_draft("COPY-1", request_id=None))

    with pytest.raises(StoreError, match="conflicts with a stored record"):
        store.reserve_copy(copy_draft("COPY-1", request_id=None))
    assert store.reserve_copy(copy_draft("COPY-2", request_id=None)).cert_number == 2


def test_store_errors_hide_parameters_and_the_id_number(store: CopyStore) -> None:
    bad_row = {
        "request_id": "REQ-X",
        "kiosk_id": "K",
        "office_code": OFFICE,
        "document_type": "diploma",
        "citizen_name": "Lê Văn Mẫu",
        "citizen_id_number": ID_NUMBER,
        "page_count": 1,
        "metadata": {},
        "state": "not-a-state",
        "created_at": utc_now(),
    }
    with (
        pytest.raises(StoreError) as caught,
        database_errors(store.engine, "store the request"),
        write_transaction(store.engine) as connection,
    ):
        connection.execute(requests.insert().values(**bad_row))

    cause = str(caught.value.__cause__)
    assert "conflicts with a stored record" in str(caught.value)
    assert ID_NUMBER not in str(caught.value)
    assert "parameters hidden" in cause and "[parameters:" not in cause
