"""Tests for checking and normalising page images."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from cloud_bridge.config import CopySection
from cloud_bridge.errors import InputError
from cloud_bridge.pages import load_pages
from tests.cloud_bridge.samples import encoded, jpeg_bytes, pdf_bytes, scan_page


def sixteen_bit(image: Image.Image) -> Image.Image:
    levels = np.asarray(image.convert("L"), dtype=np.uint16) * 257
    return Image.fromarray(levels)


@pytest.fixture(scope="module")
def page_image() -> Image.Image:
    return scan_page((900, 1270), seed=3)


@pytest.fixture
def limits() -> CopySection:
    return CopySection.model_validate({})


def test_plain_jpeg_is_kept_byte_for_byte(
    page_image: Image.Image, limits: CopySection
) -> None:
    baseline = jpeg_bytes(page_image)
    progressive = jpeg_bytes(page_image.convert("L"), progressive=True)
    pages = load_pages([baseline, progressive], limits)
    assert [p.image for p in pages] == [baseline, progressive]
    assert pages[0].sha256 == hashlib.sha256(baseline).digest()
    assert (pages[0].width, pages[0].height) == (900, 1270)
    assert pages[0].dpi == (150.0, 150.0)
    assert not any(p.converted for p in pages)


@pytest.mark.parametrize(
    "make",
    [
        lambda im: encoded(im, "PNG"),
        lambda im: encoded(im.convert("RGBA"), "PNG"),
        lambda im: encoded(im.convert("P"), "PNG"),
        lambda im: encoded(sixteen_bit(im), "PNG"),
        lambda im: encoded(im.convert("CMYK"), "JPEG"),
    ],
    ids=["png-rgb", "png-alpha", "png-palette", "png-16bit", "jpeg-cmyk"],
)
def test_other_images_become_rgb_jpeg(
    page_image: Image.Image, limits: CopySection, make: object
) -> None:
    data = make(page_image)  # type: ignore[operator]
    (page,) = load_pages([data], limits)
    assert page.converted
    assert page.image.startswith(b"\xff\xd8\xff")
    with Image.open(io.BytesIO(page.image)) as result:
        assert result.mode == "RGB"
        assert result.size == (900, 1270)
        assert sum(result.getpixel((5, 5))) / 3 > 200  # type: ignore[arg-type]
    assert page.sha256 == hashlib.sha256(page.image).digest()


def test_exif_orientation_is_applied(
    page_image: Image.Image, limits: CopySection
) -> None:
    rotated = jpeg_bytes(page_image, orientation=6)
    (page,) = load_pages([rotated], limits)
    assert page.converted
    assert (page.width, page.height) == (1270, 900)


def test_pdf_is_rasterised_at_200_dpi(limits: CopySection) -> None:
    pages = load_pages([pdf_bytes(2)], limits)
    assert len(pages) == 2
    assert abs(pages[0].width - 1654) <= 2
    assert abs(pages[0].height - 2339) <= 2
    assert pages[0].image.startswith(b"\xff\xd8\xff")


def test_empty_input_is_refused(limits: CopySection) -> None:
    with pytest.raises(InputError, match="no page images"):
        load_pages([], limits)


def test_too_many_pages_are_refused(page_image: Image.Image) -> None:
    data = jpeg_bytes(page_image)
    with pytest.raises(InputError, match="more than 2 pages"):
        load_pages([data] * 3, CopySection.model_validate({"max_pages": 2}))
    with pytest.raises(InputError, match="more than 2 pages"):
        load_pages(
            [pdf_bytes(3, size=(400, 560))],
            CopySection.model_validate({"max_pages": 2}),
        )


@pytest.mark.parametrize(
    ("fmt", "fragment"),
    [("GIF", "page 2 is not a JPEG or PNG"), ("TIFF", "page 2 is not a JPEG or PNG")],
)
def test_other_formats_are_refused(
    page_image: Image.Image, limits: CopySection, fmt: str, fragment: str
) -> None:
    with pytest.raises(InputError, match=fragment):
        load_pages([jpeg_bytes(page_image), encoded(page_image, fmt)], limits)


def test_truncated_and_corrupt_images_are_refused(
    page_image: Image.Image, limits: CopySection
) -> None:
    data = jpeg_bytes(page_image)
    with pytest.raises(InputError, match="page 1 is corrupt or truncated"):
        load_pages([data[: len(data) // 2]], limits)
    png = encoded(page_image, "PNG")
    corrupt = png[:200] + bytes(len(png) - 400) + png[-200:]
    with pytest.raises(InputError, match="corrupt or truncated"):
        load_pages([corrupt], limits)


def test_oversized_files_are_refused(page_image: Image.Image) -> None:
    data = jpeg_bytes(page_image)
    with pytest.raises(InputError, match="rescan it at a lower resolution"):
        load_pages([data], CopySection.model_validate({"max_page_bytes": 100_000}))


def test_small_images_are_refused(limits: CopySection) -> None:
    data = jpeg_bytes(scan_page((200, 280)))
    with pytest.raises(InputError, match="only 200x280 pixels"):
        load_pages([data], limits)


def bomb_png(width: int, height: int) -> bytes:
    """Return a tiny PNG whose header claims a huge greyscale image."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = b"\x00" + bytes(width)
    body = zlib.compress(row * 64, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", body)
        + chunk(b"IEND", b"")
    )


def test_decompression_bomb_is_refused_from_its_header(limits: CopySection) -> None:
    bomb = bomb_png(8_000, 8_000)
    assert len(bomb) < 100_000
    with pytest.raises(InputError, match="8000x8000 pixels, more than 40000000"):
        load_pages([bomb], limits)
    huge = bomb_png(50_000, 50_000)
    with pytest.raises(InputError, match=r"page 1 .* decompression bomb"):
        load_pages([huge], limits)


def test_pdf_that_is_not_a_pdf_is_refused(limits: CopySection) -> None:
    with pytest.raises(InputError, match="file 1 \\(PDF\\) is not a readable PDF"):
        load_pages([b"%PDF-1.7\n garbage garbage"], limits)
    with pytest.raises(InputError, match="not a JPEG or PNG image"):
        load_pages([b"<html>not a pdf</html>"], limits)
