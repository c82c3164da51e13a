"""Make the media the simulated cameras play, and switch what they show.

The agent draws an ID card (a QR with made-up citizen data and a drawn
portrait), a short sequence of a drawn face turning, and document pages.
:class:`SceneCameraBackend` plays one of several scenes, so the document
camera shows the card while identifying and the pages while capturing.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from pathlib import Path

import numpy as np
import segno
from PIL import Image, ImageDraw, ImageFont

from drivers.camera import CaptureMode, Pixels
from drivers.camera_sim import list_images
from drivers.errors import CaptureError

logger = logging.getLogger(__name__)

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
SAMPLE_QR = (
    "001092012345||Nguyễn Văn An|15031992|Nam|"
    "Số 1 Tràng Tiền, Hoàn Kiếm, Hà Nội|01072021"
)
SKIN = (224, 172, 140)


def draw_face(
    size: tuple[int, int], shift: float, colour: tuple[int, int, int]
) -> Image.Image:
    """Return a plain background with an oval face moved by ``shift``."""
    width, height = size
    image = Image.new("RGB", size, (60, 70, 90))
    draw = ImageDraw.Draw(image)
    cx = width / 2 + shift * width
    box = (cx - width * 0.18, height * 0.2, cx + width * 0.18, height * 0.8)
    draw.ellipse(box, fill=colour)
    eye_y = height * 0.42
    for dx in (-0.07, 0.07):
        x = cx + dx * width
        draw.ellipse((x - 8, eye_y - 6, x + 8, eye_y + 6), fill=(40, 30, 30))
    return image


def draw_id_card(qr_text: str = SAMPLE_QR, with_face: bool = True) -> Image.Image:
    """Return a card on a dark desk: portrait left, QR top right."""
    desk = Image.new("RGB", (1280, 960), (40, 40, 48))
    card = Image.new("RGB", (1000, 630), (236, 240, 232))
    draw = ImageDraw.Draw(card)
    font = ImageFont.truetype(str(FONT), 28)
    draw.text((330, 40), "CĂN CƯỚC CÔNG DÂN", fill=(160, 20, 20), font=font)
    if with_face:
        portrait = draw_face((300, 400), 0.0, SKIN)
        card.paste(portrait, (20, 150))
    buffer = io.BytesIO()
    segno.make(qr_text, error="m").save(buffer, kind="png", scale=5, border=2)
    buffer.seek(0)
    qr = Image.open(buffer).convert("RGB")
    card.paste(qr, (1000 - qr.width - 20, 20))
    desk.paste(card, (140, 165))
    return desk


def draw_page(number: int, size: tuple[int, int] = (1280, 960)) -> Image.Image:
    """Return a white A4 page with text lines on a dark desk."""
    desk = Image.new("RGB", size, (35, 35, 40))
    page_h = int(size[1] * 0.9)
    page_w = int(page_h / 1.414)
    page = Image.new("RGB", (page_w, page_h), (250, 250, 246))
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(str(FONT), 22)
    draw.text((page_w * 0.2, 40), f"GIẤY KHAI SINH - trang {number}", fill=0, font=font)
    for row in range(24):
        draw.text(
            (50, 100 + row * 30),
            "Họ và tên: Nguyễn Văn An, sinh ngày 15/03/1992 tại Hà Nội",
            fill=(30, 30, 30),
            font=ImageFont.truetype(str(FONT), 16),
        )
    desk.paste(page, ((size[0] - page_w) // 2, (size[1] - page_h) // 2))
    return desk


def write_media(directory: Path, pages: int = 2) -> dict[str, Path]:
    """Write the card, face sequence and pages under ``directory`` (once)."""
    scenes = {
        "card": directory / "card",
        "face": directory / "face",
        "pages": directory / "pages",
        "idle": directory / "idle",
    }
    if all(path.is_dir() and any(path.iterdir()) for path in scenes.values()):
        return scenes
    for path in scenes.values():
        path.mkdir(parents=True, exist_ok=True)
    draw_id_card().save(scenes["card"] / "card.png")
    for index, shift in enumerate((-0.06, -0.03, 0.0, 0.03, 0.06, 0.03, 0.0)):
        draw_face((640, 480), shift, SKIN).save(scenes["face"] / f"f{index:02d}.png")
    for number in range(1, pages + 1):
        draw_page(number).save(scenes["pages"] / f"p{number:02d}.png")
    Image.new("RGB", (640, 480), (35, 35, 40)).save(scenes["idle"] / "idle.png")
    return scenes


class ScenePlayer:
    """Play a directory of images at a frame rate, decoding each file once."""

    def __init__(self, source: Path, fps: float) -> None:
        self.files = list_images(source)
        self.interval = 1.0 / fps
        self._cache: dict[tuple[Path, tuple[int, int]], Pixels] = {}
        self._index = 0
        self._lock = threading.Lock()

    def next_image(self, size: tuple[int, int]) -> Pixels:
        """Return the next image of the sequence at ``size``."""
        with self._lock:
            path = self.files[self._index]
            self._index = (self._index + 1) % len(self.files)
            key = (path, size)
            if key not in self._cache:
                with Image.open(path) as image:
                    rgb = image.convert("RGB").resize(size)
                    self._cache[key] = np.asarray(rgb, dtype=np.uint8)
            return self._cache[key]


class SceneCameraBackend:
    """A simulated camera that plays one of several named scenes."""

    def __init__(
        self,
        scenes: dict[str, Path],
        fps: float = 10.0,
        preview_size: tuple[int, int] = (640, 480),
        still_size: tuple[int, int] = (1280, 960),
    ) -> None:
        self._players = {name: ScenePlayer(path, fps) for name, path in scenes.items()}
        self.interval = 1.0 / fps
        self.preview_size = preview_size
        self.still_size = still_size
        self._lock = threading.Lock()
        self._scene = next(iter(scenes))
        self._open = False

    def show(self, scene: str) -> None:
        """Play ``scene`` from now on."""
        with self._lock:
            if scene in self._players:
                self._scene = scene

    def _current(self) -> ScenePlayer:
        with self._lock:
            if not self._open:
                raise CaptureError("the simulated camera is not open")
            return self._players[self._scene]

    def open(self) -> None:
        """Start playing."""
        with self._lock:
            self._open = True

    def read(self, timeout: float) -> Pixels | None:
        """Return the current scene's next frame at the frame rate."""
        time.sleep(min(self.interval, timeout))
        return self._current().next_image(self.preview_size)

    def capture_still(self, mode: CaptureMode) -> Pixels:
        """Return the current scene's image at still resolution."""
        return self._current().next_image(self.still_size)

    def set_mode(self, mode: CaptureMode) -> None:
        """Nothing to set on a simulated camera."""

    def close(self) -> None:
        """Stop playing."""
        with self._lock:
            self._open = False
