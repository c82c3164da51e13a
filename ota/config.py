"""Configuration of the update repository (bridge) and update client (kiosk)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from kiosk.settings import Section

OnlineRole = Literal["targets", "snapshot", "timestamp"]


def _every_online_role() -> list[OnlineRole]:
    return ["targets", "snapshot", "timestamp"]


class OtaRepositorySection(Section):
    """The bridge's TUF repository, its keys and the rollout policy."""

    repo_dir: Path = Field(
        Path("ota-repo"), description="Signed metadata and targets served to kiosks."
    )
    root_key_dir: Path = Field(
        Path("ota-root-keys"),
        description=(
            "Root keys: used only by 'kiosk ota init' and root rotation; keep this "
            "directory on offline media, not on the serving machine."
        ),
    )
    key_dir: Path = Field(
        Path("secrets/ota-keys"),
        description="Online targets, snapshot and timestamp keys (files, mode 0600).",
    )
    key_backend: Literal["file", "pkcs11"] = Field(
        "file",
        description="Where online keys live: mode-0600 files in key_dir, or the "
        "bridge's PKCS#11 token ([hsm]) for the roles in hsm_roles.",
    )
    hsm_roles: list[OnlineRole] = Field(
        default_factory=_every_online_role,
        max_length=3,
        description="Online roles whose keys are on the token (pkcs11 backend); "
        "the others keep key files.",
    )
    hsm_key_prefix: str = Field(
        "ota",
        pattern=r"^[A-Za-z0-9_\-]{1,20}$",
        description="Token label prefix of the OTA keys: <prefix>-<role>-<n>.",
    )
    root_keys: int = Field(1, ge=1, le=9, description="Root keys to create.")
    root_threshold: int = Field(1, ge=1, le=9, description="Root signatures needed.")
    targets_keys: int = Field(1, ge=1, le=9, description="Targets keys to create.")
    targets_threshold: int = Field(
        1, ge=1, le=9, description="Targets signatures needed."
    )
    root_days: int = Field(365, ge=1, le=3650, description="Root metadata lifetime.")
    targets_days: int = Field(90, ge=1, le=365, description="Targets lifetime.")
    snapshot_days: int = Field(7, ge=1, le=90, description="Snapshot lifetime.")
    timestamp_hours: int = Field(
        24, ge=1, le=24 * 14, description="Timestamp lifetime; re-sign before it."
    )
    resign_margin_hours: int = Field(
        12,
        ge=1,
        le=24 * 30,
        description="'kiosk ota resign-timestamp --if-due' re-signs the roles "
        "that expire within this many hours.",
    )
    max_bundle_bytes: int = Field(
        500_000_000, ge=1_000, le=4_000_000_000, description="Largest bundle."
    )
    rollout_stages: list[int] = Field(
        default_factory=lambda: [5, 25, 50, 100],
        min_length=1,
        max_length=10,
        description="Cohort percentages a staged rollout goes through.",
    )
    failure_threshold: float = Field(
        0.2, gt=0, le=1, description="Failed share of reports that halts a rollout."
    )
    min_reports: int = Field(
        3, ge=1, le=1000, description="Reports needed before the share is judged."
    )
    advance_share: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Share of a stage's kiosks installed before the next stage.",
    )


class OtaClientSection(Section):
    """The kiosk's update client: where it keeps slots and how it checks."""

    ota_dir: Path = Field(
        Path("var/ota"), description="Slots, downloads and trusted TUF metadata."
    )
    trusted_root: Path = Field(
        Path("var/ota/trusted-root.json"),
        description="Root metadata installed at provisioning: the trust anchor.",
    )
    base_url: str = Field(
        "http://127.0.0.1:8443/ota/v1",
        pattern=r"^https?://",
        description="The bridge's update endpoint.",
    )
    check_interval_s: int = Field(
        3600, ge=60, le=86_400, description="Periodic check besides notices."
    )
    idle_poll_s: float = Field(
        2.0, gt=0, le=60, description="How often a waiting update asks if idle."
    )
    idle_wait_s: float = Field(
        1800, ge=0, le=86_400, description="Longest wait for the kiosk to be idle."
    )
    probation_s: int = Field(
        180,
        ge=0,
        le=3600,
        description="Time on a new version before it is confirmed; a restart "
        "before that rolls back.",
    )
    min_free_bytes: int = Field(
        50_000_000, ge=0, description="Free space kept beyond a download."
    )
    max_cer: float = Field(
        0.15, gt=0, le=1, description="Highest character error rate on sample pages."
    )
    min_face_self_score: float = Field(
        0.99, ge=0, le=1, description="Lowest score of a face against itself."
    )
    face_threshold_bounds: tuple[float, float] = Field(
        (0.2, 0.8), description="Acceptable range of a bundle's face threshold."
    )
    model_latency_ms: float = Field(
        2000, gt=0, le=60_000, description="Budget of one warm-up run per model."
    )
    page_latency_ms: float = Field(
        5000, gt=0, le=60_000, description="Budget of reading one sample page."
    )
