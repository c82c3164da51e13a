"""Tests on real kiosk hardware; each is skipped, naming the missing device."""

from __future__ import annotations

import glob
import os
import shutil

import pytest

from drivers.camera import Camera, CaptureMode
from drivers.config import GpioSection
from drivers.gpio import PinBank

pytestmark = pytest.mark.hardware


def _need(condition: bool, device: str) -> None:
    if not condition:
        pytest.skip(f"needs {device}, which this machine does not have")


def test_usb_camera_captures_a_still() -> None:
    _need(bool(glob.glob("/dev/video*")), "a USB camera (/dev/video*)")
    from drivers.camera_v4l2 import V4l2CameraBackend

    camera = Camera("camera.usb", V4l2CameraBackend("0"), CaptureMode.DOCUMENT)
    camera.start()
    try:
        frame = camera.capture_still(timeout=10)
        assert frame.size[0] > 0
    finally:
        camera.stop()


def test_raspberry_pi_camera_captures_a_still() -> None:
    _need(
        os.path.exists("/dev/media0") and shutil.which("rpicam-hello") is not None,
        "a Raspberry Pi camera module (/dev/media0, rpicam-apps)",
    )
    from drivers.camera_picamera2 import Picamera2Backend

    camera = Camera("camera.pi", Picamera2Backend(0), CaptureMode.FACE)
    camera.start()
    try:
        assert camera.capture_still(timeout=10).size[0] > 0
    finally:
        camera.stop()


def test_gpio_chip_opens_configured_lines() -> None:
    chip = os.environ.get("KIOSK_TEST_GPIOCHIP", "/dev/gpiochip0")
    _need(os.path.exists(chip), f"a GPIO chip ({chip})")
    from drivers.gpio_periphery import PeripheryLineDriver

    section = GpioSection.model_validate({"backend": "periphery", "chip": chip})
    bank = PinBank("gpio", section, PeripheryLineDriver(chip))
    bank.start()
    try:
        bank.output("light").blink(2, 0.1, 0.1)
        assert bank.health().usable
    finally:
        bank.stop()


def test_usb_receipt_printer_answers_status() -> None:
    _need(bool(glob.glob("/dev/usb/lp*")), "a USB receipt printer (/dev/usb/lp*)")
    from drivers.config import ReceiptPrinterSection
    from drivers.receipt_printer import ReceiptPrinter, make_factory

    section = ReceiptPrinterSection.model_validate({"backend": "usb"})
    printer = ReceiptPrinter("receipt_printer", section, make_factory(section))
    assert printer.check().usable
