"""Render Vietnamese document-like pages with real fonts, with ground truth.

Used by the tests and the bench: clean pages, and camera-like ones (slight
perspective, blur, uneven light, sensor noise, JPEG). The names, numbers and
addresses are invented.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from models.images import BgrImage

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/truetype/noto"),
)
FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSerif.ttf",
    "NotoSans-Regular.ttf",
    "NotoSerif-Regular.ttf",
)

FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Vũ", "Đặng", "Bùi", "Đỗ")
MIDDLE = ("Văn", "Thị", "Hữu", "Minh", "Ngọc", "Thanh", "Đức", "Quang")
GIVEN = ("An", "Bình", "Hiếu", "Lan", "Hương", "Dũng", "Tuấn", "Phương", "Quỳnh", "Sơn")
PLACES = ("Hà Nội", "Hải Phòng", "Đà Nẵng", "Cần Thơ", "Thừa Thiên Huế", "Nghệ An")
TEMPLATE = (
    "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
    "Độc lập - Tự do - Hạnh phúc",
    "GIẤY XÁC NHẬN THÔNG TIN VỀ CƯ TRÚ",
    "Họ, chữ đệm và tên: {name}",
    "Ngày, tháng, năm sinh: {birth}",
    "Số định danh cá nhân: {number}",
    "Nơi thường trú: Số {house} đường Lý Thường Kiệt, {place}",
    "Quan hệ với chủ hộ: con đẻ",
    "Cấp ngày {issued} tại Công an {place}",
)


@dataclass(frozen=True)
class SamplePage:
    """A rendered page and the text of each of its lines."""

    image: BgrImage
    lines: list[str]
    font: str


def available_fonts() -> list[Path]:
    """Return the installed fonts used for rendering."""
    found = [d / name for d in FONT_DIRS for name in FONT_FILES if (d / name).is_file()]
    if not found:
        raise FileNotFoundError(
            "no DejaVu or Noto fonts; apt-get install fonts-dejavu-core"
        )
    return found


def sample_lines(rng: random.Random) -> list[str]:
    """Return the invented fields of one residence confirmation page."""
    values = {
        "name": f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}",
        "birth": _date(rng, 1950, 2005),
        "number": "0" + "".join(str(rng.randint(0, 9)) for _ in range(11)),
        "house": str(rng.randint(1, 300)),
        "place": rng.choice(PLACES),
        "issued": _date(rng, 2024, 2024),
    }
    return [line.format(**values) for line in TEMPLATE]


def _date(rng: random.Random, first_year: int, last_year: int) -> str:
    day, month = rng.randint(1, 28), rng.randint(1, 12)
    return f"{day:02d}/{month:02d}/{rng.randint(first_year, last_year)}"


def render_page(seed: int, font: Path, size: int = 34) -> SamplePage:
    """Render one clean page (about 150 dpi A5) with ``font``."""
    rng = random.Random(seed)
    lines = sample_lines(rng)
    face = ImageFont.truetype(str(font), size)
    page = Image.new("L", (1240, 140 + len(lines) * int(size * 2.1)), 255)
    draw = ImageDraw.Draw(page)
    y = 70
    for i, text in enumerate(lines):
        width = draw.textlength(text, font=face)
        x = (page.width - width) / 2 if i < 3 else 90
        draw.text((x, y), text, fill=rng.randint(0, 40), font=face)
        y += int(size * 2.1)
    bgr = cv2.cvtColor(np.asarray(page), cv2.COLOR_GRAY2BGR)
    return SamplePage(np.asarray(bgr, dtype=np.uint8), lines, font.name)


def camera_version(page: SamplePage, seed: int) -> SamplePage:
    """Return the page as a phone camera might see it."""
    rng = np.random.default_rng(seed)
    image = page.image
    h, w = image.shape[:2]
    margin = 0.03 * np.array([w, h])
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    moved = corners + rng.uniform(-1, 1, (4, 2)).astype(np.float32) * margin
    matrix = cv2.getPerspectiveTransform(corners, moved.astype(np.float32))
    warped = cv2.warpPerspective(image, matrix, (w, h), borderValue=(235, 235, 235))
    blurred = cv2.GaussianBlur(warped, (0, 0), rng.uniform(0.6, 1.1))
    light = np.linspace(rng.uniform(0.75, 0.9), 1.0, w, dtype=np.float32)[None, :, None]
    noisy = blurred.astype(np.float32) * light + rng.normal(0, 4, blurred.shape)
    clipped = np.clip(noisy, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(clipped[:, :, ::-1]).save(
        buffer, "JPEG", quality=int(rng.integers(55, 80))
    )
    decoded = np.asarray(Image.open(buffer).convert("RGB"))[:, :, ::-1]
    return SamplePage(np.ascontiguousarray(decoded), page.lines, page.font)
