"""Console users: argon2 passwords, TOTP second factor, lockout after failures.

A login needs the password and a current TOTP code. Each failure counts;
after ``max_failed_logins`` in a row the account is locked for
``lockout_minutes`` and even the right password is refused until then. A
TOTP code is accepted once (its time step is remembered), so a code seen
over a shoulder cannot be replayed. TOTP secrets are stored encrypted
(:mod:`.totp_secrets`); a row still holding a secret from before that is
sealed by :func:`seal_plain_secrets` when the console starts, or at the
user's next login.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Connection, Engine

from cloud_bridge import audit
from cloud_bridge.config import ConsoleSection
from cloud_bridge.console.tables import ROLES, users
from cloud_bridge.console.totp_secrets import TotpSecretBox, is_sealed
from cloud_bridge.errors import AuthError, InputError, StoreError
from cloud_bridge.store.engine import read_transaction, write_transaction
from kiosk.errors import ConfigError

logger = logging.getLogger(__name__)

HASHER = PasswordHasher()
USERNAME = re.compile(r"[A-Za-z0-9_.]{2,40}")
MIN_PASSWORD_LENGTH = 12
LOGIN_REFUSED = "Tên đăng nhập, mật khẩu hoặc mã xác thực không đúng."
SERVER_PROBLEM = (
    "Máy chủ chưa kiểm tra được mã xác thực do lỗi cấu hình; báo quản trị viên."
)


@dataclass(frozen=True)
class User:
    """A console user: who they are, their role, and the title on copies."""

    username: str
    full_name: str
    title: str
    role: str


@dataclass(frozen=True)
class NewUser:
    """A created user and the TOTP provisioning URI to show once."""

    user: User
    provisioning_uri: str


def create_user(
    engine: Engine,
    username: str,
    *,
    role: str,
    full_name: str,
    title: str,
    password: str,
    box: TotpSecretBox,
    issuer: str = "TTPVHCC",
    actor: str = "cli",
) -> NewUser:
    """Create a user with a new TOTP secret; InputError on a bad role or password."""
    check_role(role)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(
            f"the password is too short; use at least {MIN_PASSWORD_LENGTH} characters"
        )
    if not USERNAME.fullmatch(username):
        raise InputError("a user name is 2 to 40 letters, digits, dots and underscores")
    if not full_name.strip() or not title.strip():
        raise InputError("give the user's full name and title")
    secret = pyotp.random_base32()
    now = datetime.now(UTC)
    with write_transaction(engine) as connection:
        exists = connection.execute(
            sa.select(users.c.username).where(users.c.username == username)
        ).first()
        if exists:
            raise InputError(f"user {username!r} already exists; pick another name")
        connection.execute(
            users.insert().values(
                username=username,
                full_name=full_name,
                title=title,
                role=role,
                password_hash=HASHER.hash(password),
                totp_secret=box.seal(secret, username),
                last_totp_step=0,
                failed_logins=0,
                locked_until=None,
                disabled=False,
                created_at=now,
            )
        )
        audit.append(connection, actor, "user.create", username, {"role": role})
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)
    return NewUser(User(username, full_name, title, role), uri)


def get_user(engine: Engine, username: str) -> User | None:
    """Return an enabled user by name, or None."""
    query = sa.select(users).where(
        users.c.username == username, users.c.disabled.is_(False)
    )
    with read_transaction(engine) as connection:
        row = connection.execute(query).first()
    return _user(row) if row else None


def list_users(engine: Engine) -> list[User]:
    """Return every enabled user, by name."""
    query = sa.select(users).where(users.c.disabled.is_(False))
    with read_transaction(engine) as connection:
        rows = connection.execute(query.order_by(users.c.username)).all()
    return [_user(row) for row in rows]


def authenticate(
    engine: Engine,
    settings: ConsoleSection,
    username: str,
    password: str,
    code: str,
    now: datetime | None = None,
    *,
    box: TotpSecretBox,
) -> User:
    """Check a password and TOTP code; AuthError (counted) when either is wrong.

    Raises:
        AuthError: unknown user, wrong password or code, or a locked account;
            the message does not say which, except for the lockout.
    """
    now = now or datetime.now(UTC)
    with write_transaction(engine) as connection:
        row = connection.execute(
            sa.select(users).where(users.c.username == username)
        ).first()
        if row is None or row.disabled:
            HASHER.hash(password)  # spend the same time as for a real user
            raise AuthError(LOGIN_REFUSED)
        if row.locked_until is not None and row.locked_until > now:
            raise AuthError(_locked_message(row.locked_until))
        try:
            secret = box.open(row.totp_secret, username)
        except ConfigError as exc:
            logger.error("cannot check the TOTP code of %s: %s", username, exc)
            raise AuthError(SERVER_PROBLEM) from exc
        step = _totp_step(secret, code, now)
        fresh = step is not None and step > row.last_totp_step
        if fresh and _password_ok(row.password_hash, password):
            connection.execute(
                users.update()
                .where(users.c.username == username)
                .values(
                    failed_logins=0,
                    locked_until=None,
                    last_totp_step=step,
                    totp_secret=box.seal(secret, username),
                )
            )
            audit.append(connection, username, "login", username, {})
            return _user(row)
        _count_failure(connection, row, settings, now)
    raise AuthError(LOGIN_REFUSED)


def _count_failure(
    connection: Connection, row: Any, settings: ConsoleSection, now: datetime
) -> None:
    failures = int(row.failed_logins) + 1
    values: dict[str, object] = {"failed_logins": failures}
    if failures >= settings.max_failed_logins:
        values["locked_until"] = now + timedelta(minutes=settings.lockout_minutes)
        values["failed_logins"] = 0
        logger.warning("console account %s locked after failed logins", row.username)
        audit.append(connection, "system", "user.lock", row.username, {})
    connection.execute(
        users.update().where(users.c.username == row.username).values(**values)
    )


def _password_ok(stored: str, password: str) -> bool:
    try:
        return HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _totp_step(secret: str, code: str, now: datetime) -> int | None:
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    for offset in (0, -1, 1):
        moment = now + timedelta(seconds=30 * offset)
        if totp.verify(code, for_time=moment):
            return int(moment.timestamp()) // 30
    return None


def _locked_message(until: datetime) -> str:
    return (
        "Tài khoản tạm khóa do nhập sai nhiều lần; thử lại sau "
        f"{until.astimezone(UTC).strftime('%H:%M')} UTC hoặc liên hệ quản trị viên."
    )


def _user(row: Any) -> User:
    data = row._mapping
    return User(
        str(data["username"]),
        str(data["full_name"]),
        str(data["title"]),
        str(data["role"]),
    )


def require_user(engine: Engine, username: str) -> User:
    """Return an enabled user; StoreError when there is none."""
    user = get_user(engine, username)
    if user is None:
        raise StoreError(f"user {username!r} does not exist or is disabled")
    return user


def check_role(role: str) -> None:
    """Raise InputError unless ``role`` is one of :data:`ROLES`."""
    if role not in ROLES:
        raise InputError(f"role {role!r} is unknown; choose one of {', '.join(ROLES)}")


def seal_plain_secrets(engine: Engine, box: TotpSecretBox) -> int:
    """Encrypt every TOTP secret still stored in plain text; return how many."""
    with write_transaction(engine) as connection:
        rows = connection.execute(
            sa.select(users.c.username, users.c.totp_secret)
        ).all()
        plain = [row for row in rows if not is_sealed(row.totp_secret)]
        for row in plain:
            connection.execute(
                users.update()
                .where(users.c.username == row.username)
                .values(totp_secret=box.seal(row.totp_secret, row.username))
            )
    if plain:
        logger.info("encrypted %s stored TOTP secrets", len(plain))
    return len(plain)
