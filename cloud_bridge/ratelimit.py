"""Limits on attempts per key (client address, API client) in a sliding window.

:class:`SharedRateLimiter` keeps the counts in the bridge database, so every
instance behind a balancer enforces one limit together; the public lookup
page and the reuse API use it. It counts attempts in fixed windows and
estimates the sliding window from the current and the previous one
(the previous count weighted by how much of it still overlaps), which
keeps one small row per key and window. The estimate is exact when
attempts are spread evenly; in the worst case (a burst at the very end of
one window, then another at the start of the next) at most twice the limit
gets through in one window's length, and never more than the limit within
one fixed window. Keys are stored as SHA-256 digests, not in clear; a
digest of an address can still be matched by trying every address, which is
why rows older than two windows are pruned.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from cloud_bridge.console.tables import rate_windows
from cloud_bridge.store.engine import read_transaction, write_transaction

logger = logging.getLogger(__name__)

# Old windows are deleted on every this-many-th attempt of one limiter.
PRUNE_EVERY = 500


class SharedRateLimiter:
    """Allow at most ``limit`` events per key per ``window_s``, across instances."""

    def __init__(
        self,
        engine: Engine,
        name: str,
        limit: int,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._engine = engine
        self._name = name
        self._clock = clock
        self._calls = 0

    def allow(self, key: str, limit: int | None = None) -> bool:
        """Record one event for ``key``; False (nothing recorded) when over."""
        allowed = limit or self.limit
        now = self._clock()
        window, overlap = self._position(now)
        digest = self._digest(key)
        with write_transaction(self._engine) as connection:
            hits = self._add(connection, digest, window, 1)
            before = self._hits(connection, digest, window - 1)
            if before * overlap + hits > allowed:
                self._add(connection, digest, window, -1)
                return False
            self._calls += 1
            if self._calls % PRUNE_EVERY == 0:
                self._prune(connection, now)
        return True

    def blocked(self, key: str, limit: int | None = None) -> bool:
        """Return True when ``key`` has used its allowance, recording nothing."""
        return self._estimate(key, self._clock()) >= (limit or self.limit)

    def retry_after(self, key: str, limit: int | None = None) -> int:
        """Return the seconds until ``key`` may try again (at least 1)."""
        allowed = limit or self.limit
        now = self._clock()
        window, overlap = self._position(now)
        digest = self._digest(key)
        with read_transaction(self._engine) as connection:
            hits = self._hits(connection, digest, window)
            before = self._hits(connection, digest, window - 1)
        end_of_window = (window + 1) * self.window_s - now
        if hits >= allowed or before == 0:
            return max(1, math.ceil(end_of_window))
        # The previous window's weight falls linearly to zero at this window's end.
        needed = 1 - (allowed - hits - 1) / before
        wait = (needed - (1 - overlap)) * self.window_s
        return max(1, math.ceil(min(wait, end_of_window)))

    def _estimate(self, key: str, now: float) -> float:
        window, overlap = self._position(now)
        digest = self._digest(key)
        with read_transaction(self._engine) as connection:
            hits = self._hits(connection, digest, window)
            before = self._hits(connection, digest, window - 1)
        return before * overlap + hits

    def _position(self, now: float) -> tuple[int, float]:
        """Return the current window's number and the previous one's weight."""
        window = int(now // self.window_s)
        elapsed = (now - window * self.window_s) / self.window_s
        return window, 1.0 - elapsed

    def _digest(self, key: str) -> str:
        return hashlib.sha256(f"{self._name}\n{key}".encode()).hexdigest()

    def _hits(self, connection: Connection, digest: str, window: int) -> int:
        found = connection.execute(
            sa.select(rate_windows.c.hits).where(
                rate_windows.c.key_hash == digest, rate_windows.c.window == window
            )
        ).scalar()
        return int(found or 0)

    def _add(self, connection: Connection, digest: str, window: int, step: int) -> int:
        expires = math.ceil((window + 2) * self.window_s)
        insert = _insert(connection).values(
            key_hash=digest, window=window, hits=step, expires_at=expires
        )
        statement = insert.on_conflict_do_update(
            index_elements=[rate_windows.c.key_hash, rate_windows.c.window],
            set_={"hits": rate_windows.c.hits + step},
        ).returning(rate_windows.c.hits)
        return int(connection.execute(statement).scalar_one())

    def _prune(self, connection: Connection, now: float) -> None:
        result = connection.execute(
            rate_windows.delete().where(rate_windows.c.expires_at < now)
        )
        logger.debug("pruned %s old rate-limit windows", result.rowcount)


def _insert(connection: Connection) -> Any:
    if connection.dialect.name == "postgresql":
        return postgresql.insert(rate_windows)
    return sqlite.insert(rate_windows)
