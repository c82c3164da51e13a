"""OAuth2 client credentials of public services, and their bearer tokens.

A client's secret is shown once at creation and stored as an argon2 hash.
The token endpoint trades the id and secret for a random bearer token
valid ``token_ttl_s``; only the token's SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine

from cloud_bridge import audit
from cloud_bridge.console.tables import reuse_clients, reuse_tokens
from cloud_bridge.errors import AuthError, InputError
from cloud_bridge.store.engine import read_transaction, write_transaction

logger = logging.getLogger(__name__)

HASHER = PasswordHasher()
REFUSED = "the client id or secret is wrong; check the credentials you were given"


@dataclass(frozen=True)
class Client:
    """A public service allowed to fetch copies with consent."""

    client_id: str
    name: str
    requests_per_minute: int


@dataclass(frozen=True)
class NewClient:
    """A created client and its secret, shown once."""

    client: Client
    secret: str


def create_client(engine: Engine, name: str, requests_per_minute: int) -> NewClient:
    """Register a service and return its id and (only now) its secret."""
    if not name.strip():
        raise InputError("give the service's name")
    client_id = "svc-" + secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    with write_transaction(engine) as connection:
        connection.execute(
            reuse_clients.insert().values(
                client_id=client_id,
                name=name.strip(),
                secret_hash=HASHER.hash(secret),
                requests_per_minute=requests_per_minute,
                disabled=False,
                created_at=datetime.now(UTC),
            )
        )
        audit.append(connection, "cli", "client.create", client_id, {"name": name})
    return NewClient(Client(client_id, name.strip(), requests_per_minute), secret)


def issue_token(
    engine: Engine, client_id: str, secret: str, ttl_s: int
) -> tuple[str, Client]:
    """Return a new bearer token for valid credentials; AuthError otherwise."""
    with read_transaction(engine) as connection:
        row = connection.execute(
            sa.select(reuse_clients).where(reuse_clients.c.client_id == client_id)
        ).first()
    if row is None or row.disabled or not _secret_ok(row.secret_hash, secret):
        raise AuthError(REFUSED)
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with write_transaction(engine) as connection:
        connection.execute(reuse_tokens.delete().where(reuse_tokens.c.expires_at < now))
        connection.execute(
            reuse_tokens.insert().values(
                token_hash=_digest(token),
                client_id=client_id,
                expires_at=now + timedelta(seconds=ttl_s),
            )
        )
    return token, Client(row.client_id, row.name, row.requests_per_minute)


def client_for_token(engine: Engine, token: str) -> Client:
    """Return the client a live bearer token belongs to; AuthError otherwise."""
    query = (
        sa.select(reuse_clients, reuse_tokens.c.expires_at)
        .join(reuse_tokens, reuse_tokens.c.client_id == reuse_clients.c.client_id)
        .where(reuse_tokens.c.token_hash == _digest(token))
    )
    with read_transaction(engine) as connection:
        row = connection.execute(query).first()
    if row is None or row.disabled or row.expires_at <= datetime.now(UTC):
        raise AuthError("the bearer token is unknown or expired; request a new one")
    return Client(row.client_id, row.name, row.requests_per_minute)


def _secret_ok(stored: str, secret: str) -> bool:
    try:
        return HASHER.verify(stored, secret)
    except (VerificationError, InvalidHashError):
        return False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
