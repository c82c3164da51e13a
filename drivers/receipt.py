"""A receipt's content, and Vietnamese text rendered as a printable image.

Printer code pages handle Vietnamese badly (stacked tone marks are missing),
so text that is not plain ASCII is drawn with a TrueType font into a
one-bit image as wide as the paper.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from drivers.errors import ReceiptError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Receipt:
    """What a citizen takes away: the copy's identifier, code and a QR."""

    identifier: str
    access_code: str
    lines: tuple[str, ...] = ()
    qr_payload: str | None = None
    footer: tuple[str, ...] = field(default_factory=tuple)
    code_label: str = "Mã tra cứu:"

    def check(self) -> None:
        """Refuse a receipt that cannot be printed correctly."""
        for label, value in (
            ("identifier", self.identifier),
            ("code", self.access_code),
        ):
            if not value or not value.isascii() or not value.isprintable():
                raise ReceiptError(
                    f"the receipt's {label} must be printable ASCII and not empty"
                )
        if self.qr_payload is not None and not self.qr_payload:
            raise ReceiptError("the receipt's QR payload is empty")


@lru_cache(maxsize=8)
def load_font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    """Load a TrueType font, or say which package provides it."""
    try:
        return ImageFont.truetype(str(path), size)
    except OSError as exc:
        raise ReceiptError(
            f"cannot load the receipt font {path}: install fonts-dejavu-core or "
            "set receipt_printer.font"
        ) from exc


def wrap_line(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Split ``text`` into lines no wider than ``width`` pixels."""
    words = text.split()
    if not words:
        return [""]
    lines, current = [], words[0]
    for word in words[1:]:
        candidate = f"{current} {word}"
        if font.getlength(candidate) <= width:
            current = candidate
        else:
            lines.append(current)
            current = word
    lines.append(current)
    return lines


def render_text(
    lines: tuple[str, ...] | list[str], font_path: Path, size: int, width: int
) -> Image.Image:
    """Draw ``lines`` left-aligned, wrapped, black on white, as a 1-bit image."""
    font = load_font(font_path, size)
    wrapped = [part for line in lines for part in wrap_line(line, font, width - 8)]
    ascent, descent = font.getmetrics()
    step = ascent + descent + size // 4
    image = Image.new("L", (width, max(1, step * len(wrapped))), 255)
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(wrapped):
        draw.text((4, number * step), line, font=font, fill=0)
    return image.point(lambda value: 255 if value > 128 else 0).convert("1")
