"""A visit in headless Chromium whose A4 copy prints through a real CUPS.

The office stack of :mod:`tests.edge.test_e2e`, and a private cupsd with a
cups-pdf queue (the drivers tests' fixture) behind the agent's CUPS
document printer: the PDF cups-pdf writes must be the approved copy, with
its identifier, once per paper copy.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
from playwright.sync_api import Page, sync_playwright

from cloud_bridge.config import BridgeConfig
from drivers.config import DocumentPrinterSection
from edge.config import AgentConfig
from models.qr import decode_qr_codes
from tests.drivers.conftest import CupsServer, cups_server  # noqa: F401
from tests.edge.browser import CHROMIUM_ARGS, check_screen, click, wait_step
from tests.edge.stack import Kiosk, Office, Officer_

RENDER = ("pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", "-singlefile")
pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.hsm]


def with_cups(config: AgentConfig, server: CupsServer) -> AgentConfig:
    """Return ``config`` with its A4 printer on ``server``'s cups-pdf queue."""
    printer = DocumentPrinterSection(
        backend="cups",
        host=server.host,
        port=server.port,
        queue=server.queue,
        poll_interval_s=0.05,
        job_timeout_s=60,
    )
    devices = config.devices.model_copy(update={"document_printer": printer})
    return config.model_copy(update={"devices": devices})


@pytest.fixture
def cups_stack(
    tmp_path: Path,
    bridge_config: BridgeConfig,
    trust_services: object,
    cups_server: CupsServer,  # noqa: F811
) -> Iterator[tuple[Office, Kiosk]]:
    office = Office(tmp_path, bridge_config)
    kiosk = Kiosk(with_cups(office.kiosk_config(tmp_path), cups_server))
    officer = Officer_(office.bridge)
    officer.start()
    yield office, kiosk
    officer.stop()
    kiosk.close()
    office.close()


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1080, "height": 1400})
        yield context.new_page()
        context.close()
        browser.close()


def cups_pdfs(server: CupsServer, count: int, timeout: float = 60.0) -> list[Path]:
    """Wait for ``count`` finished PDFs from cups-pdf and return them."""
    deadline = time.monotonic() + timeout
    found: list[Path] = []
    while time.monotonic() < deadline:
        found = sorted(p for d in server.output_dirs for p in d.rglob("*.pdf"))
        if len(found) >= count and all(p.stat().st_size > 0 for p in found):
            return found
        time.sleep(0.1)
    raise AssertionError(f"cups-pdf wrote {len(found)} PDFs, expected {count}")


def pdf_pages(pdf: Path) -> int:
    """Return the page count pdfinfo reports."""
    info = subprocess.run(
        ["pdfinfo", str(pdf)], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return int(
        next(line for line in info.splitlines() if line.startswith("Pages:")).split()[1]
    )


def page_codes(pdf: Path, prefix: Path) -> list[str]:
    """Render the PDF's first page at 150 dpi and return its QR codes' text."""
    subprocess.run(
        [*RENDER, str(pdf), str(prefix)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    image = cv2.imread(str(prefix.with_suffix(".png")))
    assert image is not None, prefix
    return decode_qr_codes(image)


def test_approved_copy_prints_through_cups_pdf(
    cups_stack: tuple[Office, Kiosk],
    cups_server: CupsServer,  # noqa: F811
    page: Page,
    tmp_path: Path,
) -> None:
    office, kiosk = cups_stack
    shots: list[str] = []
    page.goto(kiosk.url + "/", wait_until="domcontentloaded")
    wait_step(page, "welcome")
    click(page, "Đồng ý và bắt đầu")
    wait_step(page, "identify")
    click(page, "Đọc thẻ")
    wait_step(page, "face")
    click(page, "Bắt đầu kiểm tra")
    wait_step(page, "capture")
    click(page, "Chụp trang này")
    wait_step(page, "page")
    click(page, "Dùng trang này")
    wait_step(page, "capture")
    click(page, "Đã chụp xong")
    wait_step(page, "review")
    check_screen(page, "cups-review-read", shots)
    # The OCR preselected the type the page names.
    assert page.input_value("#document_type") == "birth_certificate"
    page.select_option("#copies", "2")
    page.check("#delivery-wallet")
    click(page, "Tiếp tục")
    wait_step(page, "confirm")
    click(page, "Gửi yêu cầu")
    wait_step(page, "approved", timeout_ms=90_000)
    check_screen(page, "cups-approved", shots)
    copy_id = page.inner_text("dd.code >> nth=0").strip()
    assert "print_failed" not in page.content()

    request = office.bridge.store.list_requests()[0]
    entry = kiosk.agent.store.entry(request.request_id)
    assert entry is not None and entry.decision is not None
    original = tmp_path / "original.pdf"
    original.write_bytes(kiosk.agent.blobs.fetch(str(entry.decision["pdf_sha256"])))

    printed = cups_pdfs(cups_server, 1)
    assert len(printed) == 1, printed  # one job, two collated copies
    output = printed[0]
    assert output.read_bytes().startswith(b"%PDF-")
    assert pdf_pages(output) == pdf_pages(original)
    # Ghostscript turns the text into outlines; the copy's QR code survives.
    printed_codes = page_codes(output, tmp_path / "printed")
    assert printed_codes == page_codes(original, tmp_path / "original")
    assert any(copy_id in code for code in printed_codes), printed_codes
    # CUPS accounted one job of two copies (cups-pdf itself writes one file).
    page_log = (cups_server.root / "log" / "page_log").read_text()
    assert "total 2 " in page_log and copy_id in page_log, page_log
