"""Cameras: a preview stream, full-resolution stills, and a frame watchdog.

:class:`Camera` is what the agent uses. It owns a capture thread that keeps
the latest preview frame, and a watchdog thread that notices when frames
stop arriving and restarts the backend's pipeline. Every method is
synchronous with a timeout and safe to call from any thread; from asyncio,
call them through ``asyncio.to_thread``. Frames are RGB ``uint8`` arrays of
shape (height, width, 3).

A backend (:class:`CameraBackend`) drives one kind of camera: picamera2,
V4L2 through OpenCV, or the simulated camera that plays image files.
"""

from __future__ import annotations

import enum
import io
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from drivers.errors import CaptureError, DeviceTimeoutError, DeviceUnavailableError
from drivers.health import Capability, Health, HealthState, HealthTracker, Reason
from drivers.timeouts import call_with_timeout

logger = logging.getLogger(__name__)

Pixels = NDArray[np.uint8]
MJPEG_BOUNDARY = "kioskframe"


class CaptureMode(enum.StrEnum):
    """What a capture is for: it sets focus and exposure."""

    DOCUMENT = "document"
    FACE = "face"


@dataclass(frozen=True)
class Frame:
    """One image from a camera, numbered from the camera's start."""

    image: Pixels
    sequence: int
    timestamp: float

    @property
    def size(self) -> tuple[int, int]:
        """Return (width, height)."""
        return int(self.image.shape[1]), int(self.image.shape[0])


class CameraBackend(Protocol):
    """One kind of camera; its methods may block and must be thread-safe."""

    def open(self) -> None:
        """Start the pipeline; raise DeviceUnavailableError when absent."""

    def read(self, timeout: float) -> Pixels | None:
        """Return the next preview frame, or None when none came in time."""

    def capture_still(self, mode: CaptureMode) -> Pixels:
        """Return one full-resolution image taken for ``mode``."""

    def set_mode(self, mode: CaptureMode) -> None:
        """Set focus and exposure for ``mode``."""

    def close(self) -> None:
        """Stop the pipeline and release the device."""


