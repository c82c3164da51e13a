"""Tests for rendering certified copies as PDF/A-2b."""

from __future__ import annotations

import io
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pikepdf
import pikepdf.pdfa
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from cloud_bridge.errors import InputError
from cloud_bridge.render import (
    BOLD,
    CopyContent,
    _font_programs,
    extract_page_images,
    render_copy,
)
from protocol.seal import pages_digest, parse_qr_payload, read_seal
from tests.cloud_bridge.copies import sealed_copy
from tests.cloud_bridge.samples import a4_scan_jpeg, encoded, jpeg_bytes, scan_page
from tests.protocol.seal_keys import make_seal_certificate

KeyPair = tuple[ec.EllipticCurvePrivateKey, x509.Certificate]


@pytest.fixture(scope="module")
def seal_key() -> KeyPair:
    return make_seal_certificate("Seal PHUONG-MAU")


@pytest.fixture(scope="module")
def five_page_copy(seal_key: KeyPair) -> CopyContent:
    sources = [jpeg_bytes(scan_page((827, 1169), seed=n)) for n in range(4)]
    sources.insert(2, encoded(scan_page((1169, 827), seed=9), "PNG"))
    sources[1] = jpeg_bytes(scan_page((827, 1169)).convert("L"), progressive=True)
    return sealed_copy(sources, *seal_key)


@pytest.fixture(scope="module")
def five_page_pdf(five_page_copy: CopyContent) -> bytes:
    return render_copy(five_page_copy)


def pdftotext(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "copy.pdf"
    path.write_bytes(pdf)
    result = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True
    )
    return result.stdout.decode("utf-8")


def has_diagonal_watermark(page: pikepdf.Page, text: str) -> bool:
    """Return whether ``text`` is drawn rotated and semi-transparent."""
    alphas = {
        str(name): float(state.get("/ca", 1))
        for name, state in page.obj.Resources.ExtGState.items()
    }
    rotated = transparent = False
    glyphs = bytes.fromhex(_font_programs()[BOLD].encode(text)[1:-1].decode())
    for instruction in pikepdf.parse_content_stream(page):
        operands, name = instruction.operands, str(instruction.operator)
        if name == "cm" and abs(float(operands[1])) > 0.4:
            rotated = True
        elif name == "gs" and alphas.get(str(operands[0]), 1) < 0.5:
            transparent = True
        elif name == "Tj" and bytes(operands[0]) == glyphs:
            return rotated and transparent
    return False


def test_five_page_copy_text(
    five_page_pdf: bytes, five_page_copy: CopyContent, tmp_path: Path
) -> None:
    text = pdftotext(five_page_pdf, tmp_path)
    for expected in [
        "Chứng thực bản sao đúng với bản chính",
        "Số chứng thực: 4321",
        "Quyển số: 01/SCT/BS",
        "Ngày 03 tháng 12 năm 2026",
        "Ủy ban nhân dân Phường Mẫu",
        "Công chức Tư pháp - Hộ tịch",
        "Nguyễn Thị Hương",
        f"Mã truy cập: {five_page_copy.access_code}",
        five_page_copy.copy_id,
        "Trang 1/5",
        "Trang 5/5",
    ]:
        assert expected in text, expected
    pages = text.split("\f")
    assert "Chứng thực bản sao" not in pages[0]
    assert all(five_page_copy.copy_id in page for page in pages[:5])


def test_five_page_copy_structure(
    five_page_pdf: bytes, five_page_copy: CopyContent
) -> None:
    assert five_page_pdf.startswith(b"%PDF-1.7")
    with pikepdf.open(io.BytesIO(five_page_pdf)) as pdf:
        assert len(pdf.pages) == 5
        assert pdf.pdf_version == "1.7"
        widths = [float(page.mediabox[2]) for page in pdf.pages]
        assert widths[2] > widths[0]
        grey = pdf.pages[1].obj.Resources.XObject["/TTPVHCCScan"]
        assert grey.ColorSpace == pikepdf.Name.DeviceGray
        meta = pdf.open_metadata()
        assert meta["pdfaid:part"] == "2"
        assert meta["pdfaid:conformance"] == "B"
        assert "/OutputIntents" in pdf.Root
        for page in pdf.pages:
            assert "/Trans" not in page.obj
            for font in page.obj.Resources.Font.values():
                assert font.Subtype == pikepdf.Name.Type0
                assert "/ToUnicode" in font
                (descendant,) = font.DescendantFonts
                assert "/FontFile2" in descendant.FontDescriptor
            assert has_diagonal_watermark(page, "TTPVHCC")
    report = pikepdf.pdfa.validate_written(io.BytesIO(five_page_pdf), "2b")
    assert report.passed, report


def test_embedded_images_are_the_inputs(
    five_page_pdf: bytes, five_page_copy: CopyContent
) -> None:
    images = extract_page_images(five_page_pdf)
    assert images == [page.image for page in five_page_copy.pages]
    claims = read_seal(parse_qr_payload(five_page_copy.qr_payload)[2])[1]
    assert pages_digest(images) == claims.pages_digest


def test_one_page_a4_scan_renders_fast(seal_key: KeyPair, tmp_path: Path) -> None:
    scan = a4_scan_jpeg()
    copy = sealed_copy([scan], *seal_key)
    pdf = render_copy(copy)
    assert extract_page_images(pdf) == [scan]
    assert "Trang 1/1" in pdftotext(pdf, tmp_path)
    timings = {}
    for validate in (False, True):
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            render_copy(copy, validate=validate)
            runs.append(time.perf_counter() - start)
        timings[validate] = sorted(runs)[2]
    print(
        f"one-page A4 render ms: {timings[False] * 1000:.1f} unchecked, "
        f"{timings[True] * 1000:.1f} with PDF/A validation"
    )
    assert timings[False] < 0.25
    fast = pikepdf.pdfa.validate_written(
        io.BytesIO(render_copy(copy, validate=False)), "2b"
    )
    assert fast.passed, fast


def test_copy_without_pages_is_refused(five_page_copy: CopyContent) -> None:
    with pytest.raises(InputError, match="at least one page"):
        render_copy(replace(five_page_copy, pages=[]))


def test_pdf_without_scans_is_refused() -> None:
    from cloud_bridge.errors import VerificationError

    out = io.BytesIO()
    with pikepdf.new() as pdf:
        pdf.add_blank_page()
        pdf.save(out)
    with pytest.raises(VerificationError, match="page 1 of the PDF carries no"):
        extract_page_images(out.getvalue())
    with pytest.raises(VerificationError, match="cannot be read"):
        extract_page_images(b"not a pdf")


def test_pikepdf_finds_nothing_to_prepare_in_a_copy(
    five_page_copy: CopyContent,
) -> None:
    # the metadata is written by our template, not by pikepdf's editor: its
    # own preparation must have nothing left to add, remove or repair
    title = replace(five_page_copy, office_name="Phường <Mẫu> & Co")
    pdf = render_copy(title, validate=False)
    assert pikepdf.pdfa.validate_written(io.BytesIO(pdf), "2b").passed
    with pikepdf.open(io.BytesIO(pdf)) as opened:
        assert opened.open_metadata()["dc:creator"] == ["Phường <Mẫu> & Co"]
        assert str(opened.docinfo.Author) == "Phường <Mẫu> & Co"
        assert str(opened.docinfo.Producer) == "ttpvhcc-kiosk"
        prepared = pikepdf.pdfa.prepare(opened, "2b")
    assert not prepared.changed, prepared
