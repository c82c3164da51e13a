"""USB cameras through V4L2, read with OpenCV (``opencv-python-headless``).

OpenCV's capture object is not thread-safe, so every call holds one lock;
its reads take no timeout, so :class:`~drivers.camera.Camera` bounds them.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

from drivers.camera import CaptureMode, Pixels
from drivers.errors import BackendMissingError, CaptureError, DeviceUnavailableError

logger = logging.getLogger(__name__)


def _import_cv2() -> Any:
    try:
        import cv2
    except ImportError as exc:
        raise BackendMissingError(
            "the v4l2 camera backend needs OpenCV: pip install "
            "opencv-python-headless (or install the project's 'edge' extra)"
        ) from exc
    return cv2


class V4l2CameraBackend:
    """A USB camera: preview at one size, stills at full size."""

    def __init__(
        self,
        device: str,
        preview_size: tuple[int, int] = (640, 480),
        still_size: tuple[int, int] = (1920, 1080),
    ) -> None:
        self.device = device
        self.preview_size = preview_size
        self.still_size = still_size
        self._cv2 = _import_cv2()
        self._lock = threading.Lock()
        self._capture: Any = None

    def open(self) -> None:
        """Open the device at preview size."""
        cv2 = self._cv2
        target: int | str = int(self.device) if self.device.isdigit() else self.device
        with self._lock:
            capture = cv2.VideoCapture(target, cv2.CAP_V4L2)
            if not capture.isOpened():
                raise DeviceUnavailableError(
                    f"V4L2 camera {self.device} cannot be opened; check the cable "
                    "and that the device node exists (ls /dev/video*)"
                )
            self._capture = capture
            self._resize(self.preview_size)

    def close(self) -> None:
        """Release the device."""
        with self._lock:
            if self._capture is not None:
                self._capture.release()
                self._capture = None

    def set_mode(self, mode: CaptureMode) -> None:
        """Turn on autofocus and automatic exposure (UVC has no scene modes)."""
        cv2 = self._cv2
        with self._lock:
            if self._capture is None:
                return
            self._capture.set(cv2.CAP_PROP_AUTOFOCUS, 1)
            self._capture.set(cv2.CAP_PROP_AUTO_EXPOSURE, 3)

    def read(self, timeout: float) -> Pixels | None:
        """Return the next frame, converted to RGB; None on a failed grab."""
        with self._lock:
            return self._grab()

    def capture_still(self, mode: CaptureMode) -> Pixels:
        """Switch to full size, grab one frame, switch back."""
        with self._lock:
            self._resize(self.still_size)
            try:
                image = self._grab()
            finally:
                self._resize(self.preview_size)
        if image is None:
            raise CaptureError(f"V4L2 camera {self.device} returned no still image")
        return image

    def _resize(self, size: tuple[int, int]) -> None:
        cv2 = self._cv2
        self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
        self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])

    def _grab(self) -> Pixels | None:
        if self._capture is None:
            raise CaptureError(f"V4L2 camera {self.device} is not open")
        ok, image = self._capture.read()
        if not ok or image is None:
            return None
        rgb = self._cv2.cvtColor(image, self._cv2.COLOR_BGR2RGB)
        return np.asarray(rgb, dtype=np.uint8)
