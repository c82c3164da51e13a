"""Signing rendered copies in place: every level, the DSS cache, bad input."""

from __future__ import annotations

import io
from datetime import date

import pikepdf
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from cloud_bridge.config import BridgeConfig
from cloud_bridge.context import Bridge
from cloud_bridge.errors import SigningError
from cloud_bridge.pades import (
    SIGNATURE_BYTES,
    SignatureText,
    _last_revision,
    find_signature_gap,
    write_contents,
)
from cloud_bridge.pages import load_pages
from cloud_bridge.render import CopyContent, render_copy
from cloud_bridge.signing import CopySigner, http_timestamper
from cloud_bridge.verify import verify_pdf
from tests.cloud_bridge.samples import jpeg_bytes, scan_page

TEXT = SignatureText("Chứng thực bản sao (TEST)", "Phường Mẫu", "Nguyễn Văn Mẫu")


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rendered(config: BridgeConfig, signature: SignatureText | None = TEXT) -> bytes:
    """A one-page copy as the renderer makes it, with or without its fields."""
    pages = load_pages([jpeg_bytes(scan_page(seed=5))], config.copies)
    content = CopyContent(
        copy_id="TEST-PADE-SSIG-NED0",
        access_code="123456",
        certification_number=7,
        book="01/2026-SCT/BS",
        issue_date=date(2026, 12, 3),
        office_name="Ủy ban nhân dân Phường Mẫu",
        officer_name="Nguyễn Văn Mẫu",
        officer_title="Phó Chủ tịch",
        document_type_label="Giấy khai sinh",
        pages=pages,
        qr_payload="HTTPS://EXAMPLE.VN/C/TESTPADESSIGNED0",
        watermark="TTPVHCC",
        lookup_url="https://example.vn/c/TEST-PADE-SSIG-NED0",
    )
    return render_copy(content, validate=False, signature=signature)


def signer(bridge: Bridge, level: str, clock: Clock | None = None) -> CopySigner:
    """A copy signer at ``level`` with the bridge's key and TSA."""
    return CopySigner(
        bridge.pdf_signer,
        bridge.trust_roots,
        level=level,
        timestamper=http_timestamper(bridge.config.timestamp.url, 5),
        revocation_cache_s=60,
        clock=clock or Clock(),
    )


@pytest.mark.parametrize("level", ["B-B", "B-T", "B-LT", "B-LTA"])
def test_each_level_is_valid_for_pyhanko(bridge: Bridge, level: str) -> None:
    signed = signer(bridge, level).sign_prepared(rendered(bridge.config))

    signature = PdfFileReader(io.BytesIO(signed)).embedded_signatures[0]
    context = ValidationContext(
        trust_roots=bridge.trust_roots, allow_fetching=True, revocation_mode="require"
    )
    status = validate_pdf_signature(signature, context)
    report = verify_pdf(signed, bridge.trust_roots)

    assert status.intact and status.valid and status.trusted
    # what follows the signature in B-LT and B-LTA is the DSS and the
    # document timestamp, which a validator accepts as LTA updates
    expected = "ENTIRE_FILE" if level in ("B-B", "B-T") else "ENTIRE_REVISION"
    assert status.coverage is not None and status.coverage.name == expected
    level_name = getattr(status.modification_level, "name", "NONE")
    assert level_name in ("NONE", "LTA_UPDATES")
    assert (status.timestamp_validity is not None) == (level != "B-B")
    assert report.intact and report.trusted and report.unchanged_since_signing
    assert report.level == level
    assert report.valid == (level == "B-LTA"), report.problems


def test_signed_copy_stays_pdfa_2b(bridge: Bridge) -> None:
    signed = signer(bridge, "B-LTA").sign_prepared(rendered(bridge.config))

    with pikepdf.open(io.BytesIO(signed)) as pdf:
        findings = pikepdf.pdfa.check(pdf, "2b").findings
        dss = pdf.Root.DSS
        fields = [str(field.T) for field in pdf.Root.AcroForm.Fields]
        certificates, responses = len(dss.Certs), len(dss.get("/OCSPs", []))

    assert [f for f in findings if f.kind != "unsupported"] == []
    assert fields == ["ChungThuc", "LuuTru"]
    assert certificates >= 3  # root, signer, TSA
    assert responses >= 1


def test_revocation_data_is_fetched_once_per_period(bridge: Bridge) -> None:
    clock = Clock()
    copy_signer = signer(bridge, "B-LTA", clock)
    pdf = rendered(bridge.config)

    copy_signer.sign_prepared(pdf)
    first = copy_signer._cached_material()
    copy_signer.sign_prepared(pdf)
    reused = copy_signer._cached_material()
    clock.now += 61
    assert copy_signer._cached_material() is None
    copy_signer.sign_prepared(pdf)

    assert first is not None and reused is first
    assert copy_signer._cached_material() not in (None, first)


def test_a_pdf_without_prepared_fields_is_refused(bridge: Bridge) -> None:
    with pytest.raises(SigningError, match="no prepared signature field"):
        signer(bridge, "B-B").sign_prepared(rendered(bridge.config, signature=None))


def test_a_signature_larger_than_its_gap_is_refused(bridge: Bridge) -> None:
    pdf = bytearray(rendered(bridge.config))
    gap = find_signature_gap(pdf)

    with pytest.raises(SigningError, match="were reserved"):
        write_contents(pdf, gap, b"\x30" * (SIGNATURE_BYTES + 1))


def test_the_table_gives_the_same_objects_as_a_full_parse(bridge: Bridge) -> None:
    pdf = rendered(bridge.config)

    revision = _last_revision(pdf)
    with pikepdf.open(io.BytesIO(pdf)) as document:
        root = document.Root.objgen[0]
        field = document.Root.AcroForm.Fields[1].objgen[0]
        size = int(document.trailer.Size)

    assert revision.root[0] == root
    assert revision.timestamp_field[0] == field
    assert revision.size == size
    assert revision.root[1].startswith(b"<<") and b"/AcroForm" in revision.root[1]
    assert b"/T (LuuTru)" in revision.timestamp_field[1]
