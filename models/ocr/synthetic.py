"""Render Vietnamese documents with real fonts, with ground truth.

Used by the tests and the bench: the four document types of
:mod:`models.ocr.documents` (ID card front, birth certificate, diploma,
residence confirmation) rendered clean with DejaVu or Noto fonts (bold
titles), and camera-like versions (lower resolution, perspective, blur,
uneven light and shadow, noise, JPEG). The people are invented.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from models.images import BgrImage
from models.ocr.documents import DOCUMENT_TYPES, Document, invent_document

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

BOLD_FILES = {
    "DejaVuSans.ttf": "DejaVuSans-Bold.ttf",
    "DejaVuSerif.ttf": "DejaVuSerif-Bold.ttf",
    "NotoSans-Regular.ttf": "NotoSans-Bold.ttf",
    "NotoSerif-Regular.ttf": "NotoSerif-Bold.ttf",
}
PAGE_WIDTH = 1240  # A4 at 150 dpi
CARD_SIZE = (1012, 638)  # an ID-1 card at 300 dpi
CARD_TEXT_LEFT = 300
CARD_GROUND = (246, 238, 226)  # pale blue-green, BGR
TITLE_LINES = 4
BORDER_SHARE = 0.06  # desk around the page in a camera frame
TILT_SHARE = 0.04  # corner displacement of the perspective tilt
DESK_COLOUR = (80, 86, 92)


@dataclass(frozen=True)
class SamplePage:
    """A rendered page, the text of each of its lines and its true fields."""

    image: BgrImage
    lines: list[str]
    font: str
    document_type: str = "residence_confirmation"
    fields: dict[str, str] = dataclass_field(default_factory=dict)


def available_fonts() -> list[Path]:
    """Return the installed fonts used for rendering."""
    found = [d / name for d in FONT_DIRS for name in FONT_FILES if (d / name).is_file()]
    if not found:
        raise FileNotFoundError(
            "no DejaVu or Noto fonts; apt-get install fonts-dejavu-core"
        )
    return found


def render_page(seed: int, font: Path, size: int = 30) -> SamplePage:
    """Render one clean document (type chosen by ``seed``) with ``font``."""
    rng = random.Random(seed)
    document = invent_document(rng, DOCUMENT_TYPES[seed % len(DOCUMENT_TYPES)])
    if document.document_type == "citizen_id_card":
        image = _render_card(document, font, rng)
    else:
        image = _render_sheet(document, font, size, rng)
    bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
    return SamplePage(
        np.asarray(bgr, dtype=np.uint8),
        document.lines,
        font.name,
        document.document_type,
        document.fields,
    )


def _bold(font: Path) -> Path:
    bold = font.with_name(BOLD_FILES.get(font.name, font.name))
    return bold if bold.is_file() else font


def _is_title(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and all(c.isupper() for c in letters)


def _render_sheet(
    document: Document, font: Path, size: int, rng: random.Random
) -> Image.Image:
    regular = ImageFont.truetype(str(font), size)
    bold = ImageFont.truetype(str(_bold(font)), size)
    step = int(size * 2.0)
    page = Image.new("RGB", (PAGE_WIDTH, 160 + len(document.lines) * step), "white")
    draw = ImageDraw.Draw(page)
    y = 80
    for index, text in enumerate(document.lines):
        face = bold if _is_title(text) else regular
        if index < TITLE_LINES and (_is_title(text) or text.startswith("Độc")):
            x = (page.width - draw.textlength(text, font=face)) / 2
        else:
            x = 90
        ink = rng.randint(0, 50)
        draw.text((x, y), text, fill=(ink, ink, ink), font=face)
        y += step
    return page


def _render_card(document: Document, font: Path, rng: random.Random) -> Image.Image:
    small = ImageFont.truetype(str(font), 24)
    name_face = ImageFont.truetype(str(_bold(font)), 30)
    title = ImageFont.truetype(str(_bold(font)), 28)
    card = Image.new("RGB", CARD_SIZE, CARD_GROUND[::-1])
    draw = ImageDraw.Draw(card)
    draw.rectangle((40, 200, 260, 480), fill=(150, 150, 160), outline=(90, 90, 90))
    draw.ellipse((95, 250, 205, 370), fill=(120, 110, 110))
    y = 22
    for text in document.lines:
        upper = _is_title(text)
        face = name_face if upper and text not in document.lines[:3] else small
        face = title if text in document.lines[:3] else face
        right = CARD_SIZE[0] - CARD_TEXT_LEFT - 20
        x = CARD_TEXT_LEFT + (right - draw.textlength(text, font=face)) / 2
        if text not in document.lines[:3]:
            x = CARD_TEXT_LEFT
            while draw.textlength(text, font=face) > right and face.size > 14:
                face = ImageFont.truetype(str(font), face.size - 2)
        ink = rng.randint(0, 40)
        draw.text((x, y), text, fill=(ink, ink, ink + 20), font=face)
        y += 44 if face is not small else 42
    return card


def camera_version(page: SamplePage, seed: int) -> SamplePage:
    """Return the page as a kiosk's document camera might see it.

    Lower effective resolution, a perspective tilt, defocus blur, uneven
    light with a shadow, sensor noise and JPEG compression.
    """
    rng = np.random.default_rng(seed)
    image = page.image
    h, w = image.shape[:2]
    shrink = rng.uniform(0.53, 0.66)
    small = cv2.resize(
        image, (round(w * shrink), round(h * shrink)), interpolation=cv2.INTER_AREA
    )
    h, w = small.shape[:2]
    border = round(BORDER_SHARE * max(h, w))
    framed_w, framed_h = w + 2 * border, h + 2 * border
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    jitter = rng.uniform(-1, 1, (4, 2)).astype(np.float32) * TILT_SHARE * [w, h]
    moved = corners + border + jitter
    matrix = cv2.getPerspectiveTransform(corners, moved.astype(np.float32))
    warped = cv2.warpPerspective(
        small, matrix, (framed_w, framed_h), borderValue=DESK_COLOUR
    )
    h, w = framed_h, framed_w
    blurred = cv2.GaussianBlur(warped, (0, 0), rng.uniform(0.85, 1.3))
    light = _uneven_light(rng, h, w)
    noisy = blurred.astype(np.float32) * light + rng.normal(0, 6, blurred.shape)
    clipped = np.clip(noisy, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(clipped[:, :, ::-1]).save(
        buffer, "JPEG", quality=int(rng.integers(35, 60))
    )
    decoded = np.asarray(Image.open(buffer).convert("RGB"))[:, :, ::-1]
    return SamplePage(
        np.ascontiguousarray(decoded),
        page.lines,
        page.font,
        page.document_type,
        page.fields,
    )


def _uneven_light(rng: np.random.Generator, h: int, w: int) -> NDArray[np.float32]:
    """Return a light falloff across the page and a soft shadow's darkening."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (xs / w) * np.cos(angle) + (ys / h) * np.sin(angle)
    ramp = (ramp - ramp.min()) / max(1e-6, float(np.ptp(ramp)))
    light = rng.uniform(0.6, 0.8) + (1 - rng.uniform(0.6, 0.8)) * ramp
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    radius = rng.uniform(0.2, 0.4) * max(h, w)
    shadow = np.exp(-(((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * radius**2)))
    light = light * (1 - rng.uniform(0.1, 0.25) * shadow)
    return np.asarray(light[:, :, None], dtype=np.float32)
