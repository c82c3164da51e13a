"""Render a certified copy as a PDF/A-2b document, ready to be signed.

Each page is an A4 sheet (portrait, or landscape for a landscape scan) with:

* a header line giving the copy's identifier and "Trang x/y";
* the scanned page, scaled to fit its area, embedded as the original JPEG
  stream (DCTDecode), so its bytes, and therefore the seal's page digest,
  are exactly those of the page image;
* the watermark (``TTPVHCC``) drawn diagonally across the page, semi-
  transparent, above the scan so that it cannot be cropped off the image.

The last page reserves a band at the bottom for the certification block in
the words of the legal form ("Chứng thực bản sao đúng với bản chính", number,
book, date, office, officer) on the left and the QR code (50 mm) with the
access code under it on the right; the scan is scaled into the space above it. A
band on the last page rather than an extra page keeps the certification
physically attached to the content it certifies.

The pages are built with pikepdf. Text and watermark are written by
:mod:`cloud_bridge.typeset` in DejaVu Sans, subset once per process to the
Vietnamese alphabet and embedded in every copy. The scans are image XObjects
made directly from the JPEG bytes, never decoded. The QR code
is encoded by zxing-cpp (segno, in pure Python, took 10-25 ms a copy) and
placed as a 1-bit image XObject (one pixel per module, no interpolation),
which keeps the content streams short. The PDF/A-2b metadata (XMP packet,
document info, sRGB output intent) is written by
:mod:`cloud_bridge.pdfa_metadata`; pikepdf then saves at PDF version 1.7 and,
by default, validates what it wrote with its own PDF/A checker;
``validate=False`` uses the same save settings without re-reading the
output, for throughput.
With a signature text, the copy also carries its signature fields and is
saved without object streams, ready to be signed in place
(:mod:`cloud_bridge.pades`); without, it is a plain PDF that pyHanko can
sign with an incremental update.
"""

from __future__ import annotations

import io
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pikepdf
import pikepdf.pdfa
import zxingcpp
from PIL import Image, ImageOps

from cloud_bridge.errors import InputError, VerificationError
from cloud_bridge.pades import SignatureText, add_signature_fields
from cloud_bridge.pages import Page
from cloud_bridge.pdfa_metadata import FLAVOUR as PDFA_FLAVOUR
from cloud_bridge.pdfa_metadata import DocumentInfo, declare_pdfa
from cloud_bridge.typeset import FontProgram, PageDrawing, embed_font, font_program

logger = logging.getLogger(__name__)

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/truetype/noto"),
)
mm = 72 / 25.4  # PDF points in a millimetre
A4 = (210 * mm, 297 * mm)
REGULAR = "Copy"
BOLD = "CopyBold"
FONT_FILES = {
    REGULAR: ("DejaVuSans.ttf", "NotoSans-Regular.ttf"),
    BOLD: ("DejaVuSans-Bold.ttf", "NotoSans-Bold.ttf"),
}
SCAN_NAME = "/TTPVHCCScan"
QR_NAME = "/TTPVHCCSeal"
PDF_VERSION = "1.7"
PRODUCER = "ttpvhcc-kiosk"

MARGIN = 12 * mm
HEADER = 9 * mm
BAND = 66 * mm
GAP = 4 * mm
QR_SIZE = 50 * mm
QR_QUIET = 4
QR_ERROR_LEVEL = "Q"
WATERMARK_ALPHA = 0.22
JPEG_COLOUR_SPACES = {"RGB": pikepdf.Name.DeviceRGB, "L": pikepdf.Name.DeviceGray}


@dataclass(frozen=True)
class CopyContent:
    """Everything printed on a certified copy."""

    copy_id: str
    access_code: str
    certification_number: int
    book: str
    issue_date: date
    office_name: str
    officer_name: str
    officer_title: str
    document_type_label: str
    pages: Sequence[Page]
    qr_payload: str
    watermark: str
    lookup_url: str


@dataclass(frozen=True)
class _Box:
    x: float
    y: float
    width: float
    height: float


