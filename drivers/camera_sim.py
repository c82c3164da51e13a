"""A simulated camera that plays image files, with faults tests can inject.

It plays one image, or a directory of images in name order (a face turning,
for the liveness check), at the configured rate; without a source it draws a
numbered test card. Tests call :meth:`SimulatedCameraBackend.stall`,
:meth:`corrupt` and :meth:`unplug` to exercise the watchdog and health.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from drivers.camera import CaptureMode, Pixels
from drivers.errors import CaptureError, DeviceUnavailableError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def list_images(source: Path) -> list[Path]:
    """Return the image files of ``source`` (a file or a directory), in order."""
    if source.is_dir():
        files = [
            p for p in sorted(source.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES
        ]
    else:
        files = [source]
    if not files or not all(path.is_file() for path in files):
        raise DeviceUnavailableError(
            f"simulated camera source {source} holds no image files; set "
            "cameras.<name>.source to an image or a directory of images"
        )
    return files


def test_card(width: int, height: int, number: int) -> Pixels:
    """Draw a test card with ``number`` on it."""
    ramp = np.linspace(0, 255, width, dtype=np.uint8)
    image = np.stack([np.tile(ramp, (height, 1))] * 3, axis=2)
    card = Image.fromarray(image, "RGB")
    ImageDraw.Draw(card).text((10, 10), f"kiosk {number}", fill=(255, 0, 0))
    return np.asarray(card, dtype=np.uint8).copy()


class SimulatedCameraBackend:
    """Play images as a camera would deliver them."""

    def __init__(
        self,
        source: Path | None = None,
        fps: float = 15.0,
        preview_size: tuple[int, int] = (640, 480),
        still_size: tuple[int, int] = (1280, 960),
        loop: bool = True,
    ) -> None:
        self.source = source
        self.interval = 1.0 / fps
        self.preview_size = preview_size
        self.still_size = still_size
        self.loop = loop
        self.mode = CaptureMode.DOCUMENT
        self.opened = 0
        self._lock = threading.Lock()
        self._files = list_images(source) if source is not None else []
        self._index = 0
        self._count = 0
        self._is_open = False
        self._stalled = threading.Event()
        self._corrupt_left = 0
        self._corrupt_stills = 0
        self._unplugged = False

    def stall(self) -> None:
        """Stop delivering frames until the pipeline is reopened."""
        self._stalled.set()

    def corrupt(self, count: int) -> None:
        """Deliver ``count`` corrupt frames next."""
        with self._lock:
            self._corrupt_left = count

    def corrupt_stills(self, count: int) -> None:
        """Return ``count`` corrupt still images next."""
        with self._lock:
            self._corrupt_stills = count

    def unplug(self) -> None:
        """Act as if the camera were unplugged: reads and opens fail."""
        with self._lock:
            self._unplugged = True

    def replug(self) -> None:
        """Act as if the camera were plugged back in."""
        with self._lock:
            self._unplugged = False

    def open(self) -> None:
        """Start playing; fail when unplugged."""
        with self._lock:
            if self._unplugged:
                raise DeviceUnavailableError("simulated camera is unplugged")
            self._is_open = True
            self.opened += 1
        self._stalled.clear()

    def close(self) -> None:
        """Stop playing."""
        with self._lock:
            self._is_open = False

    def set_mode(self, mode: CaptureMode) -> None:
        """Remember the mode (a simulated camera has no optics)."""
        self.mode = mode

    def read(self, timeout: float) -> Pixels | None:
        """Return the next frame at the configured rate."""
        if self._stalled.is_set():
            time.sleep(timeout)
            return None
        time.sleep(min(self.interval, timeout))
        with self._lock:
            if self._unplugged or not self._is_open:
                raise CaptureError("simulated camera is not open")
            if self._corrupt_left > 0:
                self._corrupt_left -= 1
                return np.zeros((0, 0), dtype=np.uint8)
        return self._next_image(self.preview_size)

    def capture_still(self, mode: CaptureMode) -> Pixels:
        """Return the current image at still resolution."""
        with self._lock:
            if self._unplugged or not self._is_open:
                raise CaptureError("simulated camera is not open")
            if self._corrupt_stills > 0:
                self._corrupt_stills -= 1
                return np.zeros((2, 2), dtype=np.uint8)
        return self._next_image(self.still_size)

    def _next_image(self, size: tuple[int, int]) -> Pixels:
        with self._lock:
            self._count += 1
            if not self._files:
                return test_card(size[0], size[1], self._count)
            path = self._files[self._index]
            if self._index + 1 < len(self._files):
                self._index += 1
            elif self.loop:
                self._index = 0
        with Image.open(path) as image:
            rgb = image.convert("RGB")
            if rgb.size != size:
                rgb = rgb.resize(size)
            return np.asarray(rgb, dtype=np.uint8).copy()
