"""Check and normalise the page images a certified copy is made from.

A request brings one or more page images (JPEG or PNG) or PDFs. Every source
is checked before it is decoded: its size in bytes, its format by magic
number, and its pixel count and sides from the header, so that a
decompression bomb is refused without being expanded. Then Pillow verifies
the file's structure and decodes it fully, which catches truncated and
corrupt images.

A baseline or progressive RGB or greyscale JPEG without an EXIF rotation is
kept byte for byte: its SHA-256 is the digest of exactly what the PDF embeds,
and no generation is lost. Anything else (PNG, CMYK, palette, 16-bit, alpha,
a rotated JPEG) is converted to an RGB JPEG at quality 90 with the EXIF
orientation applied. A PDF is rasterised with ``pdftoppm`` at 200 dpi after
its page count and page sizes have been checked, under a time limit.
"""

from __future__ import annotations

import io
import logging
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pikepdf
from PIL import Image, ImageOps, UnidentifiedImageError

from cloud_bridge.errors import InputError
from protocol.seal import page_digest

logger = logging.getLogger(__name__)

# Pillow's own bomb guard is a second line behind the header check below; it
# must never be stricter than the largest limit the configuration allows.
PILLOW_PIXEL_CEILING = 200_000_000
Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, PILLOW_PIXEL_CEILING)

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PDF_MAGIC = b"%PDF-"
JPEG_QUALITY = 90
PDF_DPI = 200
PDF_TIMEOUT_S = 60.0
EXIF_ORIENTATION = 0x0112
KEPT_JPEG_MODES = ("RGB", "L")


class PageLimits(Protocol):
    """The limits a copy's pages must respect (``CopySection`` has them)."""

    @property
    def max_pages(self) -> int:
        """Most pages in one copy."""

    @property
    def max_page_pixels(self) -> int:
        """Most pixels in one page image."""

    @property
    def max_page_bytes(self) -> int:
        """Most bytes in one page image file."""

    @property
    def min_page_side(self) -> int:
        """Smallest acceptable side, in pixels."""


@dataclass(frozen=True)
class Page:
    """One page image as it will be embedded in the copy."""

    image: bytes
    width: int
    height: int
    dpi: tuple[float, float] | None
    sha256: bytes
    converted: bool


def load_pages(sources: Sequence[bytes], limits: PageLimits) -> list[Page]:
    """Return the checked, normalised pages of ``sources``, in order.

    Raises:
        InputError: no pages, too many pages, or a source that is too big,
            too small, corrupt, a bomb or of a format not accepted; the
            message names the page and what to do.
    """
    if not sources:
        raise InputError("the request has no page images; scan the document")
    pages: list[Page] = []
    for number, source in enumerate(sources, start=1):
        if source.startswith(PDF_MAGIC):
            for image in _rasterise_pdf(source, number, limits):
                pages.append(_load_image(image, f"page {len(pages) + 1}", limits))
        else:
            pages.append(_load_image(source, f"page {number}", limits))
        _check_page_count(len(pages), limits)
    if not pages:
        raise InputError("the request has no pages; scan the document")
    logger.debug("loaded %s pages (%s converted)", len(pages), _converted(pages))
    return pages


def stored_pages(images: Sequence[tuple[bytes, str]]) -> list[Page]:
    """Return pages that :func:`load_pages` accepted and the archive kept.

    ``images`` pairs each page's bytes with the SHA-256 (hex) the archive
    checked them against. They were checked and normalised on the way in,
    so only the header is read again: decoding a scan a second time at
    approval would double the cost of checking it.

    Raises:
        InputError: an image is not a JPEG (it was not stored by this code).
    """
    pages = []
    for number, (image, digest) in enumerate(images, start=1):
        try:
            with Image.open(io.BytesIO(image)) as header:
                if header.format != "JPEG":
                    raise InputError(f"stored page {number} is not a JPEG")
                pages.append(
                    Page(
                        image=image,
                        width=header.width,
                        height=header.height,
                        dpi=_dpi(header),
                        sha256=bytes.fromhex(digest),
                        converted=False,
                    )
                )
        except (OSError, UnidentifiedImageError) as exc:
            raise InputError(f"stored page {number} cannot be read: {exc}") from exc
    return pages


def _converted(pages: list[Page]) -> int:
    return sum(page.converted for page in pages)


def _check_page_count(count: int, limits: PageLimits) -> None:
    if count > limits.max_pages:
        raise InputError(
            f"the copy has more than {limits.max_pages} pages; split the document "
            "into several requests"
        )


def _load_image(data: bytes, name: str, limits: PageLimits) -> Page:
    if len(data) > limits.max_page_bytes:
        raise InputError(
            f"{name} is {len(data)} bytes, more than {limits.max_page_bytes}; "
            "rescan it at a lower resolution"
        )
    if not data.startswith((JPEG_MAGIC, PNG_MAGIC)):
        raise InputError(f"{name} is not a JPEG or PNG image (nor a PDF); rescan it")
    image = _open_checked(data, name, limits)
    if _can_keep(image):
        return _page(data, image, converted=False)
    converted = _to_jpeg(image, name)
    with Image.open(io.BytesIO(converted)) as reopened:
        return _page(converted, reopened, converted=True)


