"""The fleet pages in headless Chromium: sign-in, list, kiosk page, a command.

A fleet manager signs in at the console, reaches the kiosk list, opens a
kiosk and sends it a ping; the command reaches a kiosk subscribed at a real
TLS Mosquitto, and every page has zero axe-core (WCAG 2.2 AA) violations.
Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import Page, expect, sync_playwright

from cloud_bridge.config import BridgeConfig
from cloud_bridge.context import Bridge
from cloud_bridge.fleet.ca import KioskCa
from cloud_bridge.fleet.registry import Batch
from cloud_bridge.fleet.service import Fleet
from cloud_bridge.http.app import create_app
from cloud_bridge.http.routers import bridge_routers
from protocol.commands import Command
from protocol.envelope import new_message, parse_message
from protocol.telemetry import DeviceHealth, Health, Status
from tests.broker import RunningBroker, client_identity, connect, start_broker
from tests.cloud_bridge.consoles import PASSWORD, add_account
from tests.cloud_bridge.test_console_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.conftest import free_port
from tests.edge.browser import axe_violations

pytestmark = [pytest.mark.slow, pytest.mark.browser]

KIOSKS = ("kiosk-hk01", "kiosk-hk02", "kiosk-q3-07")


@pytest.fixture
def broker(bridge_config: BridgeConfig, tmp_path: Path) -> Iterator[RunningBroker]:
    """A private Mosquitto using the bridge's kiosk CA."""
    ca_dir = bridge_config.path(bridge_config.fleet.ca_dir)
    running = start_broker(tmp_path, ca_dir)
    yield running
    running.stop()


@pytest.fixture
def bridge(bridge_config: BridgeConfig, broker: RunningBroker) -> Iterator[Bridge]:
    """A bridge whose fleet talks to ``broker``, with three kiosks registered."""
    fleet_section = bridge_config.fleet.model_copy(
        update={"broker_port": broker.port, "model_version": "2.1"}
    )
    config = bridge_config.model_copy(update={"fleet": fleet_section})
    bridge = Bridge(config)
    fleet = Fleet(config)
    for kiosk_id in KIOSKS:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = fleet.ca.issue_for_key(kiosk_id, key.public_key(), timedelta(days=30))
        fleet.registry.record_certificate(kiosk_id, cert)
    printer = DeviceHealth(state="degraded", reason="paper low")
    fleet.registry.store(
        Batch(
            health=[
                new_message(
                    Health,
                    kiosk_id=KIOSKS[0],
                    paper_percent=12.0 + n,
                    cpu_temp_c=48.0 + n,
                    load_1m=0.4,
                    devices={"printer": printer},
                    model_version="2.1",
                    software_version="1.4.0",
                )
                for n in range(5)
            ],
            statuses=[new_message(Status, kiosk_id=KIOSKS[2], state="offline")],
        )
    )
    fleet.close()
    yield bridge
    bridge.close()


@pytest.fixture
def server(bridge: Bridge) -> Iterator[str]:
    """The bridge's app with the fleet routes, served by uvicorn."""
    port = free_port()
    app = create_app(bridge, routers=bridge_routers(bridge))
    running = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    )
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
def kiosk_inbox(
    broker: RunningBroker, tmp_path: Path
) -> Iterator[queue.Queue[mqtt.MQTTMessage]]:
    """Commands the first kiosk receives at the broker."""
    identity = client_identity(KioskCa(broker.ca_dir), tmp_path / "ids", KIOSKS[0])
    client = connect(broker, identity)
    inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    subscribed = threading.Event()
    client.on_message = lambda _c, _u, message: inbox.put(message)
    client.on_subscribe = lambda *_: subscribed.set()
    client.subscribe(f"office/{KIOSKS[0]}/commands", qos=1)
    assert subscribed.wait(10), "the kiosk could not subscribe to its commands"
    yield inbox
    client.disconnect()
    client.loop_stop()


@pytest.fixture
def page() -> Iterator[Page]:
    """A page in a fresh headless Chromium (CSP bypassed only to inject axe)."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed; apt-get install chromium")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, bypass_csp=True
        )
        yield context.new_page()
        browser.close()


def test_fleet_manager_lists_opens_and_pings_a_kiosk(
    bridge: Bridge,
    server: str,
    page: Page,
    kiosk_inbox: queue.Queue[mqtt.MQTTMessage],
) -> None:
    manager = add_account(bridge, "fleet_manager", "Trần Quốc Bảo")
    errors: list[str] = []
    page.on(
        "console",
        lambda m: (
            errors.append(f"{m.text} {m.location}") if m.type == "error" else None
        ),
    )
    failed: list[str] = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)

    page.goto(f"{server}/console/login")
    page.fill("#username", manager.username)
    page.fill("#password", PASSWORD)
    page.fill("#code", manager.totp.now())
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{server}/fleet/")
    # The console's login page is not under test here (its favicon is a 404).
    errors.clear()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(len(KIOSKS))
    kiosk_header = page.get_by_role("columnheader", name="Kiosk")
    expect(kiosk_header).to_have_attribute("aria-sort", "ascending")
    expect(page.get_by_role("heading", level=1)).to_have_text("Kiosk fleet")
    expect(rows.filter(has_text=KIOSKS[0])).to_contain_text("paper low")
    expect(rows.filter(has_text=KIOSKS[2])).to_contain_text("offline")
    page.screenshot(path=str(ARTIFACTS / "fleet-list.png"), full_page=True)
    assert axe_violations(page) == [], "kiosk list"

    page.get_by_label("State").select_option("online")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(KIOSKS[0])
    assert axe_violations(page) == [], "filtered list"

    page.goto(f"{server}/fleet/")
    page.get_by_role("link", name=KIOSKS[0]).click()
    expect(page).to_have_url(f"{server}/fleet/kiosks/{KIOSKS[0]}")
    expect(page.get_by_role("img", name="Paper (%), latest 16.0")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "fleet-kiosk.png"), full_page=True)
    assert axe_violations(page) == [], "kiosk page"

    # By keyboard: focus the button and press Enter.
    page.get_by_role("button", name="ping", exact=True).focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{server}/fleet/kiosks/{KIOSKS[0]}?sent=ping")
    expect(page.get_by_role("status")).to_contain_text("“ping” sent")
    history = page.get_by_role("table", name="Commands sent")
    expect(history.locator("tbody tr")).to_have_count(1)
    expect(history).to_contain_text("waiting")
    expect(history).to_contain_text(manager.username)  # who sent it
    message = kiosk_inbox.get(timeout=10)
    command = parse_message(Command, bytes(message.payload))
    assert command.kiosk_id == KIOSKS[0]
    assert command.name == "ping"
    assert command.signature
    page.screenshot(path=str(ARTIFACTS / "fleet-command-sent.png"), full_page=True)
    assert axe_violations(page) == [], "kiosk page after a command"
    assert failed == [], "the pages asked for something the bridge does not serve"
    assert errors == [], "the pages logged errors (CSP or scripts)"
