"""The receipt printer against the simulated ESC/POS printer over TCP."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drivers.config import ReceiptPrinterSection
from drivers.errors import (
    DeviceTimeoutError,
    DeviceUnavailableError,
    PaperOutError,
    ReceiptError,
)
from drivers.escpos_sim import EscposSimulator, Paper
from drivers.health import HealthState, Reason
from drivers.receipt import Receipt
from drivers.receipt_printer import ReceiptPrinter, make_factory
from tests.conftest import free_port

RECEIPT = Receipt(
    identifier="CT-2026-000123",
    access_code="K7Q2M9",
    lines=("Bản sao chứng thực điện tử", "Ủy ban nhân dân Phường Mẫu"),
    qr_payload="https://kiosk.example/c/CT-2026-000123?code=K7Q2M9",
)


@pytest.fixture
def simulator() -> Iterator[EscposSimulator]:
    """A simulated ESC/POS printer on a free port."""
    sim = EscposSimulator()
    sim.start()
    yield sim
    sim.stop()


def read_vietnamese(image: Image.Image, tmp_path: Path) -> list[str]:
    """OCR a received raster image with Tesseract's Vietnamese model."""
    if shutil.which("tesseract") is None:
        pytest.fail("tesseract is missing: apt install tesseract-ocr tesseract-ocr-vie")
    path = tmp_path / "receipt.png"
    image.resize((image.width * 2, image.height * 2)).save(path)
    result = subprocess.run(
        ["tesseract", str(path), "-", "-l", "vie", "--psm", "6"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "OMP_THREAD_LIMIT": "1"},
        check=True,
    )
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def printer_for(port: int, **options: object) -> ReceiptPrinter:
    section = ReceiptPrinterSection.model_validate(
        {"backend": "network", "port": port, "timeout_s": 1.0, **options}
    )
    return ReceiptPrinter("receipt_printer", section, make_factory(section))


def test_receipt_text_qr_and_vietnamese_image_arrive(
    simulator: EscposSimulator, tmp_path: Path
) -> None:
    printer = printer_for(simulator.port)
    seconds = printer.print_receipt(RECEIPT)
    printed = simulator.wait_receipt(1)

    assert printed.cut and printed.printed
    assert "CT-2026-000123" in printed.lines
    assert "K7Q2M9" in printed.lines
    assert printed.qr_codes == [RECEIPT.qr_payload]
    assert len(printed.images) == 2
    width, height = printed.images[0].size
    assert width == 512 and height > 40
    ink = np.asarray(printed.images[0]) < 128
    assert 0.01 < ink.mean() < 0.5
    assert read_vietnamese(printed.images[0], tmp_path) == list(RECEIPT.lines)
    assert read_vietnamese(printed.images[1], tmp_path) == ["Mã tra cứu:"]
    assert simulator.unknown == []
    assert printer.health().state is HealthState.OK
    assert seconds < 1.0
    print(
        f"ESC/POS receipt round trip: {seconds * 1000:.0f} ms, "
        f"{simulator.bytes_received} bytes"
    )


def test_qr_falls_back_to_an_image(simulator: EscposSimulator) -> None:
    printer = printer_for(simulator.port, native_qr=False)
    printer.print_receipt(RECEIPT)
    printed = simulator.wait_receipt(1)
    assert printed.qr_codes == []
    assert len(printed.images) == 3

    from pyzbar import pyzbar

    decoded = pyzbar.decode(printed.images[2])
    assert [item.data.decode() for item in decoded] == [RECEIPT.qr_payload]


def test_paper_near_end_degrades_but_prints(simulator: EscposSimulator) -> None:
    simulator.paper = Paper.NEAR_END
    printer = printer_for(simulator.port)
    printer.print_receipt(RECEIPT)
    assert simulator.wait_receipt(1).printed
    assert printer.health().state is HealthState.DEGRADED
    assert printer.health().reason is Reason.PAPER_LOW


def test_paper_out_refuses_and_fails(simulator: EscposSimulator) -> None:
    simulator.paper = Paper.OUT
    printer = printer_for(simulator.port)
    with pytest.raises(PaperOutError, match="paper out"):
        printer.print_receipt(RECEIPT)
    assert simulator.receipts == []
    assert printer.health().reason is Reason.PAPER_OUT

    simulator.paper = Paper.OK
    printer.print_receipt(RECEIPT)
    assert printer.health().state is HealthState.OK


