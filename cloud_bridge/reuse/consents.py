"""Consent tokens a citizen gives a service to fetch one copy.

The citizen makes one on the lookup page after entering the access code (or
the kiosk prints one on the receipt through :func:`create_consent`). It is
tied to one copy, expires after ``consent_ttl_days`` and is stored only as
a SHA-256. Any registered client holding it may fetch that copy.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cloud_bridge import audit
from cloud_bridge.console.tables import consents
from cloud_bridge.errors import ConsentError
from cloud_bridge.store.engine import read_transaction, write_transaction

logger = logging.getLogger(__name__)

CONSENT_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CONSENT_LENGTH = 16


def new_consent_token() -> str:
    """Return a fresh consent token, grouped by four for reading aloud."""
    raw = "".join(secrets.choice(CONSENT_ALPHABET) for _ in range(CONSENT_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CONSENT_LENGTH, 4))


def normalize_consent(token: str) -> str:
    """Return the token in upper case without spaces or dashes."""
    return token.replace("-", "").replace(" ", "").upper()


def create_consent(engine: Engine, copy_id: str, ttl_days: int, actor: str) -> str:
    """Create a consent token for ``copy_id`` and return it (shown only now)."""
    token = new_consent_token()
    now = datetime.now(UTC)
    with write_transaction(engine) as connection:
        connection.execute(
            consents.insert().values(
                token_hash=_digest(token),
                copy_id=copy_id,
                created_at=now,
                expires_at=now + timedelta(days=ttl_days),
                revoked_at=None,
            )
        )
        audit.append(connection, actor, "consent.create", copy_id, {})
    return token


def check_consent(engine: Engine, copy_id: str, token: str | None) -> None:
    """Return when ``token`` is a live consent for ``copy_id``; ConsentError else."""
    if not token:
        raise ConsentError(
            "a consent token from the citizen is required to fetch this copy"
        )
    query = sa.select(consents).where(consents.c.token_hash == _digest(token))
    with read_transaction(engine) as connection:
        row = connection.execute(query).first()
    now = datetime.now(UTC)
    if (
        row is None
        or row.copy_id != copy_id
        or row.revoked_at is not None
        or row.expires_at <= now
    ):
        raise ConsentError(
            "the consent token is not valid for this copy (unknown, expired or "
            "withdrawn); ask the citizen for a new one"
        )


def _digest(token: str) -> str:
    return hashlib.sha256(normalize_consent(token).encode()).hexdigest()
