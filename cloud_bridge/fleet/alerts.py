"""Decide which alerts a kiosk raises from its last status and health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cloud_bridge.config import FleetSection
from cloud_bridge.fleet.registry import KioskRecord

ALERTS = (
    "offline",
    "revoked",
    "paper_out",
    "paper_low",
    "device_failed",
    "certificate_expiring",
    "outbox_growing",
    "model_behind",
)


@dataclass(frozen=True)
class KioskView:
    """A kiosk as the fleet page shows it: record, derived state and alerts."""

    record: KioskRecord
    state: str
    alerts: tuple[str, ...]

    @property
    def kiosk_id(self) -> str:
        """The kiosk's id."""
        return self.record.kiosk_id


def view(
    record: KioskRecord, fleet: FleetSection, now: datetime | None = None
) -> KioskView:
    """Return the kiosk with its state (online, offline, revoked) and alerts."""
    now = now or datetime.now(UTC)
    state = _state(record, fleet, now)
    found: list[str] = [state] if state in ("offline", "revoked") else []
    health = record.last_health or {}
    found.extend(_paper(health, fleet))
    devices = health.get("devices") or {}
    if any(d.get("state") == "failed" for d in devices.values()):
        found.append("device_failed")
    expires = record.certificate_expires_at
    warn = timedelta(days=max(1, fleet.renew_before_days // 2))
    if state != "revoked" and (expires is None or expires - now < warn):
        found.append("certificate_expiring")
    if int(health.get("outbox_depth") or 0) >= fleet.outbox_alert_depth:
        found.append("outbox_growing")
    if fleet.model_version and record.model_version not in (None, fleet.model_version):
        found.append("model_behind")
    return KioskView(record, state, tuple(found))


def _state(record: KioskRecord, fleet: FleetSection, now: datetime) -> str:
    if record.revoked_at is not None:
        return "revoked"
    if record.last_seen is None or record.status == "offline":
        return "offline"
    if now - record.last_seen > timedelta(seconds=fleet.offline_after_s):
        return "offline"
    return "online"


def _paper(health: dict[str, object], fleet: FleetSection) -> list[str]:
    devices = health.get("devices")
    reasons = (
        {str(d.get("reason")) for d in devices.values() if isinstance(d, dict)}
        if isinstance(devices, dict)
        else set()
    )
    level = health.get("paper_percent")
    if "paper out" in reasons or level == 0:
        return ["paper_out"]
    low = isinstance(level, int | float) and level <= fleet.paper_low_percent
    if "paper low" in reasons or low:
        return ["paper_low"]
    return []