class UnavailableCameraBackend:
    """Stand in for a backend that cannot load, so the kiosk still starts.

    The camera then reports failed with the reason (what to install), and
    only the steps that need it are disabled.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def open(self) -> None:
        """Refuse to open, giving the reason."""
        raise DeviceUnavailableError(self.reason)

    def read(self, timeout: float) -> Pixels | None:
        """Refuse to read, giving the reason."""
        raise DeviceUnavailableError(self.reason)

    def capture_still(self, mode: CaptureMode) -> Pixels:
        """Refuse to capture, giving the reason."""
        raise DeviceUnavailableError(self.reason)

    def set_mode(self, mode: CaptureMode) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""


def is_valid_image(image: object) -> bool:
    """Return whether ``image`` is a non-empty RGB uint8 array."""
    return (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
        and image.shape[0] > 0
        and image.shape[1] > 0
    )


def encode_jpeg(image: Pixels, quality: int = 80) -> bytes:
    """Return ``image`` as JPEG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(image, "RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def mjpeg_part(jpeg: bytes) -> bytes:
    """Wrap one JPEG as a part of a ``multipart/x-mixed-replace`` stream."""
    head = (
        f"--{MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
        f"Content-Length: {len(jpeg)}\r\n\r\n"
    )
    return head.encode("ascii") + jpeg + b"\r\n"


class Camera:
    """A camera with a live preview, stills, health and a stall watchdog."""

    def __init__(
        self,
        name: str,
        backend: CameraBackend,
        role: CaptureMode = CaptureMode.DOCUMENT,
        stall_timeout: float = 2.0,
        max_restarts: int = 3,
        corrupt_limit: int = 5,
    ) -> None:
        self.name = name
        self.backend = backend
        self.role = role
        self.stall_timeout = stall_timeout
        self.max_restarts = max_restarts
        self.corrupt_limit = corrupt_limit
        self.tracker = HealthTracker(
            name, Health(HealthState.FAILED, Reason.NOT_STARTED, since=time.time())
        )
        self.restarts = 0
        self._frame_ready = threading.Condition()
        self._latest: Frame | None = None
        self._sequence = 0
        self._last_frame_at = 0.0
        self._corrupt_in_row = 0
        self._failed_restarts = 0
        self._generation = 0
        self._running = threading.Event()
        # Serialises opening, closing and restarting the backend's pipeline.
        self._pipeline = threading.Lock()
        self._watchdog: threading.Thread | None = None

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Return what this camera lets the agent do."""
        if self.role is CaptureMode.FACE:
            return frozenset({Capability.PREVIEW, Capability.CAPTURE_FACE})
        return frozenset({Capability.PREVIEW, Capability.CAPTURE_DOCUMENT})

    def health(self) -> Health:
        """Return the camera's current health."""
        return self.tracker.get()

    def start(self, timeout: float = 10.0) -> None:
        """Open the camera and start the preview and the watchdog."""
        if self._running.is_set():
            return
        self._running.set()
        self._last_frame_at = time.monotonic()
        try:
            with self._pipeline:
                self._open(timeout)
            self.tracker.ok()
        except (DeviceUnavailableError, DeviceTimeoutError) as exc:
            self.tracker.failed(Reason.CAMERA_GONE, str(exc))
            logger.error("camera %s did not start: %s", self.name, exc)
        self._watchdog = threading.Thread(
            target=self._watch, name=f"camera-watchdog:{self.name}", daemon=True
        )
        self._watchdog.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the preview and the watchdog and release the device."""
        if not self._running.is_set():
            return
        self._running.clear()
        with self._pipeline:
            self._generation += 1
            self._close(timeout)
        if self._watchdog is not None:
            self._watchdog.join(timeout)
        self.tracker.set(
            HealthState.FAILED, Reason.NOT_STARTED, "the camera was stopped", quiet=True
        )

    def latest_frame(self) -> Frame | None:
        """Return the newest preview frame, or None before the first."""
        with self._frame_ready:
            return self._latest

    def next_frame(self, after: int = -1, timeout: float = 2.0) -> Frame:
        """Return the first frame numbered above ``after``, waiting ``timeout``.

        Raises:
            CaptureError: no such frame arrived in time.
        """
        deadline = time.monotonic() + timeout
        with self._frame_ready:
            while self._latest is None or self._latest.sequence <= after:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CaptureError(
                        f"camera {self.name} gave no frame within {timeout:.1f} s "
                        f"({self.health().reason.value or 'no reason known'})"
                    )
                self._frame_ready.wait(left)
            return self._latest

    def frames(self, timeout: float = 2.0) -> Iterator[Frame]:
        """Yield each new preview frame until one takes longer than ``timeout``."""
        sequence = -1
        while self._running.is_set():
            frame = self.next_frame(sequence, timeout)
            sequence = frame.sequence
            yield frame

    def mjpeg(self, quality: int = 70, timeout: float = 2.0) -> Iterator[bytes]:
        """Yield preview frames as parts of an MJPEG (multipart) stream."""
        for frame in self.frames(timeout):
            yield mjpeg_part(encode_jpeg(frame.image, quality))

    def capture_still(
        self, mode: CaptureMode | None = None, timeout: float = 10.0
    ) -> Frame:
        """Take one full-resolution image for ``mode`` (the camera's role).

        Raises:
            DeviceUnavailableError: the camera is not started or has failed.
            DeviceTimeoutError: the camera did not answer in time.
            CaptureError: the camera returned a corrupt image.
        """
        if not self._running.is_set() or not self.health().usable:
            raise DeviceUnavailableError(
                f"camera {self.name} cannot capture: {self.health().reason.value}; "
                "run 'kiosk devices check' and reconnect the camera"
            )
        use = mode or self.role
        image = call_with_timeout(
            lambda: self.backend.capture_still(use), timeout, f"camera {self.name}"
        )
        if not is_valid_image(image):
            self.tracker.degraded(Reason.CORRUPT_FRAMES, "a still image was corrupt")
            raise CaptureError(
                f"camera {self.name} returned a corrupt still image; try again"
            )
        self._sequence += 1
        return Frame(image, self._sequence, time.monotonic())

    def _open(self, timeout: float) -> None:
        call_with_timeout(self.backend.open, timeout, f"opening camera {self.name}")
        call_with_timeout(
            lambda: self.backend.set_mode(self.role), timeout, f"camera {self.name}"
        )
        self._generation += 1
        self._last_frame_at = time.monotonic()
        reader = threading.Thread(
            target=self._read_loop,
            args=(self._generation,),
            name=f"camera:{self.name}",
            daemon=True,
        )
        reader.start()

    def _close(self, timeout: float) -> None:
        try:
            call_with_timeout(self.backend.close, timeout, f"closing {self.name}")
        except Exception as exc:
            logger.warning("camera %s did not close cleanly: %s", self.name, exc)

    def _read_loop(self, generation: int) -> None:
        while self._running.is_set() and generation == self._generation:
            try:
                image = self.backend.read(self.stall_timeout)
            except Exception as exc:
                if generation != self._generation:
                    return
                logger.warning("camera %s read failed: %s", self.name, exc)
                time.sleep(min(0.2, self.stall_timeout))
                continue
            if generation != self._generation or image is None:
                continue
            self._accept(image)

    def _accept(self, image: object) -> None:
        if not is_valid_image(image):
            self._corrupt_in_row += 1
            if self._corrupt_in_row >= self.corrupt_limit:
                self.tracker.degraded(
                    Reason.CORRUPT_FRAMES,
                    f"{self._corrupt_in_row} corrupt frames in a row",
                )
            return
        assert isinstance(image, np.ndarray)
        self._corrupt_in_row = 0
        with self._frame_ready:
            self._sequence += 1
            self._latest = Frame(image, self._sequence, time.monotonic())
            self._last_frame_at = self._latest.timestamp
            self._frame_ready.notify_all()
        self._failed_restarts = 0
        self.tracker.ok()

    def _watch(self) -> None:
        step = max(0.05, self.stall_timeout / 4)
        while self._running.is_set():
            time.sleep(step)
            stalled_for = time.monotonic() - self._last_frame_at
            if self._running.is_set() and stalled_for > self.stall_timeout:
                self._restart(stalled_for)

    def _restart(self, stalled_for: float) -> None:
        if self._failed_restarts >= self.max_restarts:
            self.tracker.failed(
                Reason.CAMERA_GONE,
                f"no frame for {stalled_for:.1f} s after "
                f"{self._failed_restarts} restarts",
            )
        elif self.health().reason is not Reason.CAMERA_GONE:
            self.tracker.degraded(
                Reason.FRAMES_STALLED, f"no frame for {stalled_for:.1f} s"
            )
        logger.warning("camera %s stalled; restarting its pipeline", self.name)
        with self._pipeline:
            if not self._running.is_set():
                return
            self._generation += 1
            self._close(self.stall_timeout)
            self.restarts += 1
            self._failed_restarts += 1
            try:
                self._open(self.stall_timeout * 2)
            except Exception as exc:
                logger.warning("camera %s restart failed: %s", self.name, exc)
                self._last_frame_at = time.monotonic()