def render_copy(
    copy: CopyContent,
    *,
    validate: bool = True,
    signature: SignatureText | None = None,
    signed_at: datetime | None = None,
) -> bytes:
    """Return the copy as PDF/A-2b bytes (PDF 1.7), not yet signed.

    With ``signature``, the copy carries its signature fields, ready for
    :meth:`cloud_bridge.signing.CopySigner.sign_prepared`; it is then saved
    without object streams so that the signature dictionary can be filled in.

    Raises:
        InputError: the copy has no pages, or the QR payload cannot be encoded.
        VerificationError: the fonts are missing, or the result fails the
            PDF/A check.
    """
    if not copy.pages:
        raise InputError("a copy needs at least one page")
    programs = _font_programs()
    with pikepdf.new() as pdf:
        resources = pikepdf.Dictionary(
            Font=pikepdf.Dictionary(
                {"/" + name: embed_font(pdf, font) for name, font in programs.items()}
            ),
            ExtGState=pikepdf.Dictionary(
                Watermark=pdf.make_indirect(
                    pikepdf.Dictionary(
                        Type=pikepdf.Name.ExtGState,
                        ca=WATERMARK_ALPHA,
                        CA=WATERMARK_ALPHA,
                    )
                )
            ),
        )
        total = len(copy.pages)
        for index, scan in enumerate(copy.pages, start=1):
            size = (A4[1], A4[0]) if scan.width > scan.height else A4
            last = index == total
            drawing = PageDrawing(programs)
            _draw_header(drawing, copy.copy_id, index, total, size)
            if last:
                _draw_certification(drawing, copy, size)
            _draw_watermark(drawing, copy.watermark, size)
            page = pdf.add_blank_page(page_size=size)
            page.obj.Resources = resources.copy()
            page.obj.Contents = pikepdf.Stream(pdf, zlib.compress(drawing.content()))
            page.obj.Contents.Filter = pikepdf.Name.FlateDecode
            _place_scan(pdf, page, scan, _fit(scan, _scan_area(size, last)))
        _place_qr(pdf, pdf.pages[-1], copy.qr_payload)
        pdf.Root.Lang = pikepdf.String("vi-VN")
        moment = signed_at or datetime.now(UTC)
        declare_pdfa(
            pdf,
            DocumentInfo(
                title=f"Bản sao chứng thực {copy.copy_id}",
                author=copy.office_name,
                subject=copy.document_type_label,
                producer=PRODUCER,
                created=moment,
            ),
        )
        options: dict[str, Any] = {}
        if signature is not None:
            add_signature_fields(pdf, signature, moment)
            options["object_stream_mode"] = pikepdf.ObjectStreamMode.disable
        return _save_pdfa(pdf, copy.copy_id, validate, options)


def extract_page_images(pdf_bytes: bytes) -> list[bytes]:
    """Return the embedded scan of each page of a rendered (or signed) copy.

    Raises:
        VerificationError: the PDF cannot be read or a page has no scan.
    """
    images = []
    try:
        with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
            for number, page in enumerate(pdf.pages, start=1):
                resources = page.obj.get("/Resources")
                xobjects = None if resources is None else resources.get("/XObject")
                if xobjects is None or SCAN_NAME not in xobjects:
                    raise VerificationError(
                        f"page {number} of the PDF carries no scanned page; it "
                        "was not made by a certifying office"
                    )
                images.append(bytes(xobjects[SCAN_NAME].read_raw_bytes()))
    except pikepdf.PdfError as exc:
        raise VerificationError(f"the PDF cannot be read: {exc}") from exc
    return images


@cache
@cache
def _font_programs() -> dict[str, FontProgram]:
    return {
        name: font_program(_find_font(candidates))
        for name, candidates in FONT_FILES.items()
    }


def _find_font(candidates: Sequence[str]) -> Path:
    for folder in FONT_DIRS:
        for candidate in candidates:
            if (folder / candidate).is_file():
                return folder / candidate
    raise VerificationError(
        f"no font with Vietnamese glyphs found ({', '.join(candidates)} in "
        f"{', '.join(map(str, FONT_DIRS))}); install fonts-dejavu-core"
    )


