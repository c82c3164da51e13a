"""What an administrator does to console accounts: roles, disabling, TOTP, locks.

Every change is one write transaction that also appends to the audit log
with the administrator as the actor. Disabling an account ends its sessions
at once (a session is valid only for an enabled user); a role change takes
effect on the user's next page. An administrator cannot disable or demote
their own account, so the last one cannot lock everybody out by mistake.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyotp
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cloud_bridge import audit
from cloud_bridge.console.tables import sessions, users
from cloud_bridge.console.totp_secrets import TotpSecretBox
from cloud_bridge.console.users import check_role
from cloud_bridge.errors import InputError, NotFoundError
from cloud_bridge.store.engine import read_transaction, write_transaction

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Account:
    """A console account as the administrator's page lists it."""

    username: str
    full_name: str
    title: str
    role: str
    disabled: bool
    locked_until: datetime | None
    created_at: datetime

    def locked(self, now: datetime | None = None) -> bool:
        """Return True when failed logins have locked the account for now."""
        moment = now or datetime.now(UTC)
        return self.locked_until is not None and self.locked_until > moment


def list_accounts(engine: Engine) -> list[Account]:
    """Return every account, enabled or not, by user name."""
    query = sa.select(
        users.c.username,
        users.c.full_name,
        users.c.title,
        users.c.role,
        users.c.disabled,
        users.c.locked_until,
        users.c.created_at,
    ).order_by(users.c.username)
    with read_transaction(engine) as connection:
        return [Account(**row._asdict()) for row in connection.execute(query)]


def change_role(engine: Engine, admin: str, username: str, role: str) -> None:
    """Give ``username`` another role."""
    check_role(role)
    if username == admin:
        raise InputError("you cannot change your own role; ask another administrator")
    with write_transaction(engine) as connection:
        before = _row(connection, username)
        _update(connection, username, role=role)
        audit.append(
            connection,
            admin,
            "user.role",
            username,
            {"from": str(before.role), "to": role},
        )
    logger.info("%s gave %s the role %s", admin, username, role)


def set_disabled(engine: Engine, admin: str, username: str, disabled: bool) -> None:
    """Disable an account (ending its sessions) or enable it again."""
    if username == admin and disabled:
        raise InputError("you cannot disable your own account")
    with write_transaction(engine) as connection:
        _row(connection, username)
        _update(connection, username, disabled=disabled)
        if disabled:
            connection.execute(sessions.delete().where(sessions.c.username == username))
        action = "user.disable" if disabled else "user.enable"
        audit.append(connection, admin, action, username, {})
    logger.info("%s %s %s", admin, "disabled" if disabled else "enabled", username)


def unlock(engine: Engine, admin: str, username: str) -> None:
    """Lift a lockout after failed logins."""
    with write_transaction(engine) as connection:
        _row(connection, username)
        _update(connection, username, locked_until=None, failed_logins=0)
        audit.append(connection, admin, "user.unlock", username, {})
    logger.info("%s unlocked %s", admin, username)


def reset_totp(
    engine: Engine,
    admin: str,
    username: str,
    box: TotpSecretBox,
    issuer: str = "TTPVHCC",
) -> str:
    """Give ``username`` a new TOTP secret; return its URI, to show once.

    The user's sessions end, since whoever held the old authenticator may
    be the reason for the reset.
    """
    secret = pyotp.random_base32()
    with write_transaction(engine) as connection:
        _row(connection, username)
        _update(
            connection,
            username,
            totp_secret=box.seal(secret, username),
            last_totp_step=0,
        )
        connection.execute(sessions.delete().where(sessions.c.username == username))
        audit.append(connection, admin, "user.totp_reset", username, {})
    logger.info("%s reset the TOTP of %s", admin, username)
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def _row(connection: Connection, username: str) -> Any:
    row = connection.execute(sa.select(users).where(users.c.username == username))
    found = row.first()
    if found is None:
        raise NotFoundError(f"no console user is named {username!r}")
    return found


def _update(connection: Connection, username: str, **values: object) -> None:
    connection.execute(
        users.update().where(users.c.username == username).values(**values)
    )
