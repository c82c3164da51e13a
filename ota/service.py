"""Run the update client beside the kiosk agent: boot, notices, checks, probation.

:class:`UpdateService` owns one worker thread. At start it settles any
switch a restart interrupted (:meth:`UpdateClient.boot`); then it installs
what queued notices name, asks the bridge every ``check_interval_s``, and
confirms a new version once its probation has passed. Notices arrive from
the MQTT thread through :meth:`UpdateService.notify`, which only queues.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time

from ota.client import UpdateClient
from ota.errors import OtaError
from ota.messages import NoticeHandler

logger = logging.getLogger(__name__)


class UpdateService:
    """Drive an :class:`UpdateClient` from one background thread."""

    def __init__(self, client: UpdateClient, tick_s: float = 1.0) -> None:
        self.client = client
        self.handler = NoticeHandler(client)
        self.tick_s = tick_s
        self._notices: queue.Queue[bytes] = queue.Queue(maxsize=16)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def notify(self, payload: bytes) -> None:
        """Queue an update notice payload (safe from the MQTT network thread)."""
        try:
            self._notices.put_nowait(payload)
        except queue.Full:
            logger.warning("update notices are queued already; dropped one")

    def start(self) -> None:
        """Settle an interrupted switch, then start the worker thread."""
        self.client.boot()
        self._thread = threading.Thread(target=self._run, name="ota", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the worker to stop and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        next_check = time.monotonic()
        while not self._stop.is_set():
            try:
                self.client.confirm()
                with contextlib.suppress(queue.Empty):
                    self.handler(self._notices.get(timeout=self.tick_s))
                if time.monotonic() >= next_check:
                    next_check = (
                        time.monotonic() + self.client.settings.check_interval_s
                    )
                    self.client.check()
            except (OtaError, OSError):
                logger.exception("the update worker hit an error; it carries on")
