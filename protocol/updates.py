"""Messages of over-the-air updates: notices to a kiosk and its install reports.

A notice travels on ``office/<id>/updates``; a report is a kiosk event on
``kiosk/<id>/events``. A notice only names a target: the kiosk trusts
nothing in it and verifies the target against signed TUF metadata.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from protocol.envelope import Envelope
from protocol.topics import EVENTS, UPDATES, kiosk_topic, office_topic

TARGET_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"
KIOSK_PATTERN = r"^[a-z0-9][a-z0-9\-]{2,62}$"

InstallState = Literal[
    "waiting", "downloading", "installed", "failed", "rolled_back", "refused"
]


class UpdateNotice(Envelope):
    """Tell one kiosk that a bundle is assigned to it."""

    SCHEMA: ClassVar[str] = "update_notice"
    VERSION: ClassVar[int] = 1

    kiosk_id: str = Field(pattern=KIOSK_PATTERN, description="The kiosk addressed.")
    target: str = Field(pattern=TARGET_PATTERN, description="TUF target path.")
    bundle_version: str = Field(
        min_length=1, max_length=40, description="Bundle version, for display."
    )
    channel: str = Field(
        pattern=r"^[a-z0-9\-]{1,24}$", description="Release channel, e.g. stable."
    )


class InstallReport(Envelope):
    """Report the outcome of one update attempt on a kiosk."""

    SCHEMA: ClassVar[str] = "install_report"
    VERSION: ClassVar[int] = 1

    kiosk_id: str = Field(pattern=KIOSK_PATTERN, description="The reporting kiosk.")
    target: str = Field(pattern=TARGET_PATTERN, description="TUF target path.")
    state: InstallState = Field(description="Where the attempt ended.")
    running_version: str = Field(
        max_length=40, description="Bundle version the kiosk runs after it."
    )
    phase: str = Field(
        "", max_length=40, description="Step that failed, empty on success."
    )
    error: str = Field("", max_length=500, description="What went wrong, if anything.")
    timings_ms: dict[str, float] = Field(
        default_factory=dict, max_length=20, description="Duration of each phase."
    )


def notice_topic(kiosk_id: str) -> str:
    """Return the topic an update notice for ``kiosk_id`` is sent on."""
    return office_topic(kiosk_id, UPDATES)


def report_topic(kiosk_id: str) -> str:
    """Return the topic a kiosk's install reports are sent on."""
    return kiosk_topic(kiosk_id, EVENTS)
