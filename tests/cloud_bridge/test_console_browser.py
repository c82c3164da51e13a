"""Browser tests in headless Chromium: login with TOTP, queue, decisions, lookup.

Screenshots go to ``test-artifacts/`` (ignored by git) for a human to look at.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Page, expect, sync_playwright

from cloud_bridge.console import accounts
from cloud_bridge.context import Bridge
from cloud_bridge.copies import IssuedCopy, Officer
from cloud_bridge.http.app import create_app
from tests.cloud_bridge.consoles import PASSWORD, add_account, add_request
from tests.conftest import free_port
from tests.edge.browser import axe_violations

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture
def server(bridge: Bridge) -> Iterator[str]:
    """The bridge's app served by uvicorn on a free port; yields its address."""
    port = free_port()
    config = uvicorn.Config(
        create_app(bridge), host="127.0.0.1", port=port, log_level="warning"
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page() -> Iterator[Page]:
    """A page in a fresh headless Chromium."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed; apt-get install chromium")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        # bypass_csp lets the test inject axe-core; the pages' own CSP stays.
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, bypass_csp=True
        )
        yield context.new_page()
        browser.close()


def test_officer_logs_in_approves_and_rejects(
    bridge: Bridge, server: str, page: Page
) -> None:
    officer = add_account(bridge, "officer", "Nguyễn Thị Hương")
    first = add_request(bridge, citizen_name="Phạm Minh Đức")
    second = add_request(bridge, citizen_name="<img src=x onerror=alert(1)>Lan")

    page.goto(f"{server}/console/login")
    assert axe_violations(page) == [], "login"
    page.fill("#username", officer.username)
    page.fill("#password", PASSWORD)
    page.fill("#code", officer.totp.now())
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{server}/console/queue")
    expect(page.locator("#queue-body tr")).to_have_count(2)
    add_request(bridge, citizen_name="Đến Sau")
    expect(page.locator("#queue-body tr")).to_have_count(3, timeout=8000)
    page.screenshot(path=str(ARTIFACTS / "console-queue.png"), full_page=True)
    assert axe_violations(page) == [], "queue"

    page.click(f"a[href='/console/requests/{first.request_id}']")
    expect(page.locator("#citizen-name")).to_have_text("Phạm Minh Đức")
    page.screenshot(path=str(ARTIFACTS / "console-request.png"), full_page=True)
    assert axe_violations(page) == [], "request page"
    opened = time.perf_counter()
    page.keyboard.press("a")
    page.wait_for_url(f"{server}/console/requests/{second.request_id}")
    decided = time.perf_counter() - opened
    print(f"officer time for a clean request (open to decision): {decided:.2f} s")

    expect(page.locator("#citizen-name")).to_have_text(
        "<img src=x onerror=alert(1)>Lan"
    )
    page.keyboard.press("r")
    expect(page.locator("#reason")).to_be_focused()
    page.fill("#custom_reason", "Trang bị mờ.")
    page.click("#reject")
    page.wait_for_url(f"{server}/console/requests/**")

    assert bridge.store.get_request(first.request_id).state == "approved"
    rejected = bridge.store.get_request(second.request_id)
    assert rejected.state == "rejected"
    assert rejected.decision_reason == "Trang bị mờ."
    assert decided < 20


def _log_in(page: Page, server: str, username: str, code: str) -> None:
    page.goto(f"{server}/console/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.fill("#code", code)
    page.click("button[type=submit]")


def test_administrator_manages_users(bridge: Bridge, server: str, page: Page) -> None:
    admin = add_account(bridge, "administrator", "Trần Quản Trị")
    officer = add_account(bridge, "officer", "Nguyễn Thị Hương")

    _log_in(page, server, admin.username, admin.totp.now())
    expect(page).to_have_url(f"{server}/console/users")
    expect(page.locator(f"#user-{officer.username}")).to_be_visible()
    assert axe_violations(page) == [], "users"
    page.screenshot(path=str(ARTIFACTS / "console-users.png"), full_page=True)

    page.fill("#new-username", "le.thi.moi")
    page.fill("#new-full-name", "Lê Thị Mới")
    page.select_option("#new-role", "supervisor")
    page.fill("#new-password", "a long first password")
    page.click("#create-user")
    secret = page.locator("#enrolment-secret").inner_text().replace(" ", "")
    expect(page.locator("#enrolment-qr")).to_be_visible()
    assert axe_violations(page) == [], "enrolment"
    page.screenshot(path=str(ARTIFACTS / "console-enrolment.png"), full_page=True)

    page.goto(f"{server}/console/users")
    row = page.locator(f"#user-{officer.username}")
    row.locator("select").select_option("auditor")
    row.get_by_role("button", name="Đổi vai trò").click()
    expect(page.locator(".notice")).to_contain_text(officer.username)
    row = page.locator(f"#user-{officer.username}")
    row.get_by_role("button", name="Vô hiệu hóa").click()
    expect(page.locator(f"#user-{officer.username} .status")).to_contain_text(
        "Đã vô hiệu hóa"
    )
    assert axe_violations(page) == [], "users after changes"
    page.goto(f"{server}/console/users?lang=en")
    expect(page.locator("h1")).to_have_text("Users")
    assert axe_violations(page) == [], "users in English"

    assert len(secret) == 32
    roles = {(a.username, a.role, a.disabled) for a in list_accounts(bridge)}
    assert (officer.username, "auditor", True) in roles
    assert ("le.thi.moi", "supervisor", False) in roles


def list_accounts(bridge: Bridge) -> list[Any]:
    """Return the accounts as the administrator's page lists them."""
    return accounts.list_accounts(bridge.store.engine)


@pytest.fixture
def issued(bridge: Bridge) -> IssuedCopy:
    """One issued copy, made before the browser's event loop starts."""
    request = add_request(bridge)
    return bridge.copies.certify(request.request_id, Officer("Lê Văn An", "Công chức"))


def test_lookup_page_on_a_phone(issued: IssuedCopy, server: str, page: Page) -> None:
    page.set_viewport_size({"width": 375, "height": 812})

    page.goto(f"{server}/c/{issued.copy_id}")
    status = page.get_by_role("status")
    expect(status).to_contain_text("còn hiệu lực")
    assert axe_violations(page) == [], "lookup"
    page.fill("#access_code", issued.access_code)
    page.click("button[type=submit]")
    expect(page.locator("#verification")).to_contain_text("hợp lệ")
    page.screenshot(path=str(ARTIFACTS / "lookup-phone-vi.png"), full_page=True)
    assert axe_violations(page) == [], "opened copy"
    page.goto(f"{server}/c/{issued.copy_id}?lang=en")
    expect(page.get_by_role("status")).to_contain_text("This copy is valid.")
    page.screenshot(path=str(ARTIFACTS / "lookup-phone-en.png"), full_page=True)
    assert axe_violations(page) == [], "lookup in English"

    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375
