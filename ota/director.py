"""Decide which kiosk runs which release, and stage the rollout, as a director.

In the manner of Uptane's director, the bridge keeps per-kiosk assignments
apart from the signed repository: a release goes to a named list of kiosks,
or to a cohort given by a stable hash of each kiosk id, widened stage by
stage. Each install report updates the kiosk's row; when the failed share of
a release's reports passes the threshold, the rollout halts itself and no
further kiosk is assigned it. A kiosk only ever installs what the signed
metadata lists, so a wrong assignment cannot make it run a forged bundle.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cloud_bridge.store.engine import read_transaction, write_transaction
from ota.config import OtaRepositorySection
from ota.errors import RolloutError
from ota.tables import kiosk_states, releases
from protocol.envelope import MessageError, new_message, parse_message
from protocol.updates import InstallReport, UpdateNotice

logger = logging.getLogger(__name__)

FAILED_STATES = ("failed", "rolled_back")


def cohort_bucket(kiosk_id: str) -> float:
    """Return the kiosk's stable place in 0-100 for percentage cohorts."""
    digest = hashlib.sha256(kiosk_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 / 100


@dataclass(frozen=True)
class Release:
    """One published bundle and how far its rollout has gone."""

    sequence: int
    target: str
    bundle_version: str
    channel: str
    stages: list[int]
    stage_index: int
    kiosks: list[str] | None
    state: str
    reason: str

    @property
    def percent(self) -> int:
        """Return the cohort percentage of the current stage."""
        return 100 if self.kiosks is not None else self.stages[self.stage_index]

    def assigns(self, kiosk_id: str) -> bool:
        """Tell whether this release is meant for ``kiosk_id`` at this stage."""
        if self.state == "halted":
            return False
        if self.kiosks is not None:
            return kiosk_id in self.kiosks
        return cohort_bucket(kiosk_id) < self.percent


@dataclass(frozen=True)
class KioskUpdateState:
    """A kiosk's last known version, update state and error."""

    kiosk_id: str
    channel: str
    target: str
    running_version: str
    state: str
    last_error: str
    updated_at: datetime


class Director:
    """Store releases and kiosk states; assign, stage and halt rollouts."""

    def __init__(self, engine: Engine, settings: OtaRepositorySection) -> None:
        self.engine = engine
        self.settings = settings

    def next_sequence(self) -> int:
        """Return the sequence number the next release gets."""
        with read_transaction(self.engine) as connection:
            latest = connection.scalar(sa.select(sa.func.max(releases.c.sequence)))
        return int(latest or 0) + 1

    def create_release(
        self,
        sequence: int,
        target: str,
        bundle_version: str,
        channel: str,
        cohort: int | None = None,
        kiosks: Sequence[str] | None = None,
    ) -> Release:
        """Record a published target and start its rollout."""
        stages = list(self.settings.rollout_stages)
        if cohort is not None:
            stages = [cohort, *[stage for stage in stages if stage > cohort]]
        row = {
            "sequence": sequence,
            "target": target,
            "bundle_version": bundle_version,
            "channel": channel,
            "stages": stages,
            "stage_index": 0,
            "kiosks": list(kiosks) if kiosks is not None else None,
            "state": "rolling",
            "reason": "",
            "created_at": datetime.now(UTC),
        }
        with write_transaction(self.engine) as connection:
            connection.execute(releases.insert().values(**row))
        logger.info("release %s of %s starts at %s%%", sequence, target, stages[0])
        return self.release(sequence)

    def release(self, sequence: int) -> Release:
        """Return release ``sequence``."""
        with read_transaction(self.engine) as connection:
            row = connection.execute(
                releases.select().where(releases.c.sequence == sequence)
            ).first()
        if row is None:
            raise RolloutError(f"there is no release {sequence}")
        return _release(row._mapping)

    def releases(self) -> list[Release]:
        """Return every release, newest first."""
        with read_transaction(self.engine) as connection:
            rows = connection.execute(
                releases.select().order_by(releases.c.sequence.desc())
            ).all()
        return [_release(row._mapping) for row in rows]

    def assignment(self, kiosk_id: str, channel: str = "stable") -> Release | None:
        """Return the newest release assigned to ``kiosk_id``; note the kiosk."""
        self._touch(kiosk_id, channel)
        for release in self.releases():
            if release.channel == channel and release.assigns(kiosk_id):
                return release
        return None

    def notices(self, release: Release, kiosk_ids: Sequence[str]) -> list[UpdateNotice]:
        """Return an update notice for each of ``kiosk_ids`` the release assigns."""
        return [
            new_message(
                UpdateNotice,
                kiosk_id=kiosk_id,
                target=release.target,
                bundle_version=release.bundle_version,
                channel=release.channel,
            )
            for kiosk_id in kiosk_ids
            if release.assigns(kiosk_id)
        ]

    def record_report(self, report: InstallReport) -> Release | None:
        """Store a kiosk's install report and advance or halt its release."""
        with write_transaction(self.engine) as connection:
            self._upsert(connection, report)
            row = connection.execute(
                releases.select().where(releases.c.target == report.target)
            ).first()
            if row is None:
                return None
            release = _release(row._mapping)
            updated = self._evaluate(connection, release)
        return updated

    def states(self) -> list[KioskUpdateState]:
        """Return every kiosk's update state, by kiosk id."""
        with read_transaction(self.engine) as connection:
            rows = connection.execute(
                kiosk_states.select().order_by(kiosk_states.c.kiosk_id)
            ).all()
        return [KioskUpdateState(**row._mapping) for row in rows]

    def _evaluate(self, connection: Connection, release: Release) -> Release:
        if release.state != "rolling":
            return release
        counts = _report_counts(connection, release.target)
        failed = sum(counts.get(state, 0) for state in FAILED_STATES)
        judged = failed + counts.get("installed", 0)
        changes: dict[str, Any] = {}
        share = failed / judged if judged else 0.0
        if (
            judged >= self.settings.min_reports
            and share > self.settings.failure_threshold
        ):
            changes = {
                "state": "halted",
                "reason": f"{failed} of {judged} installs failed ({share:.0%})",
            }
            logger.error("rollout of %s halted: %s", release.target, changes["reason"])
        elif self._stage_done(connection, release, counts.get("installed", 0)):
            if release.stage_index + 1 < len(release.stages):
                changes = {"stage_index": release.stage_index + 1}
            else:
                changes = {"state": "complete"}
        if changes:
            connection.execute(
                releases.update()
                .where(releases.c.sequence == release.sequence)
                .values(**changes)
            )
        row = connection.execute(
            releases.select().where(releases.c.sequence == release.sequence)
        ).one()
        return _release(row._mapping)

    def _stage_done(
        self, connection: Connection, release: Release, installed: int
    ) -> bool:
        known = connection.execute(
            sa.select(kiosk_states.c.kiosk_id).where(
                kiosk_states.c.channel == release.channel
            )
        ).scalars()
        assigned = [kiosk for kiosk in known if release.assigns(kiosk)]
        if not assigned:
            return False
        return installed >= self.settings.advance_share * len(assigned)

    def _touch(self, kiosk_id: str, channel: str) -> None:
        now = datetime.now(UTC)
        with write_transaction(self.engine) as connection:
            exists = connection.scalar(
                sa.select(kiosk_states.c.kiosk_id).where(
                    kiosk_states.c.kiosk_id == kiosk_id
                )
            )
            if exists is None:
                connection.execute(
                    kiosk_states.insert().values(
                        kiosk_id=kiosk_id,
                        channel=channel,
                        updated_at=now,
                        target="",
                        running_version="",
                        state="unknown",
                        last_error="",
                    )
                )

    def _upsert(self, connection: Connection, report: InstallReport) -> None:
        values = {
            "target": report.target,
            "running_version": report.running_version,
            "state": report.state,
            "last_error": report.error,
            "updated_at": report.sent_at,
        }
        updated = connection.execute(
            kiosk_states.update()
            .where(kiosk_states.c.kiosk_id == report.kiosk_id)
            .values(**values)
        )
        if updated.rowcount == 0:
            connection.execute(
                kiosk_states.insert().values(
                    kiosk_id=report.kiosk_id, channel="stable", **values
                )
            )


def _report_counts(connection: Connection, target: str) -> dict[str, int]:
    rows = connection.execute(
        sa.select(kiosk_states.c.state, sa.func.count())
        .where(kiosk_states.c.target == target)
        .group_by(kiosk_states.c.state)
    ).all()
    return {str(state): int(count) for state, count in rows}


def _release(row: Any) -> Release:
    return Release(
        sequence=row["sequence"],
        target=row["target"],
        bundle_version=row["bundle_version"],
        channel=row["channel"],
        stages=list(row["stages"]),
        stage_index=row["stage_index"],
        kiosks=list(row["kiosks"]) if row["kiosks"] is not None else None,
        state=row["state"],
        reason=row["reason"],
    )


def ingest_report(director: Director, kiosk_id: str, payload: bytes) -> Release | None:
    """Record an install report a kiosk published; drop one for another kiosk.

    Returns the release it concerns after its rollout was re-evaluated.
    """
    try:
        report = parse_message(InstallReport, payload)
    except MessageError as exc:
        logger.warning("dropped an invalid install report from %s: %s", kiosk_id, exc)
        return None
    if report.kiosk_id != kiosk_id:
        logger.warning("kiosk %s sent a report for another kiosk", kiosk_id)
        return None
    return director.record_report(report)