def test_open_cover_is_reported(simulator: EscposSimulator) -> None:
    simulator.cover_open = True
    printer = printer_for(simulator.port)
    assert printer.check().reason is Reason.COVER_OPEN


def test_printer_that_never_answers_times_out(simulator: EscposSimulator) -> None:
    simulator.silent = True
    printer = printer_for(simulator.port, attempts=2)
    started = time.monotonic()
    with pytest.raises(DeviceTimeoutError, match="did not answer"):
        printer.print_receipt(RECEIPT)
    assert time.monotonic() - started < 4
    assert printer.health().reason is Reason.NOT_ANSWERING


def test_unplugged_printer_is_reported_after_retries() -> None:
    printer = printer_for(free_port(), attempts=2)
    with pytest.raises(DeviceUnavailableError, match="cannot be reached"):
        printer.print_receipt(RECEIPT)
    assert printer.health().reason is Reason.PRINTER_OFFLINE


def test_printer_unplugged_mid_receipt_is_an_error() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer_then_drop() -> None:
        for _ in range(2):
            conn, _ = server.accept()
            conn.recv(3)
            conn.sendall(b"\x12")
            conn.recv(3)
            conn.sendall(b"\x12")
            conn.close()

    threading.Thread(target=answer_then_drop, daemon=True).start()
    printer = printer_for(port, attempts=2)
    try:
        with pytest.raises((DeviceUnavailableError, DeviceTimeoutError)):
            printer.print_receipt(RECEIPT)
        assert printer.health().state is HealthState.FAILED
    finally:
        server.close()


def test_check_of_an_absent_printer_reports_failure() -> None:
    health = printer_for(free_port()).check()
    assert health.state is HealthState.FAILED
    assert health.reason is Reason.PRINTER_OFFLINE


def test_bad_receipt_is_refused() -> None:
    printer = printer_for(free_port())
    with pytest.raises(ReceiptError, match="identifier"):
        printer.print_receipt(Receipt(identifier="", access_code="X"))


class BlockingPrinter:
    """A printer object whose writes block, as a serial line held by flow control."""

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    device = None

    def _read(self) -> bytes:
        return b"\x12"

    def _raw(self, _data: bytes) -> None:
        time.sleep(5)


def test_blocked_write_is_bounded_and_reported() -> None:
    section = ReceiptPrinterSection.model_validate(
        {"backend": "serial", "timeout_s": 0.2, "attempts": 1}
    )
    printer = ReceiptPrinter("receipt_printer", section, BlockingPrinter)
    started = time.monotonic()
    with pytest.raises(DeviceTimeoutError, match="did not answer"):
        printer.print_receipt(RECEIPT)
    assert time.monotonic() - started < 3
    assert printer.health().reason is Reason.NOT_ANSWERING


def test_receipt_over_a_serial_line(tmp_path: Path) -> None:
    import pty
    import select

    simulator = EscposSimulator()
    controller, terminal = pty.openpty()
    stop = threading.Event()

    def wire() -> None:
        buffer = bytearray()
        while not stop.is_set():
            ready, _, _ = select.select([controller], [], [], 0.1)
            if ready:
                replies = simulator.feed(buffer, os.read(controller, 65536))
                if replies:
                    os.write(controller, replies)

    wiring = threading.Thread(target=wire, daemon=True)
    wiring.start()
    section = ReceiptPrinterSection.model_validate(
        {"backend": "serial", "serial_device": os.ttyname(terminal), "timeout_s": 2}
    )
    printer = ReceiptPrinter("receipt_printer", section, make_factory(section))
    try:
        seconds = printer.print_receipt(RECEIPT)
        printed = simulator.wait_receipt(1)
    finally:
        stop.set()
        wiring.join(2)
        os.close(terminal)
        os.close(controller)
    assert printed.qr_codes == [RECEIPT.qr_payload]
    assert "CT-2026-000123" in printed.lines
    assert printer.health().state is HealthState.OK
    assert seconds < 1.5
