"""The screens added for access and faults, in headless Chromium.

Large text at 200 % on every step of a visit in both languages, headphones
plugged into the (simulated) jack switch turning speech on, the presence
sensor waking the screen out of the attract screen, a full disk refusing a
new visit, and the A4 and receipt printers out of paper with the real
office stack. axe-core runs on each state; screenshots go to
test-artifacts/edge/.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from drivers.document_printer import SimulatedDocumentPrinter
from drivers.escpos_sim import Paper
from drivers.gpio import SimulatedLineDriver
from edge.visit import Step
from tests.conftest import free_port
from tests.edge.browser import check_screen, click, wait_step
from tests.edge.conftest import agent_config
from tests.edge.stack import Kiosk, Office, Officer_
from tests.edge.test_e2e import page, stack  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser]

OFFLINE = {"mqtt_port": 1, "https_url": "https://127.0.0.1:1"}


@pytest.fixture
def kiosk(tmp_path: Path) -> Iterator[Kiosk]:
    """The agent alone (the office unreachable), its screen woken by a command."""
    marker = tmp_path / "screen-woken"
    config = agent_config(
        tmp_path,
        port=free_port(),
        office=OFFLINE,
        screen={
            "wake_command": ["sh", "-c", f"echo on >> {marker}"],
            "attract_after_s": 10,
        },
    )
    running = Kiosk(config)
    yield running
    running.close()


def pins(kiosk: Kiosk) -> SimulatedLineDriver:
    """Return the simulated GPIO lines of the kiosk."""
    driver = kiosk.agent.devices.pins.driver
    assert isinstance(driver, SimulatedLineDriver)
    return driver


def fits(screen: Page) -> bool:
    """Tell whether the screen shows without sideways scrolling."""
    return bool(
        screen.evaluate(
            "() => document.documentElement.scrollWidth <= window.innerWidth + 1"
        )
    )


def test_large_text_holds_on_every_step_in_both_languages(
    kiosk: Kiosk,
    page: Page,  # noqa: F811
) -> None:
    shots: list[str] = []
    page.goto(kiosk.url + "/", wait_until="domcontentloaded")
    wait_step(page, "welcome")
    normal = page.evaluate("() => getComputedStyle(document.documentElement).fontSize")
    click(page, "Chữ to")
    page.wait_for_selector("html.large-text")
    large = page.evaluate("() => getComputedStyle(document.documentElement).fontSize")
    assert float(large[:-2]) == 2 * float(normal[:-2])
    button = page.get_by_role("button", name="Chữ to")
    assert button.get_attribute("aria-pressed") == "true"

    def look(name: str) -> None:
        for language, switch in (("vi", "English"), ("en", "Tiếng Việt")):
            assert fits(page), f"{name}-{language} scrolls sideways"
            check_screen(page, f"20-large-{name}-{language}", shots)
            click(page, switch)

    look("welcome")
    click(page, "Đồng ý và bắt đầu")
    wait_step(page, "identify")
    assert page.locator("html.large-text").count() == 1  # kept for the visit
    look("identify")
    click(page, "Đọc thẻ")
    wait_step(page, "face")
    look("face")
    click(page, "Bắt đầu kiểm tra")
    wait_step(page, "capture")
    look("capture")
    click(page, "Chụp trang này")
    wait_step(page, "page")
    look("page")
    click(page, "Dùng trang này")
    wait_step(page, "capture")
    click(page, "Đã chụp xong")
    wait_step(page, "review")
    look("review")
    assert len(shots) == 12
    click(page, "Hủy và kết thúc")
    wait_step(page, "welcome")
    assert page.locator("html.large-text").count() == 0  # a new visit starts small


def test_headphones_turn_speech_on_and_off(
    kiosk: Kiosk,
    page: Page,  # noqa: F811
) -> None:
    shots: list[str] = []
    page.goto(kiosk.url + "/", wait_until="domcontentloaded")
    wait_step(page, "welcome")
    click(page, "Đồng ý và bắt đầu")
    wait_step(page, "identify")
    assert page.locator("body[data-speech='off']").count() == 1
    pins(kiosk).drive("headphones", True)
    page.wait_for_selector("body[data-speech='on']", timeout=10_000)
    page.wait_for_selector("#headphones")
    check_screen(page, "21-headphones-vi", shots)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not kiosk.speaker.spoken:
        time.sleep(0.05)
    assert "Đặt thẻ căn cước" in kiosk.speaker.spoken[-1][0]
    click(page, "English")
    check_screen(page, "21-headphones-en", shots)
    pins(kiosk).drive("headphones", False)
    page.wait_for_selector("body[data-speech='off']", timeout=10_000)
    assert page.locator("#headphones").count() == 0


def test_presence_wakes_the_screen_out_of_the_attract_screen(
    kiosk: Kiosk,
    page: Page,  # noqa: F811
    tmp_path: Path,
) -> None:
    shots: list[str] = []
    marker = tmp_path / "screen-woken"
    page.goto(kiosk.url + "/", wait_until="domcontentloaded")
    wait_step(page, "welcome")
    controller = kiosk.agent.controller
    controller.clock = lambda: time.monotonic() + 3600
    page.wait_for_selector("body[data-asleep='on']", timeout=10_000)
    page.wait_for_selector("#attract")
    check_screen(page, "22-attract-vi", shots)
    controller.set_language("en")  # a touch: the screen wakes until idle again
    controller.clock = lambda: time.monotonic() + 7200
    page.reload(wait_until="domcontentloaded")
    page.wait_for_selector("#attract")
    assert "Touch here" in page.inner_text("#attract")
    check_screen(page, "22-attract-en", shots)
    controller.set_language("vi")
    controller.clock = lambda: time.monotonic() + 10_800
    page.reload(wait_until="domcontentloaded")
    page.wait_for_selector("#attract")
    assert not marker.exists()

    controller.clock = time.monotonic
    pins(kiosk).drive("presence", True)
    page.wait_for_selector("body[data-asleep='off']", timeout=10_000)
    assert page.locator("#attract").count() == 0
    assert marker.read_text() == "on\n"
    check_screen(page, "22-awake-vi", shots)

    controller.clock = lambda: time.monotonic() + 20_000
    page.wait_for_selector("body[data-asleep='on']", timeout=10_000)
    click(page, "Chạm vào đây")  # a touch wakes it too
    page.wait_for_selector("body[data-asleep='off']", timeout=10_000)
    controller.clock = time.monotonic


def test_full_disk_refuses_a_new_visit(
    kiosk: Kiosk,
    page: Page,  # noqa: F811
) -> None:
    shots: list[str] = []
    controller = kiosk.agent.controller
    session = controller.config.session.model_copy(update={"min_free_mb": 10**6})
    controller.config = controller.config.model_copy(update={"session": session})
    page.goto(kiosk.url + "/", wait_until="domcontentloaded")
    wait_step(page, "welcome")
    click(page, "Đồng ý và bắt đầu")
    page.wait_for_selector("#error-summary")
    assert controller.step is Step.WELCOME
    assert "Xin mời đến quầy" in page.inner_text("#error-summary")
    check_screen(page, "23-disk-full-vi", shots)
    click(page, "English")
    assert "Please go to the counter" in page.inner_text("#error-summary")
    check_screen(page, "23-disk-full-en", shots)


def _visit_to_approval(screen: Page, kiosk: Kiosk) -> None:
    screen.goto(kiosk.url + "/", wait_until="domcontentloaded")
    wait_step(screen, "welcome")
    click(screen, "Đồng ý và bắt đầu")
    wait_step(screen, "identify")
    click(screen, "Đọc thẻ")
    wait_step(screen, "face")
    click(screen, "Bắt đầu kiểm tra")
    wait_step(screen, "capture")
    click(screen, "Chụp trang này")
    wait_step(screen, "page")
    click(screen, "Dùng trang này")
    wait_step(screen, "capture")
    click(screen, "Đã chụp xong")
    wait_step(screen, "review")
    screen.check("#delivery-wallet")
    click(screen, "Tiếp tục")
    wait_step(screen, "confirm")
    click(screen, "Gửi yêu cầu")
    wait_step(screen, "approved", timeout_ms=60_000)


@pytest.mark.broker
@pytest.mark.hsm
def test_paper_out_on_either_printer_is_said_plainly(
    stack: tuple[Office, Kiosk, Officer_],  # noqa: F811
    page: Page,  # noqa: F811
) -> None:
    office, kiosk, _officer = stack
    shots: list[str] = []
    printer = kiosk.agent.devices.document_printer
    assert isinstance(printer, SimulatedDocumentPrinter)
    printer.paper_out = True
    _visit_to_approval(page, kiosk)
    assert "hết giấy" in page.inner_text("[role=alert]")
    assert page.inner_text("dd.code >> nth=0").strip()
    check_screen(page, "24-paper-out-a4-vi", shots)
    click(page, "English")
    assert "The A4 printer is out of paper" in page.inner_text("[role=alert]")
    check_screen(page, "24-paper-out-a4-en", shots)
    click(page, "Finish")
    wait_step(page, "welcome")

    printer.paper_out = False
    simulator = kiosk.agent.devices.receipt_simulator
    assert simulator is not None
    simulator.paper = Paper.OUT
    _visit_to_approval(page, kiosk)
    assert "máy in biên nhận hết giấy" in page.inner_text("[role=alert]")
    check_screen(page, "25-paper-out-receipt-vi", shots)
    click(page, "English")
    assert "receipt printer is out of paper" in page.inner_text("[role=alert]")
    check_screen(page, "25-paper-out-receipt-en", shots)
    printed = list((kiosk.agent.config.data_dir.parent / "printed").glob("*.pdf"))
    assert len(printed) == 1  # the second copy printed, the first never did
    states = [r.state for r in office.bridge.store.list_requests()]
    assert states == ["approved", "approved"]
