"""The administrator's users page, and TOTP secrets encrypted at rest."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pyotp
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from cloud_bridge.audit import recent, verify_chain
from cloud_bridge.config import BridgeConfig
from cloud_bridge.console.tables import users
from cloud_bridge.console.totp_secrets import TotpSecretBox, box_from_config
from cloud_bridge.context import Bridge
from cloud_bridge.http.app import create_app
from kiosk.errors import ConfigError
from tests.cloud_bridge.consoles import (
    PASSWORD,
    Account,
    add_account,
    csrf_of,
    login,
)


@pytest.fixture
def bridge(bridge_config: BridgeConfig) -> Iterator[Bridge]:
    """A bridge over a fresh database (no HSM use in these tests)."""
    bridge = Bridge(bridge_config)
    yield bridge
    bridge.close()


@pytest.fixture
def admin(bridge: Bridge) -> tuple[TestClient, Account]:
    """A client logged in as an administrator, and that account."""
    client = TestClient(create_app(bridge))
    account = add_account(bridge, "administrator", "Trần Quản Trị")
    assert login(client, account).status_code == 303
    return client, account


def _stored_secret(bridge: Bridge, username: str) -> str:
    with bridge.store.engine.connect() as connection:
        query = sa.select(users.c.totp_secret).where(users.c.username == username)
        return str(connection.execute(query).scalar_one())


def _actions(bridge: Bridge, subject: str) -> list[tuple[str, str]]:
    entries = recent(bridge.store.engine, 200)
    return [(e.actor, e.action) for e in reversed(entries) if e.subject == subject]


def _post(client: TestClient, url: str, **form: str) -> object:
    token = csrf_of(client.get("/console/users").text)
    return client.post(url, data={"csrf_token": token, **form}, follow_redirects=False)


def _create(client: TestClient, username: str, role: str = "officer") -> str:
    token = csrf_of(client.get("/console/users").text)
    page = client.post(
        "/console/users",
        data={
            "csrf_token": token,
            "username": username,
            "full_name": "Lê Thị Mới",
            "title": "Công chức Tư pháp - Hộ tịch",
            "role": role,
            "password": PASSWORD,
        },
    )
    assert page.status_code == 200, page.text
    found = re.search(r'id="enrolment-secret">([A-Z2-7 ]+)<', page.text)
    assert found is not None
    assert 'src="data:image/svg+xml' in page.text
    assert page.headers["cache-control"] == "no-store"
    return found.group(1).replace(" ", "")


def test_totp_secrets_are_not_stored_in_plain_text(bridge: Bridge) -> None:
    officer = add_account(bridge, "officer")
    client = TestClient(create_app(bridge))

    stored = _stored_secret(bridge, officer.username)
    database = (bridge.config.data_dir / "bridge.db").read_bytes()

    assert stored.startswith("v1:")
    assert officer.totp.secret not in stored
    assert officer.totp.secret.encode() not in database
    assert login(client, officer).status_code == 303


def test_plain_secrets_from_before_are_encrypted_and_still_work(
    bridge: Bridge,
) -> None:
    officer = add_account(bridge, "officer")
    with bridge.store.engine.begin() as connection:
        connection.execute(
            users.update()
            .where(users.c.username == officer.username)
            .values(totp_secret=officer.totp.secret)
        )

    client = TestClient(create_app(bridge))  # the console seals old rows

    assert _stored_secret(bridge, officer.username).startswith("v1:")
    assert login(client, officer).status_code == 303


def test_a_secret_needs_its_key_and_its_own_row(bridge: Bridge) -> None:
    box = box_from_config(bridge.config, bridge.token)
    other = TotpSecretBox(b"\x01" * 32)
    sealed = box.seal("JBSWY3DPEHPK3PXP", "alice")

    with pytest.raises(ConfigError, match=box.key_id):
        other.open(sealed, "alice")
    with pytest.raises(ConfigError):
        box.open(sealed, "mallory")  # copied onto another user's row
    assert box.open(sealed, "alice") == "JBSWY3DPEHPK3PXP"
    key_file = bridge.config.data_dir / "secrets" / "totp-key"
    wrapped = key_file.read_text()
    assert wrapped.startswith(f"hsm-v1:console-totp-wrap:{box.key_id}:")
    assert key_file.stat().st_mode & 0o077 == 0
    # the file alone is useless: its bytes are not the key
    blob = base64.b64decode(wrapped.strip().split(":")[3])
    assert len(blob) == 64 and TotpSecretBox(blob[16:48]).key_id != box.key_id


def test_a_key_file_in_clear_is_wrapped_in_place(bridge: Bridge) -> None:
    key = bytes(range(32))
    key_file = bridge.config.data_dir / "secrets" / "totp-key"
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(base64.b64encode(key).decode() + "\n")

    box = box_from_config(bridge.config, bridge.token)
    again = box_from_config(bridge.config, bridge.token)

    assert box.key_id == again.key_id == TotpSecretBox(key).key_id
    assert key_file.read_text().startswith("hsm-v1:")
    assert base64.b64encode(key).decode() not in key_file.read_text()
    assert key_file.stat().st_mode & 0o077 == 0


class OtherToken:
    """A stand-in for another office's token: a different wrapping."""

    def encrypt(self, label: str, data: bytes) -> bytes:
        return bytes(16) + bytes(b ^ 0x5A for b in data) + bytes(16)

    def decrypt(self, label: str, blob: bytes) -> bytes:
        return bytes(b ^ 0x5A for b in blob[16:-16])


