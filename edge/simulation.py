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
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

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


def draw_id_card(
    qr_text: str = SAMPLE_QR,
    with_face: bool = True,
    portrait: Image.Image | None = None,
) -> Image.Image:
    """Return a card on a dark desk: portrait left, QR top right.

    ``portrait`` replaces the drawn face with a photo (for the face models).
    """
    desk = Image.new("RGB", (1280, 960), (40, 40, 48))
    card = Image.new("RGB", (1000, 630), (236, 240, 232))
    draw = ImageDraw.Draw(card)
    font = ImageFont.truetype(str(FONT), 28)
    draw.text((330, 40), "CĂN CƯỚC CÔNG DÂN", fill=(160, 20, 20), font=font)
    if portrait is not None:
        card.paste(ImageOps.fit(portrait.convert("RGB"), (300, 400)), (20, 150))
    elif with_face:
        card.paste(draw_face((300, 400), 0.0, SKIN), (20, 150))
    buffer = io.BytesIO()
    segno.make(qr_text, error="m").save(buffer, kind="png", scale=5, border=2)
    buffer.seek(0)
    qr = Image.open(buffer).convert("RGB")
    card.paste(qr, (1000 - qr.width - 20, 20))
    desk.paste(card, (140, 165))
    return desk


SAMPLE_PAGE = (
    "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
    "Độc lập - Tự do - Hạnh phúc",
    "GIẤY KHAI SINH",
    "Số: 125/1992",
    "Họ, chữ đệm, tên: NGUYỄN VĂN AN",
    "Ngày, tháng, năm sinh: 15/03/1992",
    "Giới tính: Nam Dân tộc: Kinh",
    "Quốc tịch: Việt Nam",
    "Nơi sinh: Bệnh viện Phụ sản Hà Nội",
    "Quê quán: Hà Nội",
    "Số định danh cá nhân: 001092012345",
    "Ngày, tháng, năm đăng ký: 20/03/1992",
)


def draw_page(number: int, size: tuple[int, int] = (1280, 960)) -> Image.Image:
    """Return a white A4 page of the sample citizen's birth certificate on a desk.

    The text is the kind the OCR models read, so a simulated visit shows
    real readings on the review screen.
    """
    desk = Image.new("RGB", size, (35, 35, 40))
    page_h = int(size[1] * 0.9)
    page_w = int(page_h / 1.414)
    page = Image.new("RGB", (page_w, page_h), (250, 250, 246))
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(str(FONT), 19)
    top = 40
    for line in SAMPLE_PAGE:
        draw.text((36, top), line, fill=(20, 20, 20), font=font)
        top += 44
    draw.text((36, top + 20), f"Trang {number}", fill=(20, 20, 20), font=font)
    desk.paste(page, ((size[0] - page_w) // 2, (size[1] - page_h) // 2))
    return desk


def write_media(
    directory: Path,
    pages: int = 2,
    portrait: Path | None = None,
    face_frames: Path | None = None,
) -> dict[str, Path]:
    """Write the card, face sequence and pages under ``directory``.

    ``portrait`` puts a photo on the card; ``face_frames`` makes the face
    scene from the other photos in that directory (each placed in a camera
    frame). The media are written
    again only when these choices change.
    """
    scenes = {
        "card": directory / "card",
        "face": directory / "face",
        "pages": directory / "pages",
        "idle": directory / "idle",
    }
    source = f"v2 pages={pages} portrait={portrait} faces={face_frames}\n"
    marker = directory / "source.txt"
    written = all(path.is_dir() and any(path.iterdir()) for path in scenes.values())
    if written and marker.is_file() and marker.read_text() == source:
        return scenes
    for path in scenes.values():
        path.mkdir(parents=True, exist_ok=True)
        for old in path.iterdir():
            old.unlink()
    if portrait is not None:
        with Image.open(portrait) as photo:
            draw_id_card(portrait=photo.copy()).save(scenes["card"] / "card.png")
    else:
        draw_id_card().save(scenes["card"] / "card.png")
    if face_frames is not None:
        photos = [p for p in list_images(face_frames) if p != portrait]
        for index, path in enumerate(photos):
            with Image.open(path) as photo:
                framed = in_camera_frame(photo.convert("RGB"))
            framed.save(scenes["face"] / f"f{index:02d}.png")
    else:
        for index, shift in enumerate((-0.06, -0.03, 0.0, 0.03, 0.06, 0.03, 0.0)):
            face = draw_face((640, 480), shift, SKIN)
            face.save(scenes["face"] / f"f{index:02d}.png")
    for number in range(1, pages + 1):
        draw_page(number).save(scenes["pages"] / f"p{number:02d}.png")
    Image.new("RGB", (640, 480), (35, 35, 40)).save(scenes["idle"] / "idle.png")
    marker.write_text(source)
    return scenes


def in_camera_frame(photo: Image.Image) -> Image.Image:
    """Return ``photo`` centred in a 640x480 frame, fading into the background."""
    frame = Image.new("RGB", (640, 480), (100, 110, 120))
    side = min(400, int(400 * photo.width / max(photo.height, 1)))
    face = ImageOps.fit(photo, (side, 400))
    mask = Image.new("L", face.size, 0)
    ImageDraw.Draw(mask).ellipse((20, 20, side - 20, 380), fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(12))
    frame.paste(face, ((640 - side) // 2, 40), mask)
    return frame


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
