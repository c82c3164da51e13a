"""A sliding-window limit of attempts per key (client address, API client).

The counts live in this process's memory: with several bridge instances
behind a balancer each enforces its own window, so the effective limit is
multiplied by the number of instances. That is acceptable for slowing down
guessing, where the space of codes is far larger than any such multiple.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """Allow at most ``limit`` events per key in any ``window_s`` seconds."""

    def __init__(
        self,
        limit: int,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, limit: int | None = None) -> bool:
        """Record one event for ``key``; False when it is over the limit."""
        now = self._clock()
        with self._lock:
            events = self._events.setdefault(key, deque())
            while events and events[0] <= now - self.window_s:
                events.popleft()
            if len(events) >= (limit or self.limit):
                return False
            events.append(now)
            if len(self._events) > 100_000:
                self._forget_idle(now)
            return True

    def blocked(self, key: str, limit: int | None = None) -> bool:
        """Return True when ``key`` has used its allowance, recording nothing."""
        now = self._clock()
        with self._lock:
            events = self._events.get(key)
            if not events:
                return False
            recent = sum(1 for moment in events if moment > now - self.window_s)
            return recent >= (limit or self.limit)

    def retry_after(self, key: str) -> int:
        """Return the seconds until ``key`` may try again (at least 1)."""
        with self._lock:
            events = self._events.get(key)
            if not events:
                return 1
            return max(1, int(events[0] + self.window_s - self._clock()) + 1)

    def _forget_idle(self, now: float) -> None:
        idle = [
            k for k, v in self._events.items() if not v or v[-1] <= now - self.window_s
        ]
        for key in idle:
            del self._events[key]
