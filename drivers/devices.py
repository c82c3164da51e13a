"""Every device of a kiosk, built from configuration, with one health report.

``build_devices(config)`` picks each device's backend; ``Devices.start()``
opens the cameras and GPIO lines; ``health_report()`` and ``can(capability)``
tell the agent which steps it can offer: a failed device withdraws only the
capabilities it provides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from drivers.camera import (
    Camera,
    CameraBackend,
    CaptureMode,
    UnavailableCameraBackend,
)
from drivers.code_reader import (
    CameraCodeReader,
    CodeReader,
    SerialCodeReader,
    SimulatedCodeReader,
)
from drivers.code_reader_hid import HidCodeReader
from drivers.config import CameraSection, DevicesConfig
from drivers.document_printer import (
    CupsDocumentPrinter,
    DocumentPrinter,
    SimulatedDocumentPrinter,
)
from drivers.errors import BackendMissingError
from drivers.escpos_sim import EscposSimulator
from drivers.gpio import (
    LineDriver,
    PinBank,
    SimulatedLineDriver,
    UnavailableLineDriver,
)
from drivers.health import Capability, Health, HealthListener, HealthTracker
from drivers.ipp import IppClient
from drivers.receipt_printer import ReceiptPrinter, make_factory

logger = logging.getLogger(__name__)


class Device(Protocol):
    """What every device reports."""

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Return what the device lets the agent do."""

    def health(self) -> Health:
        """Return the device's health."""


@dataclass
class Devices:
    """The kiosk's devices by kind, with their backends' names."""

    cameras: dict[str, Camera]
    document_printer: DocumentPrinter
    receipt_printer: ReceiptPrinter
    pins: PinBank
    code_reader: CodeReader
    backends: dict[str, str] = field(default_factory=dict)
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    receipt_simulator: EscposSimulator | None = None

    def named(self) -> dict[str, Device]:
        """Return every device by its name in reports and ``kiosk devices``."""
        devices: dict[str, Device] = {
            f"camera.{name}": camera for name, camera in self.cameras.items()
        }
        devices["document_printer"] = self.document_printer
        devices["receipt_printer"] = self.receipt_printer
        devices["gpio"] = self.pins
        devices["code_reader"] = self.code_reader
        return devices

    def start(self) -> None:
        """Start the cameras and the GPIO monitor; failures show in health."""
        for camera in self.cameras.values():
            camera.start()
        try:
            self.pins.start()
        except Exception as exc:
            logger.error("GPIO did not start: %s", exc)

    def close(self) -> None:
        """Stop every device and any simulator started for them."""
        for camera in self.cameras.values():
            camera.stop()
        self.pins.stop()
        self.document_printer.close()
        self.receipt_printer.close()
        self.code_reader.close()
        for cleanup in self.cleanups:
            cleanup()

    def refresh(self) -> dict[str, Health]:
        """Ask the printers for their state, then return the health report."""
        self.document_printer.check()
        self.receipt_printer.check()
        return self.health_report()

    def health_report(self) -> dict[str, Health]:
        """Return every device's last known health."""
        return {name: device.health() for name, device in self.named().items()}

    def subscribe(self, listener: HealthListener) -> None:
        """Call ``listener(device_name, health)`` on every device's changes."""
        for device in self.named().values():
            tracker = getattr(device, "tracker", None)
            if isinstance(tracker, HealthTracker):
                tracker.subscribe(listener)

    def capabilities(self) -> frozenset[Capability]:
        """Return what the usable devices let the agent do now."""
        found: set[Capability] = set()
        for device in self.named().values():
            if device.health().usable:
                found |= device.capabilities
        return frozenset(found)

    def can(self, capability: Capability) -> bool:
        """Return whether some usable device provides ``capability``."""
        return capability in self.capabilities()


def build_camera(name: str, section: CameraSection) -> Camera:
    """Return the camera ``section`` describes (not started)."""
    backend: CameraBackend
    try:
        backend = _camera_backend(section)
    except BackendMissingError as exc:
        logger.error("camera %s cannot be used: %s", name, exc)
        backend = UnavailableCameraBackend(str(exc))
    return Camera(
        f"camera.{name}",
        backend,
        CaptureMode(section.role),
        section.stall_timeout_s,
        section.max_restarts,
    )


def _camera_backend(section: CameraSection) -> CameraBackend:
    preview = (section.preview_width, section.preview_height)
    still = (section.still_width, section.still_height)
    if section.backend == "picamera2":
        from drivers.camera_picamera2 import Picamera2Backend

        return Picamera2Backend(int(section.device or 0), preview, still)
    if section.backend == "v4l2":
        from drivers.camera_v4l2 import V4l2CameraBackend

        return V4l2CameraBackend(section.device, preview, still)
    from drivers.camera_sim import SimulatedCameraBackend

    return SimulatedCameraBackend(
        section.source, section.fps, preview, still, section.loop
    )


def build_devices(config: DevicesConfig) -> Devices:
    """Build every device from ``config`` (call ``start()`` before use)."""
    cameras = {name: build_camera(name, s) for name, s in config.cameras.items()}
    cleanups: list[Callable[[], None]] = []
    backends: dict[str, str] = {
        f"camera.{n}": s.backend for n, s in config.cameras.items()
    }

    printer_section = config.document_printer
    document_printer: DocumentPrinter
    if printer_section.backend == "cups":
        client = IppClient(
            printer_section.host,
            printer_section.port,
            printer_section.queue,
            printer_section.request_timeout_s,
        )
        document_printer = CupsDocumentPrinter(
            "document_printer",
            client,
            printer_section.poll_interval_s,
            printer_section.job_timeout_s,
        )
    else:
        document_printer = SimulatedDocumentPrinter(
            "document_printer", Path(printer_section.output_dir)
        )
    backends["document_printer"] = printer_section.backend

    receipt_section = config.receipt_printer
    port: int | None = None
    simulator: EscposSimulator | None = None
    if receipt_section.backend == "simulated":
        simulator = EscposSimulator()
        port = simulator.start()
        cleanups.append(simulator.stop)
    receipt_printer = ReceiptPrinter(
        "receipt_printer", receipt_section, make_factory(receipt_section, port)
    )
    backends["receipt_printer"] = receipt_section.backend

    pins = PinBank("gpio", config.gpio, _line_driver(config))
    backends["gpio"] = config.gpio.backend

    reader_section = config.code_reader
    code_reader: CodeReader
    if reader_section.backend == "camera":
        code_reader = CameraCodeReader(
            "code_reader",
            cameras[reader_section.camera],
            interval=reader_section.decode_interval_s,
        )
    elif reader_section.backend == "hid":
        code_reader = HidCodeReader("code_reader", reader_section.hid_device)
    elif reader_section.backend == "serial":
        code_reader = SerialCodeReader(
            "code_reader", reader_section.serial_device, reader_section.baudrate
        )
    else:
        code_reader = SimulatedCodeReader("code_reader")
    backends["code_reader"] = reader_section.backend

    return Devices(
        cameras,
        document_printer,
        receipt_printer,
        pins,
        code_reader,
        backends,
        cleanups,
        simulator,
    )


def _line_driver(config: DevicesConfig) -> LineDriver:
    if config.gpio.backend == "periphery":
        from drivers.gpio_periphery import PeripheryLineDriver

        try:
            return PeripheryLineDriver(config.gpio.chip)
        except BackendMissingError as exc:
            logger.error("GPIO cannot be used: %s", exc)
            return UnavailableLineDriver(str(exc))
    return SimulatedLineDriver()
