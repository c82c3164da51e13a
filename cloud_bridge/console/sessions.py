"""Server-side console sessions: random cookie, hashed in the database, expiring.

The cookie holds 32 random bytes; the database keeps only their SHA-256, so
a stolen database copy yields no usable session. A session ends when idle
for ``session_idle_minutes`` or ``session_max_hours`` after login, and on
logout. Each session has its own CSRF token, required on every form post.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud_bridge.config import ConsoleSection
from cloud_bridge.console.tables import sessions, users
from cloud_bridge.console.users import User
from cloud_bridge.store.engine import write_transaction

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Session:
    """A logged-in user's session and its CSRF token."""

    user: User
    csrf_token: str
    expires_at: datetime

    def csrf_ok(self, token: str | None) -> bool:
        """Return True when ``token`` is this session's CSRF token."""
        return token is not None and hmac.compare_digest(token, self.csrf_token)


def token_hash(token: str) -> str:
    """Return the SHA-256 under which a session cookie is stored."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def open_session(engine: Engine, user: User, settings: ConsoleSection) -> str:
    """Start a session for ``user`` and return the cookie value."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with write_transaction(engine) as connection:
        connection.execute(sessions.delete().where(sessions.c.expires_at < now))
        connection.execute(
            sessions.insert().values(
                token_hash=token_hash(token),
                username=user.username,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(hours=settings.session_max_hours),
            )
        )
    return token


def load_session(
    engine: Engine, token: str | None, settings: ConsoleSection
) -> Session | None:
    """Return the live session behind a cookie, extending its idle time, or None."""
    if not token or len(token) > 100:
        return None
    now = datetime.now(UTC)
    idle = timedelta(minutes=settings.session_idle_minutes)
    key = token_hash(token)
    query = (
        sa.select(sessions, users.c.full_name, users.c.title, users.c.role)
        .join(users, users.c.username == sessions.c.username)
        .where(sessions.c.token_hash == key, users.c.disabled.is_(False))
    )
    with write_transaction(engine) as connection:
        row = connection.execute(query).first()
        if row is None:
            return None
        if row.expires_at <= now or row.last_seen_at + idle <= now:
            connection.execute(sessions.delete().where(sessions.c.token_hash == key))
            return None
        connection.execute(
            sessions.update()
            .where(sessions.c.token_hash == key)
            .values(last_seen_at=now)
        )
    user = User(row.username, row.full_name, row.title, row.role)
    return Session(user, row.csrf_token, row.expires_at)


def close_session(engine: Engine, token: str | None) -> None:
    """End the session behind a cookie (logout)."""
    if not token:
        return
    with write_transaction(engine) as connection:
        connection.execute(
            sessions.delete().where(sessions.c.token_hash == token_hash(token))
        )
