"""Console login: password and TOTP, lockout, sessions, CSRF, roles, headers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from fastapi.testclient import TestClient

from cloud_bridge.commands.console import add_user_command
from cloud_bridge.config import BridgeConfig
from cloud_bridge.console.tables import sessions
from cloud_bridge.context import Bridge
from cloud_bridge.http.app import create_app
from tests.cloud_bridge.consoles import add_account, add_request, csrf_of, login


@pytest.fixture
def bridge(bridge_config: BridgeConfig) -> Iterator[Bridge]:
    """A bridge over a fresh database (no HSM use in these tests)."""
    bridge = Bridge(bridge_config)
    yield bridge
    bridge.close()


@pytest.fixture
def client(bridge: Bridge) -> TestClient:
    """A browser-like client of the app."""
    return TestClient(create_app(bridge))


def test_password_and_totp_open_a_session(bridge: Bridge, client: TestClient) -> None:
    officer = add_account(bridge, "officer")

    answer = login(client, officer)
    queue = client.get("/console/queue")

    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/queue"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    assert queue.status_code == 200
    assert "Hàng chờ duyệt" in queue.text


def test_wrong_code_is_refused_without_saying_which(
    bridge: Bridge, client: TestClient
) -> None:
    officer = add_account(bridge, "officer")

    answer = login(client, officer, code="000000")

    assert answer.status_code == 401
    assert "không đúng" in answer.text
    assert client.get("/console/queue", follow_redirects=False).status_code == 303


def test_replayed_code_is_refused(bridge: Bridge) -> None:
    officer = add_account(bridge, "officer")
    code = officer.totp.now()
    first = login(TestClient(create_app(bridge)), officer, code)

    second = login(TestClient(create_app(bridge)), officer, code)

    assert first.status_code == 303
    assert second.status_code == 401


def test_repeated_failures_lock_the_account(bridge: Bridge, client: TestClient) -> None:
    officer = add_account(bridge, "officer")
    for _ in range(bridge.config.console.max_failed_logins):
        login(client, officer, code="123456")

    answer = login(client, officer)

    assert answer.status_code == 401
    assert "tạm khóa" in answer.text


def test_forged_cookie_leads_to_the_login_page(client: TestClient) -> None:
    client.cookies.set("console_session", "forged-value", path="/console")

    answer = client.get("/console/queue", follow_redirects=False)

    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login"


def test_idle_session_expires(bridge: Bridge, client: TestClient) -> None:
    login(client, add_account(bridge, "officer"))
    past = datetime.now(UTC) - timedelta(hours=1)
    with bridge.store.engine.begin() as connection:
        connection.execute(sa.update(sessions).values(last_seen_at=past))

    answer = client.get("/console/queue", follow_redirects=False)

    assert answer.status_code == 303


def test_post_without_csrf_token_is_refused(bridge: Bridge, client: TestClient) -> None:
    login(client, add_account(bridge, "officer"))
    request = add_request(bridge)

    answer = client.post(
        f"/console/requests/{request.request_id}/reject",
        data={"reason": "x", "csrf_token": "wrong"},
    )

    assert answer.status_code == 403
    assert bridge.store.get_request(request.request_id).state == "pending"


def test_cross_site_post_is_refused(bridge: Bridge, client: TestClient) -> None:
    login(client, add_account(bridge, "officer"))
    request = add_request(bridge)
    csrf = csrf_of(client.get(f"/console/requests/{request.request_id}").text)

    answer = client.post(
        f"/console/requests/{request.request_id}/reject",
        data={"reason": "x", "csrf_token": csrf},
        headers={"Origin": "https://evil.example"},
    )

    assert answer.status_code == 403
    assert bridge.store.get_request(request.request_id).state == "pending"


def test_each_role_sees_only_its_pages(bridge: Bridge) -> None:
    auditor, fleet = TestClient(create_app(bridge)), TestClient(create_app(bridge))
    login(auditor, add_account(bridge, "auditor"))
    login(fleet, add_account(bridge, "fleet_manager"))

    assert auditor.get("/console/queue").status_code == 403
    assert auditor.get("/console/audit").status_code == 200
    assert fleet.get("/console/queue").status_code == 403
    assert fleet.get("/console/audit").status_code == 403


def test_supervisor_sees_the_id_number_masked(
    bridge: Bridge, client: TestClient
) -> None:
    login(client, add_account(bridge, "supervisor"))
    request = add_request(bridge)

    page = client.get(f"/console/requests/{request.request_id}")
    image = client.get(f"/console/requests/{request.request_id}/pages/1")

    assert page.status_code == 200
    assert "001085000123" not in page.text
    assert image.status_code == 403


def test_pages_carry_security_headers(client: TestClient) -> None:
    page = client.get("/console/login")

    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "<script>" not in page.text
    assert page.headers["x-frame-options"] == "DENY"


def test_add_user_command_reads_the_password_from_stdin(
    bridge_config: BridgeConfig,
) -> None:
    bridge_config.data_dir.mkdir(parents=True, exist_ok=True)
    env = {"KIOSK_BRIDGE__DATABASE__URL": bridge_config.database_url()}

    result = CliRunner().invoke(
        add_user_command,
        [
            *("huong", "--role", "officer", "--full-name", "Nguyễn Thị Hương"),
            "--password-stdin",
        ],
        input="a long enough password\n",
        env=env,
    )

    assert result.exit_code == 0, result.output
    assert "otpauth://totp/" in result.output
    assert "a long enough password" not in result.output


def test_cookie_is_secure_over_https_and_logout_ends_the_session(
    bridge: Bridge,
) -> None:
    client = TestClient(create_app(bridge), base_url="https://testserver")
    answer = login(client, add_account(bridge, "officer"))
    csrf = csrf_of(client.get("/console/queue").text)

    client.post("/console/logout", data={"csrf_token": csrf})
    after = client.get("/console/queue", follow_redirects=False)

    assert "Secure" in answer.headers["set-cookie"]
    assert after.status_code == 303