def _scan_area(size: tuple[float, float], last: bool) -> _Box:
    width, height = size
    bottom = MARGIN + (BAND + GAP if last else 0)
    top = height - MARGIN - HEADER
    return _Box(MARGIN, bottom, width - 2 * MARGIN, top - bottom)


def _fit(scan: Page, area: _Box) -> _Box:
    scale = min(area.width / scan.width, area.height / scan.height)
    width, height = scan.width * scale, scan.height * scale
    x = area.x + (area.width - width) / 2
    y = area.y + (area.height - height)
    return _Box(x, y, width, height)


def _draw_header(
    drawing: PageDrawing,
    copy_id: str,
    index: int,
    total: int,
    size: tuple[float, float],
) -> None:
    width, height = size
    baseline = height - MARGIN - 5 * mm
    drawing.fill_gray(0.15)
    drawing.text(
        REGULAR, 8.5, MARGIN, baseline, f"Bản sao chứng thực điện tử - Mã: {copy_id}"
    )
    drawing.text(
        REGULAR, 8.5, width - MARGIN, baseline, f"Trang {index}/{total}", "right"
    )
    drawing.stroke_gray(0.6)
    drawing.line_width(0.4)
    drawing.line(MARGIN, baseline - 2 * mm, width - MARGIN, baseline - 2 * mm)


def _draw_watermark(drawing: PageDrawing, text: str, size: tuple[float, float]) -> None:
    width, height = size
    font_size = min(width, height) * 1.1 / max(len(text), 4)
    drawing.watermark(
        BOLD,
        font_size,
        (width / 2, height / 2),
        45 if height > width else 30,
        text,
        (0.75, 0.1, 0.1),
        "Watermark",
    )


def _draw_certification(
    drawing: PageDrawing, copy: CopyContent, size: tuple[float, float]
) -> None:
    width, _height = size
    top = MARGIN + BAND
    drawing.stroke_gray(0.3)
    drawing.line_width(0.6)
    drawing.rect(MARGIN, MARGIN, width - 2 * MARGIN, BAND)
    qr_x = _qr_box(width).x
    drawing.fill_gray(0)
    drawing.text(
        BOLD,
        10,
        qr_x + QR_SIZE / 2,
        MARGIN + 3.5 * mm,
        f"Mã truy cập: {copy.access_code}",
        "centre",
    )
    lines = [
        (BOLD, 11.5, "Chứng thực bản sao đúng với bản chính"),
        (REGULAR, 10, f"Số chứng thực: {copy.certification_number}"),
        (REGULAR, 10, f"Quyển số: {copy.book}"),
        (REGULAR, 10, _vietnamese_date(copy.issue_date)),
        (REGULAR, 9, f"Loại giấy tờ: {copy.document_type_label}"),
        (BOLD, 10, copy.office_name),
        (BOLD, 10, copy.officer_title),
        (REGULAR, 10, copy.officer_name),
        (REGULAR, 8, "(Đã ký số)"),
        (REGULAR, 7.5, f"Tra cứu: {copy.lookup_url}"),
    ]
    x, y = MARGIN + 5 * mm, top - 8 * mm
    for font, font_size, text in lines:
        room = qr_x - x - 4 * mm
        drawing.text(font, font_size, x, y, _clip(drawing, text, font, font_size, room))
        y -= font_size * 1.55


def _clip(
    drawing: PageDrawing, text: str, font: str, font_size: float, room: float
) -> str:
    program = drawing.fonts[font]
    while text and program.width(text, font_size) > room:
        text = text[:-2] + "…"
    return text


def _vietnamese_date(day: date) -> str:
    return f"Ngày {day.day:02d} tháng {day.month:02d} năm {day.year}"


