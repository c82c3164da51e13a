"""One health model for every device: ok, degraded or failed, with a reason.

The agent and telemetry read :class:`Health` snapshots; a device's
:class:`HealthTracker` records each change with the time it happened and
logs it once.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)


class HealthState(enum.StrEnum):
    """How usable a device is."""

    OK = "ok"
    DEGRADED = "degraded"
    FAILED = "failed"


class Reason(enum.StrEnum):
    """Why a device is not ok (the vocabulary telemetry aggregates on)."""

    NONE = ""
    NOT_STARTED = "not started"
    PAPER_LOW = "paper low"
    PAPER_OUT = "paper out"
    COVER_OPEN = "cover open"
    CAMERA_GONE = "camera gone"
    FRAMES_STALLED = "frames stalled"
    CORRUPT_FRAMES = "corrupt frames"
    PRINTER_OFFLINE = "printer offline"
    JOB_FAILED = "job failed"
    NOT_ANSWERING = "not answering"
    DEVICE_ERROR = "device error"


class Capability(enum.StrEnum):
    """What a device lets the agent do; a failed device withdraws its own."""

    PREVIEW = "preview"
    CAPTURE_DOCUMENT = "capture_document"
    CAPTURE_FACE = "capture_face"
    PRINT_COPIES = "print_copies"
    PRINT_RECEIPTS = "print_receipts"
    SENSE_PRESENCE = "sense_presence"
    SENSE_LID = "sense_lid"
    SIGNAL_LIGHT = "signal_light"
    SIGNAL_SOUND = "signal_sound"
    READ_CODES = "read_codes"


@dataclass(frozen=True)
class Health:
    """A device's health at one moment."""

    state: HealthState
    reason: Reason = Reason.NONE
    detail: str = ""
    since: float = 0.0

    @property
    def usable(self) -> bool:
        """Return whether the device can still be used (ok or degraded)."""
        return self.state is not HealthState.FAILED

    def as_dict(self) -> dict[str, str | float]:
        """Return a JSON-friendly form for telemetry and the CLI."""
        return {
            "state": self.state.value,
            "reason": self.reason.value,
            "detail": self.detail,
            "since": self.since,
        }


HealthListener = Callable[[str, Health], None]


class HealthTracker:
    """Hold one device's health; record and log each change, notify listeners."""

    def __init__(self, device: str, initial: Health | None = None) -> None:
        self.device = device
        self._lock = threading.Lock()
        self._health = initial or Health(HealthState.OK, since=time.time())
        self._listeners: list[HealthListener] = []

    def get(self) -> Health:
        """Return the current health."""
        with self._lock:
            return self._health

    def subscribe(self, listener: HealthListener) -> None:
        """Call ``listener(device, health)`` on every later change."""
        with self._lock:
            self._listeners.append(listener)

    def set(
        self,
        state: HealthState,
        reason: Reason = Reason.NONE,
        detail: str = "",
        quiet: bool = False,
    ) -> Health:
        """Change the health if state or reason differ; return the current one.

        ``quiet`` logs the change at debug level (for routine stops).
        """
        with self._lock:
            old = self._health
            if old.state is state and old.reason is reason:
                return old
            self._health = Health(state, reason, detail, time.time())
            current, listeners = self._health, list(self._listeners)
        if quiet:
            logger.debug("%s health -> %s", self.device, current.state.value)
        else:
            self._log(old, current)
        for listener in listeners:
            try:
                listener(self.device, current)
            except Exception:
                logger.exception("health listener failed for %s", self.device)
        return current

    def ok(self) -> Health:
        """Mark the device ok."""
        return self.set(HealthState.OK)

    def degraded(self, reason: Reason, detail: str = "") -> Health:
        """Mark the device degraded for ``reason``."""
        return self.set(HealthState.DEGRADED, reason, detail)

    def failed(self, reason: Reason, detail: str = "") -> Health:
        """Mark the device failed for ``reason``."""
        return self.set(HealthState.FAILED, reason, detail)

    def _log(self, old: Health, new: Health) -> None:
        if new.state is HealthState.FAILED:
            level = logging.ERROR
        elif new.state is HealthState.DEGRADED:
            level = logging.WARNING
        else:
            level = logging.INFO
        logger.log(
            level,
            "%s health %s -> %s (%s) %s",
            self.device,
            old.state.value,
            new.state.value,
            new.reason.value or "-",
            new.detail,
        )
