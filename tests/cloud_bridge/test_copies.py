"""The whole copy chain on real components: SoftHSM2, the local TSA, SQLite."""

from __future__ import annotations

import io
import multiprocessing
from datetime import date
from pathlib import Path

import pikepdf
import pikepdf.pdfa
import pytest
from pydantic import SecretStr
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from cloud_bridge.config import BridgeConfig
from cloud_bridge.context import Bridge
from cloud_bridge.copies import CopyRequest, IssuedCopy, Officer
from cloud_bridge.errors import (
    ArchiveError,
    HsmError,
    InputError,
    PkiError,
    TimestampError,
)
from cloud_bridge.http.registry import StoreRegistry
from cloud_bridge.render import extract_page_images
from cloud_bridge.trust_services import RunningTrustServices
from cloud_bridge.verify import verify_pdf
from protocol.seal import pages_digest
from tests.cloud_bridge.samples import jpeg_bytes, scan_page
from tests.conftest import free_port

OFFICER = Officer("Nguyễn Thị Hương", "Công chức Tư pháp - Hộ tịch")


def request(config: BridgeConfig, pages: int = 1, **changes: object) -> CopyRequest:
    """Return a request for ``pages`` pages at the default office."""
    fields: dict[str, object] = {
        "document_type": "birth_certificate",
        "citizen_name": "Trần Thị Bích",
        "citizen_id_number": "079190000001",
        "page_count": pages,
        "office_code": config.office_code,
    }
    fields.update(changes)
    return CopyRequest(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def page() -> bytes:
    """A scanned page as the document camera gives it."""
    return jpeg_bytes(scan_page(seed=3))


@pytest.fixture
def issued(bridge: Bridge, page: bytes) -> IssuedCopy:
    """A one-page copy made through the whole chain."""
    return bridge.copies.make_copy([page], request(bridge.config), OFFICER)


def test_copy_is_valid_for_pyhanko_with_the_dev_root(
    bridge: Bridge, issued: IssuedCopy
) -> None:
    reader = PdfFileReader(io.BytesIO(issued.pdf))
    signature = reader.embedded_signatures[0]
    context = ValidationContext(
        trust_roots=bridge.trust_roots, allow_fetching=True, revocation_mode="require"
    )
    status = validate_pdf_signature(signature, context)

    assert status.intact and status.valid and status.trusted
    assert status.timestamp_validity is not None
    assert status.timestamp_validity.trusted


def test_copy_reaches_b_lta_and_verifies_offline(
    bridge: Bridge, issued: IssuedCopy
) -> None:
    report = verify_pdf(issued.pdf, bridge.trust_roots, StoreRegistry(bridge.store))

    assert report.valid, report.problems
    assert report.level == "B-LTA"
    assert report.long_term_valid
    assert report.copy_id == issued.copy_id
    assert report.status == "valid"
    assert report.archive_match is True


def test_copy_is_pdfa_2b_and_carries_the_scans(
    bridge: Bridge, issued: IssuedCopy, page: bytes
) -> None:
    with pikepdf.open(io.BytesIO(issued.pdf)) as pdf:
        report = pikepdf.pdfa.check(pdf, "2b")
        meta = pdf.open_metadata()
        part, conformance = meta.get("pdfaid:part"), meta.get("pdfaid:conformance")
        version = pdf.pdf_version

    violations = [f for f in report.findings if f.kind != "unsupported"]
    assert violations == []
    assert (part, conformance) == ("2", "B")
    assert version <= "1.7"
    assert extract_page_images(issued.pdf) == [page]
    assert issued.record.pages_digest == pages_digest([page]).hex()


def test_one_changed_byte_makes_the_copy_invalid(
    bridge: Bridge, issued: IssuedCopy
) -> None:
    data = bytearray(issued.pdf)
    position = data.index(b"TTPVHCC") if b"TTPVHCC" in data else len(data) // 3
    data[position + 1] ^= 0x01

    report = verify_pdf(bytes(data), bridge.trust_roots, StoreRegistry(bridge.store))

    assert not report.valid
    assert not report.intact or report.archive_match is False


def test_a_byte_in_the_scan_changed_is_caught(
    bridge: Bridge, issued: IssuedCopy, page: bytes
) -> None:
    data = bytearray(issued.pdf)
    position = data.index(page[1000:1032]) + 8
    data[position] ^= 0xFF

    report = verify_pdf(bytes(data), bridge.trust_roots)

    assert not report.intact
    assert not report.valid


def test_revoked_copy_is_reported_revoked(bridge: Bridge, issued: IssuedCopy) -> None:
    bridge.copies.revoke(issued.copy_id, "bản chính giả mạo", "supervisor")

    report = verify_pdf(issued.pdf, bridge.trust_roots, StoreRegistry(bridge.store))

    assert report.status == "revoked"
    assert report.revocation_reason == "bản chính giả mạo"
    assert not report.valid
    assert report.intact and report.trusted


def test_five_page_copy(bridge: Bridge) -> None:
    pages = [jpeg_bytes(scan_page(seed=seed)) for seed in range(5)]

    issued = bridge.copies.make_copy(pages, request(bridge.config, 5), OFFICER)

    assert issued.record.page_count == 5
    assert extract_page_images(issued.pdf) == pages
    assert verify_pdf(issued.pdf, bridge.trust_roots).valid


def test_numbers_follow_each_other(bridge: Bridge, page: bytes) -> None:
    numbers = [
        bridge.copies.make_copy([page], request(bridge.config), OFFICER).record
        for _ in range(3)
    ]

    assert [r.cert_number for r in numbers] == [1, 2, 3]
    assert len({r.copy_id for r in numbers}) == 3


def test_same_request_is_not_certified_twice(bridge: Bridge, page: bytes) -> None:
    first = request(bridge.config)
    bridge.copies.make_copy([page], first, OFFICER)

    with pytest.raises(InputError, match="already certified"):
        bridge.copies.make_copy([page], first, OFFICER)
    assert bridge.store.cert_numbers(
        bridge.config.office_code, bridge.config.office().book, _year(bridge)
    ) == [1]


@pytest.mark.postgres
def test_copy_on_postgresql(
    bridge_config: BridgeConfig,
    trust_services: RunningTrustServices,
    postgres_url: str,
    page: bytes,
) -> None:
    config = bridge_config.model_copy(
        update={
            "database": bridge_config.database.model_copy(update={"url": postgres_url})
        }
    )
    bridge = Bridge(config)
    try:
        issued = bridge.copies.make_copy([page], request(config), OFFICER)
        report = verify_pdf(issued.pdf, bridge.trust_roots, StoreRegistry(bridge.store))
    finally:
        bridge.close()

    assert issued.record.cert_number == 1
    assert report.valid, report.problems


def _year(bridge: Bridge) -> int:
    return date.today().year


# Bad input and faults: a clear error, nothing half-written, no number lost.


def _nothing_taken(bridge: Bridge) -> bool:
    office = bridge.config.office()
    taken = bridge.store.cert_numbers(
        bridge.config.office_code, office.book, _year(bridge)
    )
    return taken == []


@pytest.mark.parametrize(
    ("sources", "pages", "message"),
    [
        ([], 1, "no page"),
        ([b"\xff\xd8\xff\xe0 truncated"], 1, "page 1"),
        ([b"%PDF-1.7 not really"], 1, "PDF"),
    ],
)
def test_bad_pages_are_refused_before_anything_is_written(
    bridge: Bridge, sources: list[bytes], pages: int, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        bridge.copies.make_copy(sources, request(bridge.config, pages), OFFICER)

    assert _nothing_taken(bridge)
    assert list(bridge.archive.digests()) == []


def test_unknown_document_type_is_refused(bridge: Bridge, page: bytes) -> None:
    bad = request(bridge.config, document_type="passport")

    with pytest.raises(InputError, match="choose one of"):
        bridge.copies.make_copy([page], bad, OFFICER)
    assert _nothing_taken(bridge)


def test_page_count_must_match(bridge: Bridge, page: bytes) -> None:
    with pytest.raises(InputError, match="2 pages but 1"):
        bridge.copies.make_copy([page], request(bridge.config, 2), OFFICER)
    assert _nothing_taken(bridge)


def test_too_many_pages_are_refused(bridge: Bridge, page: bytes) -> None:
    limit = bridge.config.copies.max_pages
    with pytest.raises(InputError):
        bridge.copies.make_copy(
            [page] * (limit + 1), request(bridge.config, limit + 1), OFFICER
        )
    assert _nothing_taken(bridge)


def test_wrong_pin_takes_no_number(
    bridge_config: BridgeConfig, trust_services: RunningTrustServices, page: bytes
) -> None:
    hsm = bridge_config.hsm.model_copy(update={"pin": SecretStr("0000")})
    config = bridge_config.model_copy(update={"hsm": hsm})
    bridge = Bridge(config)
    try:
        with pytest.raises(HsmError, match="PIN"):
            bridge.copies.make_copy([page], request(config), OFFICER)
        assert _nothing_taken(bridge)
    finally:
        bridge.close()


def test_absent_hsm_module_takes_no_number(
    bridge_config: BridgeConfig, trust_services: RunningTrustServices, page: bytes
) -> None:
    hsm = bridge_config.hsm.model_copy(update={"module": Path("/nonexistent/p11.so")})
    config = bridge_config.model_copy(update={"hsm": hsm})
    bridge = Bridge(config)
    try:
        with pytest.raises(HsmError):
            bridge.copies.make_copy([page], request(config), OFFICER)
        assert _nothing_taken(bridge)
    finally:
        bridge.close()


def test_timestamp_service_down_keeps_the_number_for_resume(
    bridge_config: BridgeConfig, trust_services: RunningTrustServices, page: bytes
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/tsa"
    config = bridge_config.model_copy(
        update={"timestamp": bridge_config.timestamp.model_copy(update={"url": dead})}
    )
    broken = Bridge(config)
    try:
        with pytest.raises(TimestampError, match="timestamp service"):
            broken.copies.make_copy([page], request(config), OFFICER)
        reserved = broken.store.reserved_copies()
    finally:
        broken.close()
    assert [r.cert_number for r in reserved] == [1]

    bridge = Bridge(bridge_config)
    try:
        assert bridge.store.pdf_digests() == set()
        finished = bridge.copies.resume()
        later = bridge.copies.make_copy([page], request(bridge_config), OFFICER)
    finally:
        bridge.close()

    assert [f.record.cert_number for f in finished] == [1]
    assert finished[0].copy_id == reserved[0].copy_id
    assert later.record.cert_number == 2
    assert verify_pdf(finished[0].pdf, bridge.trust_roots).valid


def test_revocation_service_down_is_a_pki_error(
    bridge_config: BridgeConfig, page: bytes
) -> None:
    bridge = Bridge(bridge_config)
    try:
        with pytest.raises(PkiError, match="CRL and OCSP"):
            bridge.copies.make_copy([page], request(bridge_config), OFFICER)
        assert [r.cert_number for r in bridge.store.reserved_copies()] == [1]
    finally:
        bridge.close()


def test_full_disk_takes_no_number(
    bridge_config: BridgeConfig, trust_services: RunningTrustServices, page: bytes
) -> None:
    archive = bridge_config.archive.model_copy(update={"min_free_bytes": 1 << 62})
    config = bridge_config.model_copy(update={"archive": archive})
    bridge = Bridge(config)
    try:
        with pytest.raises(ArchiveError, match="full"):
            bridge.copies.make_copy([page], request(config), OFFICER)
        assert _nothing_taken(bridge)
        assert list(bridge.archive.digests()) == []
    finally:
        bridge.close()


# Concurrent approvals from two processes, each with its own HSM session.


def _make_copies(config: BridgeConfig, page: bytes, count: int) -> list[int]:
    bridge = Bridge(config)
    try:
        return [
            bridge.copies.make_copy([page], request(config), OFFICER).record.cert_number
            for _ in range(count)
        ]
    finally:
        bridge.close()


@pytest.mark.slow
def test_concurrent_approvals_get_gap_free_numbers(bridge: Bridge, page: bytes) -> None:
    bridge.store.migrate()
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        results = pool.starmap(_make_copies, [(bridge.config, page, 4)] * 3)

    numbers = sorted(n for result in results for n in result)
    assert numbers == list(range(1, 13))
    office = bridge.config.office()
    assert bridge.store.cert_numbers(
        bridge.config.office_code, office.book, _year(bridge)
    ) == list(range(1, 13))


def test_submitted_request_waits_then_is_certified(bridge: Bridge, page: bytes) -> None:
    submitted = bridge.copies.submit([page], request(bridge.config, kiosk_id="k-001"))
    assert submitted.state == "pending"
    assert _nothing_taken(bridge)

    issued = bridge.copies.certify(submitted.request_id, OFFICER)

    assert issued.record.request_id == submitted.request_id
    assert issued.record.officer_name == OFFICER.name
    assert bridge.store.get_request(submitted.request_id).decided_by == OFFICER.name
    assert verify_pdf(issued.pdf, bridge.trust_roots).valid


def test_rejected_request_is_not_certified(bridge: Bridge, page: bytes) -> None:
    submitted = bridge.copies.submit([page], request(bridge.config))
    bridge.store.decide_request(
        submitted.request_id, approve=False, decided_by="officer", reason="mờ"
    )

    with pytest.raises(InputError, match="rejected"):
        bridge.copies.certify(submitted.request_id, OFFICER)
    assert _nothing_taken(bridge)
