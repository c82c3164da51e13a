"""Messages a kiosk publishes about itself: status, health and events.

``Status`` is retained on ``kiosk/<id>/status`` and is also the kiosk's last
will (``offline``). ``Health`` goes to ``kiosk/<id>/telemetry`` periodically,
``Event`` to ``kiosk/<id>/events``. Receivers drop duplicates by
``message_id``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from protocol.envelope import Envelope
from protocol.topics import KIOSK_ID

KIOSK_ID_PATTERN = KIOSK_ID.pattern
VERSION_PATTERN = r"^[0-9A-Za-z.+\-_]{1,40}$"

EventKind = Literal[
    "visit_started",
    "visit_step",
    "face_checked",
    "visit_finished",
    "request_submitted",
    "copy_printed",
    "print_failed",
    "fault",
    "fault_cleared",
    "command_run",
    "agent_started",
]
DetailValue = str | int | float | bool | None


class Status(Envelope):
    """Whether a kiosk is online; retained, and its last will when offline."""

    SCHEMA = "status"
    VERSION = 1

    kiosk_id: str = Field(pattern=KIOSK_ID_PATTERN, description="The sender.")
    state: Literal["online", "offline"] = Field(description="Connection state.")
    software_version: str = Field(
        "unknown", pattern=VERSION_PATTERN, description="The agent's version."
    )


class DeviceHealth(BaseModel):
    """One device's health as the drivers report it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: Literal["ok", "degraded", "failed"] = Field(description="Usability.")
    reason: str = Field("", max_length=40, description="Why it is not ok.")
    detail: str = Field("", max_length=200, description="Operator-facing detail.")
    since: float = Field(0.0, ge=0, description="Unix time of the last change.")


class Health(Envelope):
    """A kiosk's periodic health report."""

    SCHEMA = "health"
    VERSION = 1

    kiosk_id: str = Field(pattern=KIOSK_ID_PATTERN, description="The sender.")
    devices: dict[str, DeviceHealth] = Field(
        default_factory=dict, max_length=32, description="Health by device name."
    )
    paper_percent: float | None = Field(
        None, ge=0, le=100, description="Paper left in the copy printer, if known."
    )
    cpu_temp_c: float | None = Field(
        None, ge=-40, le=150, description="CPU temperature, if readable."
    )
    load_1m: float = Field(0.0, ge=0, le=1000, description="One-minute load.")
    memory_used_percent: float = Field(0.0, ge=0, le=100)
    disk_used_percent: float = Field(0.0, ge=0, le=100)
    outbox_depth: int = Field(0, ge=0, description="Messages waiting to be sent.")
    model_version: str = Field("unknown", pattern=VERSION_PATTERN)
    software_version: str = Field("unknown", pattern=VERSION_PATTERN)
    uptime_s: float = Field(0.0, ge=0, description="Seconds since the agent began.")
    visits: int = Field(0, ge=0, description="Visits since the agent began.")
    copies: int = Field(0, ge=0, description="Copies printed since it began.")
    certificate_expires_at: datetime | None = Field(
        None, description="When the kiosk's client certificate expires."
    )


class Event(Envelope):
    """Something that happened at a kiosk, delivered exactly once."""

    SCHEMA = "event"
    VERSION = 1

    kiosk_id: str = Field(pattern=KIOSK_ID_PATTERN, description="The sender.")
    event_type: EventKind = Field(description="What happened.")
    occurred_at: datetime = Field(description="When it happened (UTC).")
    detail: dict[str, DetailValue] = Field(
        default_factory=dict,
        max_length=20,
        description="Small facts; never a citizen's ID number or face.",
    )