def _qr_image(pdf: pikepdf.Pdf, payload: str) -> pikepdf.Stream:
    try:
        symbol = zxingcpp.create_barcode(
            payload, zxingcpp.BarcodeFormat.QRCode, ec_level=QR_ERROR_LEVEL
        )
    except (ValueError, RuntimeError) as exc:
        raise InputError(f"the QR payload cannot be encoded: {exc}") from exc
    modules = symbol.to_image(scale=1, add_quiet_zones=False)
    light = ImageOps.expand(Image.fromarray(np.asarray(modules)), QR_QUIET, 255)
    side = light.width
    image = pikepdf.Stream(pdf, zlib.compress(light.convert("1").tobytes()))
    image.Type = pikepdf.Name.XObject
    image.Subtype = pikepdf.Name.Image
    image.Width = side
    image.Height = side
    image.BitsPerComponent = 1
    image.ColorSpace = pikepdf.Name.DeviceGray
    image.Filter = pikepdf.Name.FlateDecode
    return image


def _place_qr(pdf: pikepdf.Pdf, page: pikepdf.Page, payload: str) -> None:
    width = float(page.mediabox[2]) - float(page.mediabox[0])
    box = _qr_box(width)
    _add_image(pdf, page, QR_NAME, _qr_image(pdf, payload), box, prepend=False)


def _qr_box(page_width: float) -> _Box:
    x = page_width - MARGIN - QR_SIZE - 3 * mm
    return _Box(x, MARGIN + BAND - QR_SIZE - 3 * mm, QR_SIZE, QR_SIZE)


def _add_image(
    pdf: pikepdf.Pdf,
    page: pikepdf.Page,
    name: str,
    image: pikepdf.Stream,
    box: _Box,
    *,
    prepend: bool,
) -> None:
    if "/Resources" not in page.obj:
        page.obj.Resources = pikepdf.Dictionary()
    if "/XObject" not in page.obj.Resources:
        page.obj.Resources.XObject = pikepdf.Dictionary()
    page.obj.Resources.XObject[name] = image
    drawing = (
        f"q {box.width:.3f} 0 0 {box.height:.3f} {box.x:.3f} {box.y:.3f} cm "
        f"{name} Do Q\n"
    )
    page.contents_add(pikepdf.Stream(pdf, drawing.encode("ascii")), prepend=prepend)


def _place_scan(pdf: pikepdf.Pdf, page: pikepdf.Page, scan: Page, box: _Box) -> None:
    image = pikepdf.Stream(pdf, scan.image)
    image.Type = pikepdf.Name.XObject
    image.Subtype = pikepdf.Name.Image
    image.Width = scan.width
    image.Height = scan.height
    image.BitsPerComponent = 8
    image.ColorSpace = _jpeg_colour_space(scan.image)
    image.Filter = pikepdf.Name.DCTDecode
    _add_image(pdf, page, SCAN_NAME, image, box, prepend=True)


def _jpeg_colour_space(data: bytes) -> pikepdf.Name:
    with Image.open(io.BytesIO(data)) as header:
        mode = header.mode
    if mode not in JPEG_COLOUR_SPACES:
        raise InputError(
            f"a page image is a {mode} JPEG; load it through load_pages first"
        )
    return JPEG_COLOUR_SPACES[mode]


def _save_pdfa(
    pdf: pikepdf.Pdf, copy_id: str, validate: bool, options: dict[str, Any]
) -> bytes:
    out = io.BytesIO()
    if not validate:
        settings = pikepdf.pdfa.resolve_save_kwargs(
            PDFA_FLAVOUR, min_version=PDF_VERSION, **options
        )
        pdf.save(out, **settings)
        return out.getvalue()
    try:
        pikepdf.pdfa.save(pdf, out, PDFA_FLAVOUR, min_version=PDF_VERSION, **options)
    except pikepdf.pdfa.PdfaError as exc:
        raise VerificationError(
            f"copy {copy_id} does not conform to PDF/A-{PDFA_FLAVOUR}: {exc}"
        ) from exc
    logger.debug("copy %s rendered and checked as PDF/A-%s", copy_id, PDFA_FLAVOUR)
    return out.getvalue()
