"""``kiosk bench console``: what an officer waits for, and email delivery time.

A throw-away bridge (as ``kiosk bench sign`` makes it: its own SoftHSM2
token, PKI, SQLite and trust services in a separate process) serves the
console with uvicorn; headless Chromium logs in with TOTP and approves clean
requests one after another with the ``A`` key, as an officer does. For each
request it measures the request page's load and the time from the key press
to the next request's page (signing included), and the console's own review
timer (page opened to decision). After each approval the copy is emailed
with its PDF through a local aiosmtpd server and that send is timed.

The officer's own reading time is not simulated, so the review figures are
the system's share of the 20 s target.
"""

from __future__ import annotations

import email
import json
import logging
import os
import secrets
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import pyotp
import uvicorn
from aiosmtpd.controller import Controller

from cloud_bridge.bench import (
    _free_port,
    _read_port,
    _run_kiosk,
    _sample_page,
    _start_trust_services,
    _write_config,
)
from cloud_bridge.config import load_bridge_config
from cloud_bridge.console.review import ReviewService
from cloud_bridge.console.totp_secrets import box_from_config
from cloud_bridge.console.users import create_user
from cloud_bridge.context import Bridge
from cloud_bridge.decisions import OutboxDecisionSink
from cloud_bridge.delivery.service import DeliveryService
from cloud_bridge.http.app import create_app
from cloud_bridge.store import RequestDraft

logger = logging.getLogger(__name__)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A throw-away account in a throw-away bridge: its password is random.
PASSWORD = secrets.token_urlsafe(16)
CLEAN = {
    "fields": {"full_name": {"value": "Phạm Minh Đức", "confidence": 0.97}},
    "face": {"score": 0.91, "threshold": 0.6},
    "liveness": {"passed": True, "score": 0.98},
    "quality": [],
    "mismatches": [],
    "fee_vnd": 2000,
}


class _Inbox:
    """Count the messages the local SMTP server receives."""

    def __init__(self) -> None:
        self.subjects: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the subject of each message."""
        parsed = email.message_from_bytes(envelope.content)
        self.subjects.append(str(parsed["Subject"]))
        return "250 OK"


@click.command("console")
@click.option("--requests", "count", default=10, type=click.IntRange(2, 200))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def console_bench(count: int, as_json: bool) -> None:
    """Approve clean requests in Chromium; print review and email times."""
    if not CHROMIUM.exists():
        raise click.ClickException("Chromium is missing; apt-get install chromium")
    inbox = _Inbox()
    smtp_port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        with tempfile.TemporaryDirectory(prefix="kiosk-bench-console-") as tmp:
            report = _run(Path(tmp), smtp_port, count, inbox)
    finally:
        controller.stop()
    report["loadavg"] = list(os.getloadavg())
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for key, value in report.items():
        click.echo(f"{key}: {value}")


def _run(root: Path, smtp_port: int, count: int, inbox: _Inbox) -> dict[str, Any]:
    config_path = _write_config(root, "B-LTA", None)
    with config_path.open("a", encoding="utf-8") as handle:
        handle.write(f"[delivery]\npoll_s = 600\n[delivery.smtp]\nport = {smtp_port}\n")
    _run_kiosk(["bridge", "init", "--config", str(config_path)])
    trust = _start_trust_services(config_path, int(_read_port(config_path)))
    bridge = Bridge(load_bridge_config(config_path))
    try:
        totp = _add_officer(bridge)
        ids = [_add_request(bridge, n) for n in range(count)]
        deliveries = DeliveryService(bridge.config, bridge.store, bridge.archive)
        app = create_app(bridge, deliveries=deliveries)
        with _serve(app) as url:
            timings = _review(url, totp, ids, deliveries)
        sink = OutboxDecisionSink(bridge.store.engine)
        review = ReviewService(bridge, sink, deliveries).stats()
        stats = _summary(timings)
        stats["console_review_median_s"] = review.median_s
        stats["requests"] = count
        stats["emails_received"] = len(inbox.subjects)
        return stats
    finally:
        bridge.close()
        trust.terminate()
        trust.wait(timeout=10)


def _add_officer(bridge: Bridge) -> pyotp.TOTP:
    created = create_user(
        bridge.store.engine,
        "bench.officer",
        role="officer",
        full_name="Nguyễn Thị Hương",
        title="Công chức Tư pháp - Hộ tịch",
        password=PASSWORD,
        box=box_from_config(bridge.config, bridge.token),
    )
    return pyotp.TOTP(pyotp.parse_uri(created.provisioning_uri).secret)


def _add_request(bridge: Bridge, number: int) -> str:
    digest = bridge.archive.put(_sample_page())
    metadata: dict[str, Any] = {
        **CLEAN,
        "pages": [digest],
        "delivery": {"email": f"citizen{number}@example.vn", "attach_pdf": True},
    }
    record = bridge.store.add_request(
        RequestDraft(
            request_id=uuid.uuid4().hex,
            kiosk_id="bench-kiosk",
            office_code=bridge.config.office_code,
            document_type="diploma",
            citizen_name=f"Công Dân {number}",
            citizen_id_number="001085000123",
            page_count=1,
            metadata=metadata,
        )
    )
    return record.request_id


@contextmanager
def _serve(app: Any) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise click.ClickException("the console did not start within 15 s")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _review(
    url: str, totp: pyotp.TOTP, ids: list[str], deliveries: DeliveryService
) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    loads: list[float] = []
    decisions: list[float] = []
    sends: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{url}/console/login")
        page.fill("#username", "bench.officer")
        page.fill("#password", PASSWORD)
        page.fill("#code", totp.now())
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/console/queue")
        for request_id in ids:
            started = time.perf_counter()
            page.goto(f"{url}/console/requests/{request_id}")
            page.wait_for_selector("#approve")
            loads.append(time.perf_counter() - started)
            pressed = time.perf_counter()
            with page.expect_navigation():
                page.keyboard.press("a")
            decisions.append(time.perf_counter() - pressed)
            sent = time.perf_counter()
            if deliveries.run_due() != 1:
                raise click.ClickException("the copy's email was not sent")
            sends.append(time.perf_counter() - sent)
        browser.close()
    return {
        "page_load_s": loads,
        "approve_to_next_page_s": decisions,
        "email_send_s": sends,
    }


def _summary(timings: dict[str, list[float]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name, values in timings.items():
        ordered = sorted(values)
        summary[f"{name}_p50"] = round(statistics.median(ordered), 3)
        summary[f"{name}_p95"] = round(ordered[int(0.95 * (len(ordered) - 1))], 3)
    return summary
