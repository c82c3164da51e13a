"""Gather the kiosk's periodic health report from the drivers and the system.

The device report comes from ``Devices.health_report()`` (any callable
returning name -> object with ``as_dict()``); CPU temperature, load, memory
and disk come from ``/proc``, ``/sys`` and ``statvfs``; counters and
versions come from the agent.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from protocol.envelope import new_message
from protocol.telemetry import DeviceHealth, Health

logger = logging.getLogger(__name__)

THERMAL_ZONES = Path("/sys/class/thermal")
MEMINFO = Path("/proc/meminfo")
PAPER_REASONS = {"paper out": 0.0, "paper low": 10.0}


class ReportsHealth(Protocol):
    """What the telemetry needs of a driver's health snapshot."""

    def as_dict(self) -> Mapping[str, str | float]:
        """Return state, reason, detail and since."""


@dataclass
class Counters:
    """What the agent counts since it started."""

    visits: int = 0
    copies: int = 0
    started: float = field(default_factory=time.monotonic)


@dataclass
class HealthSources:
    """Where a health report's parts come from."""

    kiosk_id: str
    devices: Callable[[], Mapping[str, ReportsHealth]] = dict
    counters: Counters = field(default_factory=Counters)
    software_version: str = "unknown"
    model_version: Callable[[], str] = lambda: "unknown"
    paper_percent: Callable[[], float | None] = lambda: None
    outbox_depth: Callable[[], int] = lambda: 0
    certificate_expires_at: Callable[[], datetime | None] = lambda: None
    disk_path: Path = Path("/")


def collect_health(sources: HealthSources) -> Health:
    """Return a health report of the kiosk now."""
    devices = {name: _device(h) for name, h in sources.devices().items()}
    paper = sources.paper_percent()
    if paper is None:
        paper = _paper_from_devices(devices)
    disk = shutil.disk_usage(sources.disk_path)
    return new_message(
        Health,
        kiosk_id=sources.kiosk_id,
        devices=devices,
        paper_percent=paper,
        cpu_temp_c=cpu_temperature(),
        load_1m=min(os.getloadavg()[0], 1000.0),
        memory_used_percent=memory_used_percent(),
        disk_used_percent=100.0 * disk.used / disk.total if disk.total else 0.0,
        outbox_depth=sources.outbox_depth(),
        model_version=sources.model_version(),
        software_version=sources.software_version,
        uptime_s=time.monotonic() - sources.counters.started,
        visits=sources.counters.visits,
        copies=sources.counters.copies,
        certificate_expires_at=sources.certificate_expires_at(),
    )


def cpu_temperature() -> float | None:
    """Return the hottest thermal zone in °C, or None where none is readable."""
    readings: list[float] = []
    for zone in THERMAL_ZONES.glob("thermal_zone*/temp"):
        try:
            readings.append(int(zone.read_text().strip()) / 1000)
        except (OSError, ValueError):
            continue
    plausible = [r for r in readings if -40 <= r <= 150]
    return max(plausible) if plausible else None


def memory_used_percent() -> float:
    """Return the share of memory in use (0 when /proc/meminfo is unreadable)."""
    try:
        fields = dict(
            line.split(":", 1)
            for line in MEMINFO.read_text().splitlines()
            if ":" in line
        )
        total = int(fields["MemTotal"].split()[0])
        available = int(fields["MemAvailable"].split()[0])
    except (OSError, KeyError, ValueError):
        return 0.0
    return 100.0 * (total - available) / total if total else 0.0


def _device(health: ReportsHealth) -> DeviceHealth:
    data = health.as_dict()
    state = str(data.get("state", "failed"))
    return DeviceHealth(
        state=state if state in ("ok", "degraded", "failed") else "failed",
        reason=str(data.get("reason", ""))[:40],
        detail=str(data.get("detail", ""))[:200],
        since=max(0.0, float(data.get("since", 0.0))),
    )


def _paper_from_devices(devices: Mapping[str, DeviceHealth]) -> float | None:
    levels = [
        PAPER_REASONS[d.reason] for d in devices.values() if d.reason in PAPER_REASONS
    ]
    return min(levels) if levels else None