def _open_checked(data: bytes, name: str, limits: PageLimits) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as header:
            _check_header(header, name, limits)
            header.verify()
        image = Image.open(io.BytesIO(data))
        if _can_keep(image):
            _decode_reduced(data)
        else:
            image.load()
    except Image.DecompressionBombError as exc:
        raise InputError(
            f"{name} has more pixels than can be decoded safely (a decompression "
            "bomb); rescan it at a lower resolution"
        ) from exc
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as exc:
        raise InputError(f"{name} is corrupt or truncated ({exc}); rescan it") from exc
    return image


def _decode_reduced(data: bytes) -> None:
    """Decode a JPEG that is kept as it is, at 1/8 scale, to find corruption.

    libjpeg still reads every block of the stream at that scale, so a
    truncated or corrupt file fails here, at a tenth of a full decode's cost.
    """
    with Image.open(io.BytesIO(data)) as probe:
        width, height = probe.size
        probe.draft(probe.mode, (max(1, width // 8), max(1, height // 8)))
        probe.load()


def _check_header(image: Image.Image, name: str, limits: PageLimits) -> None:
    if image.format not in ("JPEG", "PNG"):
        raise InputError(f"{name} is {image.format}, not JPEG or PNG; rescan it")
    width, height = image.size
    if width * height > limits.max_page_pixels:
        raise InputError(
            f"{name} has {width}x{height} pixels, more than "
            f"{limits.max_page_pixels}; rescan it at a lower resolution"
        )
    if min(width, height) < limits.min_page_side:
        raise InputError(
            f"{name} is only {width}x{height} pixels (at least "
            f"{limits.min_page_side} on each side); rescan it at a higher resolution"
        )


def _can_keep(image: Image.Image) -> bool:
    orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    return (
        image.format == "JPEG"
        and image.mode in KEPT_JPEG_MODES
        and orientation == 1
        and image.info.get("jpeg_lossless") is not True
    )


def _to_jpeg(image: Image.Image, name: str) -> bytes:
    try:
        rotated = ImageOps.exif_transpose(image)
        rgb = _flatten(rotated)
        out = io.BytesIO()
        rgb.save(out, "JPEG", quality=JPEG_QUALITY, dpi=_dpi(image) or (72, 72))
    except (OSError, ValueError) as exc:
        raise InputError(f"{name} cannot be converted ({exc}); rescan it") from exc
    logger.debug("%s converted from %s %s to JPEG", name, image.format, image.mode)
    return out.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        levels = np.asarray(image, dtype=np.uint32) >> 8
        image = Image.fromarray(np.clip(levels, 0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    ):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _dpi(image: Image.Image) -> tuple[float, float] | None:
    dpi = image.info.get("dpi")
    if not dpi or len(dpi) != 2 or not all(float(value) > 1 for value in dpi):
        return None
    return float(dpi[0]), float(dpi[1])


def _page(data: bytes, image: Image.Image, *, converted: bool) -> Page:
    return Page(
        image=data,
        width=image.width,
        height=image.height,
        dpi=_dpi(image),
        sha256=page_digest(data),
        converted=converted,
    )


def _rasterise_pdf(data: bytes, number: int, limits: PageLimits) -> list[bytes]:
    name = f"file {number} (PDF)"
    max_bytes = limits.max_page_bytes * limits.max_pages
    if len(data) > max_bytes:
        raise InputError(f"{name} is larger than {max_bytes} bytes; split it")
    _check_pdf_pages(data, name, limits)
    with tempfile.TemporaryDirectory(prefix="pages-") as folder:
        source = Path(folder) / "in.pdf"
        source.write_bytes(data)
        _run_pdftoppm(source, Path(folder) / "page", name)
        images = sorted(Path(folder).glob("page*.jpg"))
        if not images:
            raise InputError(f"{name} produced no pages; export it again")
        return [path.read_bytes() for path in images]


def _check_pdf_pages(data: bytes, name: str, limits: PageLimits) -> None:
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            pages = list(pdf.pages)
            _check_page_count(len(pages), limits)
            for index, page in enumerate(pages, start=1):
                width, height = _pixels_at_dpi(page)
                if width * height > limits.max_page_pixels:
                    raise InputError(
                        f"page {index} of {name} is too large to rasterise; "
                        "export it at A4 size"
                    )
    except pikepdf.PasswordError as exc:
        raise InputError(f"{name} is encrypted; export it without a password") from exc
    except pikepdf.PdfError as exc:
        raise InputError(f"{name} is not a readable PDF; export it again") from exc
    if not pages:
        raise InputError(f"{name} has no pages; export it again")


def _pixels_at_dpi(page: pikepdf.Page) -> tuple[int, int]:
    box = [float(value) for value in page.mediabox]
    width = abs(box[2] - box[0]) * PDF_DPI / 72
    height = abs(box[3] - box[1]) * PDF_DPI / 72
    return round(width), round(height)


def _run_pdftoppm(source: Path, prefix: Path, name: str) -> None:
    command = [
        "pdftoppm",
        "-r",
        str(PDF_DPI),
        "-jpeg",
        "-jpegopt",
        f"quality={JPEG_QUALITY}",
        str(source),
        str(prefix),
    ]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=PDF_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise InputError(
            f"{name} took longer than {PDF_TIMEOUT_S:.0f} s to rasterise; "
            "export it again as plain page images"
        ) from exc
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode("utf-8", "replace").strip()[:200]
        raise InputError(
            f"{name} could not be rasterised ({detail}); export it again"
        ) from exc
    except FileNotFoundError as exc:
        raise InputError(
            "pdftoppm is not installed; install the poppler-utils package"
        ) from exc
