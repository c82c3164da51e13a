"""Helpers for the console, delivery and reuse tests: users, requests, logins."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import pyotp
from fastapi.testclient import TestClient

from cloud_bridge.console.totp_secrets import box_from_config
from cloud_bridge.console.users import create_user
from cloud_bridge.context import Bridge
from cloud_bridge.store import RequestDraft, RequestRecord
from tests.cloud_bridge.samples import jpeg_bytes, scan_page

PASSWORD = "correct horse battery"
CLEAN_METADATA: dict[str, Any] = {
    "fields": {
        "full_name": {"value": "Phạm Minh Đức", "confidence": 0.97},
        "document_number": {"value": "B-1234567", "confidence": 0.62},
    },
    "face": {"score": 0.91, "threshold": 0.6},
    "liveness": {"passed": True, "score": 0.98},
    "quality": [],
    "mismatches": [],
    "fee_vnd": 2000,
}


@dataclass(frozen=True)
class Account:
    """A console user the test created, with its TOTP generator."""

    username: str
    full_name: str
    totp: pyotp.TOTP


def add_account(
    bridge: Bridge, role: str, full_name: str = "Nguyễn Thị Hương"
) -> Account:
    """Create a user with :data:`PASSWORD` and return how to log in as them."""
    username = f"{role[:6]}{uuid.uuid4().hex[:6]}"
    created = create_user(
        bridge.store.engine,
        username,
        role=role,
        full_name=full_name,
        title="Công chức Tư pháp - Hộ tịch",
        password=PASSWORD,
        box=box_from_config(bridge.config, bridge.token),
    )
    secret = pyotp.parse_uri(created.provisioning_uri).secret
    return Account(username, full_name, pyotp.TOTP(secret))


def add_request(
    bridge: Bridge,
    *,
    citizen_name: str = "Phạm Minh Đức",
    metadata: dict[str, Any] | None = None,
    seed: int = 3,
) -> RequestRecord:
    """Store a pending kiosk request with one page and the kiosk's findings."""
    digest = bridge.archive.put(jpeg_bytes(scan_page(seed=seed)))
    data = dict(CLEAN_METADATA if metadata is None else metadata)
    data["pages"] = [digest]
    return bridge.store.add_request(
        RequestDraft(
            request_id=uuid.uuid4().hex,
            kiosk_id="kiosk-01",
            office_code=bridge.config.office_code,
            document_type="diploma",
            citizen_name=citizen_name,
            citizen_id_number="001085000123",
            page_count=1,
            metadata=data,
        )
    )


def login(client: TestClient, account: Account, code: str | None = None) -> Any:
    """Log in through the form and return the response (not following redirects)."""
    form = client.get("/console/login")
    token = re.search(r'name="login_token" value="([^"]*)"', form.text)
    assert token is not None
    return client.post(
        "/console/login",
        data={
            "username": account.username,
            "password": PASSWORD,
            "code": code or account.totp.now(),
            "login_token": token.group(1),
        },
        follow_redirects=False,
    )


def csrf_of(html: str) -> str:
    """Return the CSRF token in a console page."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "the page has no CSRF token"
    return found.group(1)
