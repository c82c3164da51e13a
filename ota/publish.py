"""Publish a bundle: check it, sign it into the repository, start its rollout."""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ota.bundle import extract_bundle
from ota.director import Director, Release
from ota.repository import UpdateRepository

logger = logging.getLogger(__name__)


def target_name(bundle_version: str, sequence: int) -> str:
    """Return the TUF target path of release ``sequence`` of ``bundle_version``."""
    safe = re.sub(r"[^A-Za-z0-9.\-]", "-", bundle_version)
    return f"models-{safe}-r{sequence}.tar"


def publish_bundle(
    repository: UpdateRepository,
    director: Director,
    bundle: Path,
    channel: str = "stable",
    cohort: int | None = None,
    kiosks: Sequence[str] | None = None,
    max_bytes: int = 500_000_000,
) -> Release:
    """Check ``bundle`` fully, sign it as a new target and start its rollout.

    Raises:
        BundleError: the bundle is corrupt, incomplete or its manifest invalid.
        RepositoryError, KeyFileError: the repository or its keys are unusable.
    """
    with tempfile.TemporaryDirectory(prefix="kiosk-ota-check-") as scratch:
        manifest = extract_bundle(bundle, Path(scratch) / "bundle", max_bytes)
    sequence = director.next_sequence()
    target = target_name(manifest.bundle_version, sequence)
    custom = {
        "sequence": sequence,
        "bundle_version": manifest.bundle_version,
        "channel": channel,
    }
    repository.publish_target(target, bundle, custom)
    return director.create_release(
        sequence, target, manifest.bundle_version, channel, cohort, kiosks
    )