def test_a_key_wrapped_elsewhere_is_refused_clearly(bridge: Bridge) -> None:
    box_from_config(bridge.config, OtherToken())  # made on "another token"

    with pytest.raises(ConfigError, match="another token"):
        box_from_config(bridge.config, bridge.token)
    clear = bridge.config.model_copy(
        update={
            "console": bridge.config.console.model_copy(
                update={"totp_key_wrapping": "none"}
            )
        }
    )
    with pytest.raises(ConfigError, match="totp_key_wrapping"):
        box_from_config(clear)


def test_administrator_creates_a_user_who_enrols_and_logs_in(
    bridge: Bridge, admin: tuple[TestClient, Account]
) -> None:
    client, account = admin
    username = f"new{uuid.uuid4().hex[:6]}"

    secret = _create(client, username)
    listing = client.get("/console/users")
    newcomer = Account(username, "Lê Thị Mới", pyotp.TOTP(secret))
    other = TestClient(create_app(bridge))

    assert f'id="user-{username}"' in listing.text
    assert secret not in listing.text  # the enrolment is shown once
    assert login(other, newcomer).status_code == 303
    assert (account.username, "user.create") in _actions(bridge, username)


def test_role_change_disable_reset_and_unlock_are_audited(
    bridge: Bridge, admin: tuple[TestClient, Account]
) -> None:
    client, account = admin
    officer = add_account(bridge, "officer")
    theirs = TestClient(create_app(bridge))
    assert login(theirs, officer).status_code == 303
    base = f"/console/users/{officer.username}"

    role = _post(client, f"{base}/role", role="supervisor")
    as_supervisor = theirs.get("/console/supervisor")
    disable = _post(client, f"{base}/disable")
    after_disable = theirs.get("/console/supervisor", follow_redirects=False)
    _post(client, f"{base}/enable")
    with bridge.store.engine.begin() as connection:
        connection.execute(
            users.update()
            .where(users.c.username == officer.username)
            .values(locked_until=datetime(2999, 1, 1, tzinfo=UTC))
        )
    locked_page = client.get("/console/users").text
    unlock = _post(client, f"{base}/unlock")
    reset = client.post(f"{base}/reset-totp", data={"csrf_token": csrf_of(locked_page)})
    new_secret = re.search(r'id="enrolment-secret">([A-Z2-7 ]+)<', reset.text)

    assert getattr(role, "status_code", None) == 303
    assert as_supervisor.status_code == 200
    assert getattr(disable, "status_code", None) == 303
    assert after_disable.status_code == 303  # its session ended
    assert "Tạm khóa do nhập sai" in locked_page
    assert getattr(unlock, "status_code", None) == 303
    assert new_secret is not None
    fresh = Account(
        officer.username,
        officer.full_name,
        pyotp.TOTP(new_secret.group(1).replace(" ", "")),
    )
    assert login(TestClient(create_app(bridge)), officer).status_code == 401
    assert login(TestClient(create_app(bridge)), fresh).status_code == 303
    actor = account.username
    assert _actions(bridge, officer.username)[2:] == [
        (actor, "user.role"),
        (actor, "user.disable"),
        (actor, "user.enable"),
        (actor, "user.unlock"),
        (actor, "user.totp_reset"),
        (officer.username, "login"),
    ]
    assert verify_chain(bridge.store.engine).ok


def test_users_page_refuses_others_forged_posts_and_self_harm(
    bridge: Bridge, admin: tuple[TestClient, Account]
) -> None:
    client, account = admin
    officer = add_account(bridge, "officer")
    theirs = TestClient(create_app(bridge))
    login(theirs, officer)
    target = f"/console/users/{officer.username}/disable"

    by_officer = theirs.get("/console/users")
    no_token = client.post(target, data={}, follow_redirects=False)
    cross_site = client.post(
        target,
        data={"csrf_token": csrf_of(client.get("/console/users").text)},
        headers={"Origin": "https://evil.example"},
    )
    own = _post(client, f"/console/users/{account.username}/disable")
    bad_role = _post(client, f"/console/users/{officer.username}/role", role="root")

    assert by_officer.status_code == 403
    assert no_token.status_code == 403
    assert cross_site.status_code == 403
    assert getattr(own, "status_code", None) == 400
    assert getattr(bad_role, "status_code", None) == 400
    assert theirs.get("/console/queue").status_code == 200  # still enabled


def test_a_bridge_with_another_key_refuses_logins_clearly(bridge: Bridge) -> None:
    officer = add_account(bridge, "officer")
    other_key = base64.b64encode(b"\x02" * 32).decode()
    data = bridge.config.model_dump()
    data["console"]["totp_key"] = other_key
    other = Bridge(BridgeConfig.model_validate(data))
    client = TestClient(create_app(other))

    answer = login(client, officer)

    assert answer.status_code == 401
    assert "lỗi cấu hình" in answer.text
    assert _stored_secret(bridge, officer.username).startswith("v1:")
    other.close()
