"""Raspberry Pi cameras through picamera2, imported only when used.

picamera2 needs libcamera's Python bindings, which exist only on Raspberry Pi
OS (``apt install python3-picamera2``); elsewhere this backend raises
:class:`~drivers.errors.BackendMissingError` naming what to install.
"""

from __future__ import annotations

import importlib
import logging
import threading
from typing import Any

import numpy as np

from drivers.camera import CaptureMode, Pixels
from drivers.errors import BackendMissingError, DeviceUnavailableError

logger = logging.getLogger(__name__)

# libcamera controls per purpose: documents want a fixed, sharp close focus
# and exposure metered over the whole page; faces want continuous focus and
# centre-weighted metering.
MODE_CONTROLS: dict[CaptureMode, dict[str, Any]] = {
    CaptureMode.DOCUMENT: {"AfMode": 1, "AeMeteringMode": 2, "AeEnable": True},
    CaptureMode.FACE: {"AfMode": 2, "AeMeteringMode": 0, "AeEnable": True},
}


def import_picamera2() -> Any:
    """Return the ``picamera2.Picamera2`` class, or say what to install."""
    try:
        module = importlib.import_module("picamera2")
    except ImportError as exc:
        raise BackendMissingError(
            "the picamera2 camera backend needs picamera2 and libcamera's Python "
            "bindings, found only on Raspberry Pi OS: sudo apt install "
            "python3-picamera2 python3-libcamera (and create the virtualenv with "
            "--system-site-packages); elsewhere use backend = 'v4l2' or "
            f"'simulated' ({exc})"
        ) from exc
    return module.Picamera2


class Picamera2Backend:
    """A Raspberry Pi camera module: RGB preview, full-size stills."""

    def __init__(
        self,
        index: int = 0,
        preview_size: tuple[int, int] = (640, 480),
        still_size: tuple[int, int] = (2592, 1944),
    ) -> None:
        self.index = index
        self.preview_size = preview_size
        self.still_size = still_size
        self._class = import_picamera2()
        self._camera: Any = None
        self._still_config: Any = None
        self._lock = threading.Lock()

    def open(self) -> None:
        """Configure the preview and still streams and start the camera."""
        with self._lock:
            try:
                camera = self._class(self.index)
            except (IndexError, RuntimeError) as exc:
                raise DeviceUnavailableError(
                    f"Raspberry Pi camera {self.index} is not detected; check the "
                    "ribbon cable and run 'rpicam-hello --list-cameras'"
                ) from exc
            preview = camera.create_preview_configuration(
                main={"size": self.preview_size, "format": "RGB888"}
            )
            self._still_config = camera.create_still_configuration(
                main={"size": self.still_size, "format": "RGB888"}
            )
            camera.configure(preview)
            camera.start()
            self._camera = camera

    def close(self) -> None:
        """Stop and release the camera."""
        with self._lock:
            if self._camera is not None:
                self._camera.stop()
                self._camera.close()
                self._camera = None

    def set_mode(self, mode: CaptureMode) -> None:
        """Apply the focus and exposure controls for ``mode``."""
        if self._camera is not None:
            self._camera.set_controls(MODE_CONTROLS[mode])

    def read(self, timeout: float) -> Pixels | None:
        """Return the newest preview frame as RGB."""
        camera = self._camera
        if camera is None:
            return None
        array = camera.capture_array("main")
        # picamera2's "RGB888" is laid out B, G, R in memory.
        return np.ascontiguousarray(array[:, :, 2::-1], dtype=np.uint8)

    def capture_still(self, mode: CaptureMode) -> Pixels:
        """Switch to the still configuration for one full-size image."""
        with self._lock:
            if self._camera is None:
                raise DeviceUnavailableError("Raspberry Pi camera is not open")
            self._camera.set_controls(MODE_CONTROLS[mode])
            array = self._camera.switch_mode_and_capture_array(
                self._still_config, "main"
            )
        return np.ascontiguousarray(array[:, :, 2::-1], dtype=np.uint8)
