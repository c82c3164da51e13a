"""Certification numbers: gap-free and unique under concurrency and crashes."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from datetime import date
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest
import sqlalchemy as sa

from cloud_bridge.errors import StoreError
from cloud_bridge.store import CopyDraft, CopyStore, RequestDraft, utc_now
from cloud_bridge.store import copies as copy_rows
from cloud_bridge.store import requests as request_rows
from cloud_bridge.store.schema import copies, counters

FORK = multiprocessing.get_context("fork")
OFFICE, BOOK, DAY = "PHUONG-MAU", "01/SCT/BS", date(2026, 12, 3)


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
    """A migrated store, closed afterwards."""
    copy_store = CopyStore(database_url)
    copy_store.migrate()
    yield copy_store
    copy_store.close()


def draft(
    copy_id: str,
    *,
    office: str = OFFICE,
    book: str = BOOK,
    day: date = DAY,
    request_id: str | None = None,
) -> CopyDraft:
    """A copy draft with plausible values."""
    return CopyDraft(
        copy_id=copy_id,
        office_code=office,
        book=book,
        issued_on=day,
        document_type="diploma",
        page_count=1,
        officer_name="Nguyễn Văn Mẫu",
        officer_title="Công chức Tư pháp - Hộ tịch",
        access_code_salt="c2FsdA",
        access_code_hash="aGFzaA",
        request_id=request_id,
    )


def request_draft(request_id: str) -> RequestDraft:
    """A kiosk request with plausible values."""
    return RequestDraft(
        request_id=request_id,
        kiosk_id="KIOSK-01",
        office_code=OFFICE,
        document_type="diploma",
        citizen_name="Trần Thị Mẫu",
        citizen_id_number="001234567890",
        page_count=1,
    )


def approved_requests(store: CopyStore, request_ids: list[str]) -> None:
    """Store and approve requests, all in one transaction."""
    now = utc_now()
    with store.transaction() as connection:
        for request_id in request_ids:
            request_rows.add(connection, request_draft(request_id), now)
            request_rows.decide(
                connection,
                request_id,
                approve=True,
                decided_by="officer",
                reason=None,
                now=now,
            )


def _reserve_requests(
    url: str, worker: int, request_ids: list[str], start: Event
) -> None:
    store = CopyStore(url)
    start.wait(30)
    for request_id in request_ids:
        store.reserve_copy(draft(f"w{worker}-{request_id}", request_id=request_id))
    store.close()


def _reserve_and_hang(url: str, reserved: Event) -> None:
    store = CopyStore(url)
    with store.transaction() as connection:
        copy_rows.reserve(connection, draft("doomed"), utc_now())
        reserved.set()
        signal.pause()


def run_workers(
    target: Callable[..., None], arguments: list[tuple[object, ...]]
) -> None:
    """Run one forked process per argument tuple, started together."""
    start = FORK.Event()
    processes = [FORK.Process(target=target, args=(*args, start)) for args in arguments]
    for process in processes:
        process.start()
    start.set()
    for process in processes:
        process.join(120)
    assert [process.exitcode for process in processes] == [0] * len(processes)


@pytest.mark.slow
def test_concurrent_reservations_are_gap_free(store: CopyStore) -> None:
    # Each reservation reads its request before it writes, as the bridge
    # does: with SQLite's deferred BEGIN this read-then-write fails with
    # "database is locked" under concurrency.
    batches = [[f"REQ-{worker}-{index}" for index in range(25)] for worker in range(4)]
    approved_requests(store, [rid for batch in batches for rid in batch])
    url = store.engine.url.render_as_string(hide_password=False)

    run_workers(_reserve_requests, [(url, w, batch) for w, batch in enumerate(batches)])

    assert store.cert_numbers(OFFICE, BOOK, 2026) == list(range(1, 101))
    with store.engine.connect() as connection:
        last = connection.execute(sa.select(counters.c.last_number)).scalar_one()
    assert last == 100


def test_concurrent_reservations_of_one_request_get_one_number(
    store: CopyStore,
) -> None:
    request_ids = [f"REQ-{index}" for index in range(10)]
    approved_requests(store, request_ids)
    url = store.engine.url.render_as_string(hide_password=False)

    run_workers(_reserve_requests, [(url, worker, request_ids) for worker in range(3)])

    assert store.cert_numbers(OFFICE, BOOK, 2026) == list(range(1, 11))
    for request_id in request_ids:
        record = store.find_copy_by_request(request_id)
        assert record is not None and record.state == "reserved"


def test_books_years_and_offices_count_independently(store: CopyStore) -> None:
    keys = [
        (OFFICE, BOOK, DAY),
        (OFFICE, "02/SCT/BS", DAY),
        (OFFICE, BOOK, date(2027, 1, 2)),
        ("XA-KHAC", BOOK, DAY),
    ]
    for round_ in range(3):
        for index, (office, book, day) in enumerate(keys):
            copy_id = f"c{round_}-{index}"
            reservation = store.reserve_copy(
                draft(copy_id, office=office, book=book, day=day)
            )
            assert reservation.cert_number == round_ + 1
            assert reservation.year == day.year

    assert store.cert_numbers(OFFICE, BOOK, 2027) == [1, 2, 3]
    assert store.cert_numbers("XA-KHAC", BOOK, 2026) == [1, 2, 3]


def test_same_request_reserved_twice_keeps_its_number(store: CopyStore) -> None:
    approved_requests(store, ["REQ-1"])
    first = store.reserve_copy(draft("copy-a", request_id="REQ-1"))
    second = store.reserve_copy(draft("copy-b", request_id="REQ-1"))
    other = store.reserve_copy(draft("copy-c"))

    assert first.new and not second.new
    assert (second.copy_id, second.cert_number) == ("copy-a", 1)
    assert other.cert_number == 2


def test_unapproved_request_gets_no_number(store: CopyStore) -> None:
    store.add_request(request_draft("REQ-P"))
    with pytest.raises(StoreError, match="pending"):
        store.reserve_copy(draft("copy-p", request_id="REQ-P"))
    assert store.reserve_copy(draft("copy-q")).cert_number == 1


def test_killed_reservation_leaves_no_gap_and_no_row(store: CopyStore) -> None:
    assert store.reserve_copy(draft("before")).cert_number == 1
    url = store.engine.url.render_as_string(hide_password=False)
    reserved = FORK.Event()
    child = FORK.Process(target=_reserve_and_hang, args=(url, reserved))
    child.start()
    try:
        assert reserved.wait(30), "the child never reserved"
    finally:
        os.kill(child.pid or 0, signal.SIGKILL)
        child.join(30)
    assert child.exitcode == -signal.SIGKILL

    assert store.reserve_copy(draft("after")).cert_number == 2
    assert store.cert_numbers(OFFICE, BOOK, 2026) == [1, 2]
    with store.engine.connect() as connection:
        doomed = connection.execute(
            sa.select(copies.c.copy_id).where(copies.c.copy_id == "doomed")
        ).all()
    assert doomed == []
