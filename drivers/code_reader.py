"""Code readers: a hardware scanner, or QR codes decoded from camera frames.

``read(timeout)`` returns the first code read, or None when none was read in
time; it blocks the calling thread (use ``asyncio.to_thread`` from asyncio).
Preview frames are decoded with one quick pyzbar pass; a full-resolution
still goes through ``models.qr.decode_qr_codes`` (imported when first used),
which tries harder, or pyzbar when the models package is not installed.
"""

from __future__ import annotations

import importlib
import logging
import queue
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from drivers.camera import Camera, Pixels
from drivers.errors import BackendMissingError, CaptureError, CodeReadError
from drivers.health import Capability, Health, HealthTracker, Reason

logger = logging.getLogger(__name__)

Decoder = Callable[[Pixels], list[str]]
CAPABILITIES = frozenset({Capability.READ_CODES})


class CodeReader(Protocol):
    """What the agent needs to read a citizen ID card's or a copy's code."""

    name: str

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Return what the reader lets the agent do."""

    def health(self) -> Health:
        """Return the reader's health."""

    def read(self, timeout: float) -> str | None:
        """Return the next code read, or None after ``timeout`` seconds."""

    def close(self) -> None:
        """Release the reader's device."""


def fast_decoder() -> Decoder:
    """Return a single-pass pyzbar QR decoder, quick enough for every frame."""
    try:
        pyzbar = importlib.import_module("pyzbar.pyzbar")
    except ImportError as exc:
        raise BackendMissingError(
            "reading codes from the camera needs pyzbar and libzbar0: "
            "pip install pyzbar; apt install libzbar0"
        ) from exc

    def decode_with_pyzbar(image: Pixels) -> list[str]:
        gray = np.asarray(image.mean(axis=2), dtype=np.uint8)
        found: list[Any] = pyzbar.decode(gray, symbols=[pyzbar.ZBarSymbol.QRCODE])
        return [item.data.decode("utf-8", "replace") for item in found]

    return decode_with_pyzbar


def thorough_decoder() -> Decoder:
    """Return the vision code's QR decoder (``models.qr``), or the fast one.

    ``models.qr.decode_qr_codes`` retries with several image preparations;
    on a frame without a code it can take seconds, so it is used on stills.
    """
    try:
        module = importlib.import_module("models.qr")
        decode: Decoder = module.decode_qr_codes
        return decode
    except (ImportError, AttributeError):
        logger.debug("models.qr is not available; decoding with pyzbar")
    return fast_decoder()


class CameraCodeReader:
    """Decode QR codes from a camera's preview frames."""

    def __init__(
        self,
        name: str,
        camera: Camera,
        decoder: Decoder | None = None,
        interval: float = 0.2,
    ) -> None:
        self.name = name
        self.camera = camera
        self.decoder = decoder or fast_decoder()
        self.interval = interval
        self._thorough: Decoder | None = None

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Return what the reader lets the agent do."""
        return CAPABILITIES

    def health(self) -> Health:
        """Return the health of the camera it reads from."""
        return self.camera.health()

    def read(self, timeout: float) -> str | None:
        """Decode frames until one holds a code or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        sequence = -1
        while (left := deadline - time.monotonic()) > 0:
            try:
                frame = self.camera.next_frame(sequence, min(left, 2.0))
            except CaptureError:
                continue
            sequence = frame.sequence
            codes = self.decoder(frame.image)
            if codes:
                return codes[0]
            time.sleep(min(self.interval, max(0.0, deadline - time.monotonic())))
        return None

    def close(self) -> None:
        """Nothing to release: the camera is closed by its owner."""

    def read_still(self, timeout: float = 10.0) -> list[str]:
        """Capture one still and return every code the thorough decoder finds."""
        frame = self.camera.capture_still(timeout=timeout)
        if self._thorough is None:
            self._thorough = thorough_decoder()
        return self._thorough(frame.image)


class SerialCodeReader:
    """A hardware scanner on a serial port that sends one code per line."""

    def __init__(self, name: str, device: str, baudrate: int) -> None:
        self.name = name
        self.device = device
        self.baudrate = baudrate
        self.tracker = HealthTracker(name)
        self._port: Any = None
        try:
            self._serial = importlib.import_module("serial")
        except ImportError as exc:
            raise BackendMissingError(
                "the serial code reader needs pyserial: pip install pyserial"
            ) from exc

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Return what the reader lets the agent do."""
        return CAPABILITIES

    def health(self) -> Health:
        """Return the scanner's health."""
        return self.tracker.get()

    def read(self, timeout: float) -> str | None:
        """Return the next line the scanner sends, or None on timeout.

        The port stays open between reads, so codes scanned in between are
        kept; after an error it is reopened on the next read.
        """
        try:
            port = self._open()
            port.timeout = timeout
            raw: bytes = port.readline()
        except (OSError, self._serial.SerialException) as exc:
            self.close()
            self.tracker.failed(Reason.DEVICE_ERROR, str(exc))
            raise CodeReadError(
                f"code scanner {self.device} cannot be read ({exc}); check its cable"
            ) from exc
        self.tracker.ok()
        code = raw.decode("utf-8", "replace").strip()
        return code or None

    def close(self) -> None:
        """Close the serial port."""
        if self._port is not None:
            try:
                self._port.close()
            finally:
                self._port = None

    def _open(self) -> Any:
        if self._port is None:
            self._port = self._serial.Serial(self.device, self.baudrate, timeout=1.0)
        return self._port


class SimulatedCodeReader:
    """Return codes that tests feed in."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tracker = HealthTracker(name)
        self._codes: queue.Queue[str] = queue.Queue()

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Return what the reader lets the agent do."""
        return CAPABILITIES

    def health(self) -> Health:
        """Return the reader's health (always ok)."""
        return self.tracker.get()

    def feed(self, code: str) -> None:
        """Queue a code as if it had been scanned."""
        self._codes.put(code)

    def read(self, timeout: float) -> str | None:
        """Return the next fed code, or None after ``timeout``."""
        try:
            return self._codes.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Nothing to release."""
