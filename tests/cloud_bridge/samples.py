"""Generate synthetic page images and PDFs for the bridge's tests.

Nothing binary is committed: every sample is drawn here, deterministically.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
A4_300DPI = (2480, 3508)


def scan_page(
    size: tuple[int, int] = (1240, 1754), seed: int = 1, title: str = "GIẤY KHAI SINH"
) -> Image.Image:
    """Return a greyish RGB page with a title, ruled text lines and a stamp."""
    rng = random.Random(seed)
    width, height = size
    page = Image.new("RGB", size, (246, 244, 238))
    draw = ImageDraw.Draw(page)
    scale = width / 1240
    title_font = ImageFont.truetype(str(FONT), int(44 * scale))
    body_font = ImageFont.truetype(str(FONT), int(24 * scale))
    draw.text((width * 0.28, height * 0.06), title, fill=(20, 20, 20), font=title_font)
    y = height * 0.14
    while y < height * 0.85:
        words = " ".join(
            "".join(rng.choice("aăâbcdđeêghiklmnoôơpqrstuưvxy") for _ in range(6))
            for _ in range(8)
        )
        draw.text((width * 0.08, y), words, fill=(40, 40, 60), font=body_font)
        y += 42 * scale
    stamp = (
        int(width * 0.62),
        int(height * 0.78),
        int(width * 0.86),
        int(height * 0.9),
    )
    draw.ellipse(stamp, outline=(200, 30, 30), width=max(2, int(6 * scale)))
    return page


def jpeg_bytes(
    image: Image.Image,
    quality: int = 85,
    progressive: bool = False,
    orientation: int | None = None,
    dpi: tuple[int, int] = (150, 150),
) -> bytes:
    """Return ``image`` encoded as JPEG, optionally with an EXIF orientation."""
    out = io.BytesIO()
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(
        out,
        "JPEG",
        quality=quality,
        progressive=progressive,
        exif=exif.tobytes(),
        dpi=dpi,
    )
    return out.getvalue()


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    """Return ``image`` encoded in ``fmt`` (PNG, GIF, TIFF, ...)."""
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def pdf_bytes(pages: int, size: tuple[int, int] = (827, 1169)) -> bytes:
    """Return a PDF of ``pages`` A4 pages (100 dpi images)."""
    images = [scan_page(size, seed=n) for n in range(pages)]
    out = io.BytesIO()
    images[0].save(
        out, "PDF", save_all=True, append_images=images[1:], resolution=100.0
    )
    return out.getvalue()


def a4_scan_jpeg() -> bytes:
    """Return a 2480x3508 (A4, 300 dpi) JPEG scan of about 1.4 MB."""
    return jpeg_bytes(scan_page(A4_300DPI, seed=7), quality=92, dpi=(300, 300))
