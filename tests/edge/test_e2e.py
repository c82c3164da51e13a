"""A whole visit in headless Chromium against the real office stack.

Simulated cameras (ID card, face sequence, pages), a TLS Mosquitto with an
ACL, the bridge with its SoftHSM token and trust services, an officer who
approves at once; through to the printed PDF and the decoded receipt.
Screenshots of every screen go to test-artifacts/edge/.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from cloud_bridge.config import BridgeConfig
from tests.edge.browser import (
    CHROMIUM_ARGS,
    axe_violations,
    check_screen,
    click,
    focus_visible,
    press_to,
    wait_step,
)
from tests.edge.stack import Kiosk, Office, Officer_

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.hsm]

NAME = "Nguyễn Văn An"


@pytest.fixture
def stack(
    tmp_path: Path, bridge_config: BridgeConfig, trust_services: object
) -> Iterator[tuple[Office, Kiosk, Officer_]]:
    office = Office(tmp_path, bridge_config)
    kiosk = Kiosk(office.kiosk_config(tmp_path))
    officer = Officer_(office.bridge)
    officer.start()
    yield office, kiosk, officer
    officer.stop()
    kiosk.close()
    office.close()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1080, "height": 1400})
        yield context.new_page()
        context.close()
        browser.close()


def test_whole_visit_by_touch_in_both_languages(
    stack: tuple[Office, Kiosk, Officer_], page: Page
) -> None:
    office, kiosk, _officer = stack
    shots: list[str] = []
    page.goto(kiosk.url + "/", wait_until="domcontentloaded")
    wait_step(page, "welcome")
    assert page.get_attribute("html", "lang") == "vi"
    check_screen(page, "01-welcome-vi", shots)
    click(page, "English")
    assert page.get_attribute("html", "lang") == "en"
    check_screen(page, "02-welcome-en", shots)
    click(page, "Tiếng Việt")
    click(page, "Đồng ý và bắt đầu")

    wait_step(page, "identify")
    check_screen(page, "03-identify", shots)
    click(page, "Đọc thẻ")
    wait_step(page, "face")
    check_screen(page, "04-face", shots)
    click(page, "Bắt đầu kiểm tra")

    wait_step(page, "capture")
    check_screen(page, "05-capture", shots)
    for number in (1, 2):
        click(page, "Chụp trang này")
        wait_step(page, "page")
        if number == 1:
            check_screen(page, "06-page", shots)
        click(page, "Dùng trang này")
        wait_step(page, "capture")
    check_screen(page, "07-capture-two-pages", shots)
    click(page, "Đã chụp xong")

    wait_step(page, "review")
    click(page, "English")
    wait_step(page, "review")
    click(page, "Continue")
    summary = page.locator("#error-summary")
    summary.wait_for()
    assert page.evaluate("() => document.activeElement.id") == "error-summary"
    check_screen(page, "08-review-errors-en", shots)
    click(page, "Tiếng Việt")

    kiosk.agent.controller.clock = lambda: time.monotonic() + 65
    page.wait_for_selector("#idle-dialog:not([hidden])", timeout=5000)
    check_screen(page, "09-idle-warning", shots)
    page.get_by_role("button", name="Tôi vẫn ở đây").click()
    page.wait_for_selector("#idle-dialog[hidden]", state="attached", timeout=5000)
    kiosk.agent.controller.clock = time.monotonic
    kiosk.agent.controller.touch()

    page.select_option("#document_type", "birth_certificate")
    page.select_option("#copies", "2")
    page.check("#delivery-email")
    page.fill("#email", "an@example.vn")
    check_screen(page, "10-review", shots)
    click(page, "Tiếp tục")

    wait_step(page, "confirm")
    assert "8.000 đồng" in page.inner_text("main")
    check_screen(page, "11-confirm", shots)
    click(page, "Gửi yêu cầu")
    wait_step(page, "waiting")
    check_screen(page, "12-waiting", shots)

    wait_step(page, "approved", timeout_ms=60_000)
    check_screen(page, "13-approved", shots)
    copy_id = page.inner_text("dd.code >> nth=0").strip()
    access_code = page.inner_text("dd.code >> nth=1").strip()

    printed = sorted((kiosk.agent.config.data_dir.parent / "printed").glob("*.pdf"))
    assert len(printed) == 2
    assert printed[0].read_bytes().startswith(b"%PDF")
    assert copy_id in printed[0].name
    simulator = kiosk.agent.devices.receipt_simulator
    assert simulator is not None
    receipt = simulator.wait_receipt(1, timeout=10)
    assert any(copy_id in code for code in receipt.qr_codes)
    assert receipt.cut
    stored = office.bridge.store.list_requests()
    assert [r.state for r in stored] == ["approved"]
    assert stored[0].citizen_id_number == "001******345"
    assert len(shots) == 13
    assert access_code

    click(page, "Xong")
    wait_step(page, "welcome")
    assert NAME not in page.inner_text("body")
    assert kiosk.agent.store.load_session() is None


def test_keyboard_only_visit_in_speech_mode(
    stack: tuple[Office, Kiosk, Officer_], page: Page
) -> None:
    office, kiosk, _officer = stack
    page.goto(kiosk.url + "/", wait_until="domcontentloaded")
    wait_step(page, "welcome")
    press_to(page, "Đọc to")
    page.wait_for_selector("body[data-speech='on']")
    press_to(page, "Đồng ý và bắt đầu")
    wait_step(page, "identify")
    press_to(page, "Đọc thẻ")
    wait_step(page, "face")
    press_to(page, "Bắt đầu kiểm tra")
    wait_step(page, "capture")
    press_to(page, "Chụp trang này")
    wait_step(page, "page")
    press_to(page, "Dùng trang này")
    wait_step(page, "capture")
    press_to(page, "Đã chụp xong")
    wait_step(page, "review")

    page.focus("#document_type")
    page.keyboard.press("ArrowDown")
    assert focus_visible(page)
    page.focus("#delivery-wallet")
    page.keyboard.press("Space")
    press_to(page, "Tiếp tục")
    wait_step(page, "confirm")
    assert axe_violations(page) == []
    press_to(page, "Gửi yêu cầu")
    wait_step(page, "approved", timeout_ms=60_000)
    press_to(page, "Xong")
    wait_step(page, "welcome")

    time.sleep(0.5)
    spoken = " ".join(text for text, language, volume in kiosk.speaker.spoken)
    for instruction in (
        "Đặt thẻ căn cước",
        "Kiểm tra khuôn mặt",
        "Chụp giấy tờ",
        "Kiểm tra lại",
        "Đã duyệt",
    ):
        assert instruction in spoken
    for personal in (NAME, "001******345", "345", "an@example.vn"):
        assert personal not in spoken
    assert [r.state for r in office.bridge.store.list_requests()] == ["approved"]
