"""Record in the audit log which citizens' data each console user was shown.

The request page and page images are recorded on every view. Lists (the
queue, which shows citizens' names, and the deliveries, which show email
addresses) refresh themselves every few seconds, so a list view is recorded
when what it shows differs from what was last recorded for the same session:
the entry names every request or delivery on screen, and an unchanged
refresh adds nothing. The memory of the last entry is per process; behind a
balancer a refresh served by another instance records the same list again,
which repeats an entry but never misses one.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence

from sqlalchemy.engine import Engine

from cloud_bridge import audit

logger = logging.getLogger(__name__)

MAX_SESSIONS = 10_000


class ViewRecorder:
    """Append list views to the audit log once per change of what is shown."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._last: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def list_shown(
        self,
        session_key: str,
        username: str,
        action: str,
        shown: Sequence[str | int],
    ) -> bool:
        """Record that ``username`` saw the listed items; False if unchanged."""
        items = [str(item) for item in shown]
        digest = hashlib.sha256("\n".join(items).encode("utf-8")).hexdigest()
        key = (session_key, action)
        with self._lock:
            if self._last.get(key) == digest:
                self._last.move_to_end(key)
                return False
        audit.record(self._engine, username, action, "list", {"shown": items})
        with self._lock:
            self._last[key] = digest
            self._last.move_to_end(key)
            while len(self._last) > MAX_SESSIONS:
                self._last.popitem(last=False)
        return True

    def forget(self, session_key: str) -> None:
        """Drop what was recorded for a session (at logout)."""
        with self._lock:
            for key in [key for key in self._last if key[0] == session_key]:
                del self._last[key]
