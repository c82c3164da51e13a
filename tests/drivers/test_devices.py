"""The Devices container built from configuration, and its health report."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import segno
from PIL import Image

from drivers.camera_sim import SimulatedCameraBackend
from drivers.code_reader import CameraCodeReader, SimulatedCodeReader
from drivers.config import DevicesConfig, load_devices_config
from drivers.devices import Devices, build_devices
from drivers.errors import PaperOutError
from drivers.escpos_sim import Paper
from drivers.health import Capability, Health, HealthState, Reason
from drivers.receipt import Receipt
from kiosk.errors import ConfigError


@pytest.fixture
def qr_image(tmp_path: Path) -> Path:
    path = tmp_path / "card.png"
    segno.make("079200001234|Nguyễn Văn A", error="m").save(
        str(path), scale=6, border=4
    )
    return path


@pytest.fixture
def devices(tmp_path: Path, qr_image: Path) -> Iterator[Devices]:
    config = DevicesConfig.model_validate(
        {
            "cameras": {"document": {"source": str(qr_image), "fps": 30}},
            "document_printer": {"output_dir": str(tmp_path / "printed")},
        }
    )
    built = build_devices(config)
    built.start()
    yield built
    built.close()


def test_defaults_simulate_everything() -> None:
    config = load_devices_config()
    assert {s.backend for s in config.cameras.values()} == {"simulated"}
    assert config.receipt_printer.backend == "simulated"
    assert config.gpio.backend == "simulated"


def test_config_rejects_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "devices.toml"
    path.write_text('[receipt_printer]\nbackend = "network"\npaper = 3\n')
    with pytest.raises(ConfigError, match="paper"):
        load_devices_config(path)


def test_code_reader_camera_must_exist() -> None:
    with pytest.raises(ValueError, match="not one of the cameras"):
        DevicesConfig.model_validate({"code_reader": {"camera": "ceiling"}})


def test_health_report_and_capabilities(devices: Devices) -> None:
    report = devices.refresh()
    assert set(report) == {
        "camera.document",
        "document_printer",
        "receipt_printer",
        "gpio",
        "code_reader",
    }
    assert all(h.state is HealthState.OK for h in report.values())
    assert devices.can(Capability.PRINT_RECEIPTS)
    assert devices.can(Capability.CAPTURE_DOCUMENT)


def test_failed_receipt_printer_withdraws_only_receipts(devices: Devices) -> None:
    sim = devices.receipt_simulator
    assert sim is not None
    changes: list[tuple[str, Health]] = []
    devices.subscribe(lambda name, health: changes.append((name, health)))
    sim.paper = Paper.OUT
    with pytest.raises(PaperOutError):
        devices.receipt_printer.print_receipt(Receipt("ID-1", "C0DE"))
    assert devices.health_report()["receipt_printer"].reason is Reason.PAPER_OUT
    assert ("receipt_printer", Reason.PAPER_OUT) in [(n, h.reason) for n, h in changes]
    assert not devices.can(Capability.PRINT_RECEIPTS)
    assert devices.can(Capability.PRINT_COPIES)
    assert devices.can(Capability.CAPTURE_DOCUMENT)


def test_camera_code_reader_decodes_vietnamese_qr(devices: Devices) -> None:
    assert isinstance(devices.code_reader, CameraCodeReader)
    assert devices.code_reader.read(5.0) == "079200001234|Nguyễn Văn A"


def test_still_is_decoded_by_the_thorough_decoder(devices: Devices) -> None:
    assert isinstance(devices.code_reader, CameraCodeReader)
    assert devices.code_reader.read_still(10.0) == ["079200001234|Nguyễn Văn A"]


def test_camera_code_reader_gives_none_without_a_code() -> None:
    from drivers.camera import Camera

    cam = Camera("camera.x", SimulatedCameraBackend(fps=30, preview_size=(80, 60)))
    cam.start()
    try:
        started = time.monotonic()
        assert CameraCodeReader("code_reader", cam, interval=0.05).read(0.5) is None
        assert time.monotonic() - started < 2
    finally:
        cam.stop()


def test_simulated_code_reader_returns_fed_codes() -> None:
    reader = SimulatedCodeReader("code_reader")
    reader.feed("CT-1")
    assert reader.read(0.1) == "CT-1"
    assert reader.read(0.05) is None


def test_still_capture_of_configured_source(devices: Devices, qr_image: Path) -> None:
    frame = devices.cameras["document"].capture_still(timeout=2)
    assert frame.size == (2592, 1944)
    source = np.asarray(Image.open(qr_image).convert("RGB"))
    assert frame.image.mean() == pytest.approx(source.mean(), abs=8)


def test_example_configuration_loads() -> None:
    example = Path(__file__).parents[2] / "drivers" / "devices.example.toml"
    config = load_devices_config(example)
    assert config.cameras["document"].backend == "picamera2"
    assert config.gpio.inputs["lid"].active_low
    assert config.receipt_printer.usb_vendor == 0x04B8


def test_serial_scanner_reads_one_code_per_line() -> None:
    import os
    import pty

    from drivers.code_reader import SerialCodeReader

    controller, terminal = pty.openpty()
    try:
        reader = SerialCodeReader("code_reader", os.ttyname(terminal), 9600)
        started = time.monotonic()
        assert reader.read(0.3) is None
        assert time.monotonic() - started < 1.5
        os.write(controller, b"CT-2026-000123\r\n")
        assert reader.read(2.0) == "CT-2026-000123"
        assert reader.health().state is HealthState.OK
        reader.close()
    finally:
        os.close(controller)
        os.close(terminal)


def test_unplugged_serial_scanner_is_an_error() -> None:
    from drivers.code_reader import SerialCodeReader
    from drivers.errors import CodeReadError

    reader = SerialCodeReader("code_reader", "/dev/ttyKIOSKNONE", 9600)
    with pytest.raises(CodeReadError, match="cannot be read"):
        reader.read(0.2)
    assert reader.health().reason is Reason.DEVICE_ERROR
