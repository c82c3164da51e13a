"""The kiosk's update client: learn, verify, install, check, switch, report.

An update is learnt of by a notice (:meth:`UpdateClient.handle_notice`) or a
periodic check (:meth:`UpdateClient.check`). The client waits until the
kiosk is idle (``busy()`` is false), refreshes the signed metadata with
TUF's ``Updater``, downloads the target with resumption, verifies its
length and hash against the signed metadata, unpacks it into the inactive
slot, runs the health check there, and switches. The switch is on probation:
the kiosk calls :meth:`UpdateClient.confirm` once it has served for
``probation_s``; a restart before that (a crash, a power cut) makes
:meth:`UpdateClient.boot` switch back to the previous slot. Every outcome is
reported through the ``reporter`` callback as an :class:`InstallReport`.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tuf.api import exceptions as tuf_errors

from models.manifest import ModelEntry
from ota.bundle import (
    MODELS_DIR,
    BundleConfig,
    BundleManifest,
    extract_bundle,
    manifest_toml,
    read_manifest,
)
from ota.config import OtaClientSection
from ota.errors import (
    BundleError,
    DiskFullError,
    InstallError,
    OtaError,
    UpdateDownloadError,
    UpdateRefusedError,
)
from ota.fetcher import HttpFetcher, download_resumable
from ota.health import HealthCheck
from ota.slots import Pending, SlotStore
from ota.tufapi import TargetFile, Updater, UpdaterConfig
from protocol.envelope import new_message
from protocol.updates import InstallReport, InstallState, UpdateNotice

logger = logging.getLogger(__name__)

Reporter = Callable[[InstallReport], None]
StepHook = Callable[[str], None]
TARGET_INFO = "ota-target.json"
# Steps reported to ``on_step`` as each one completes, in order.
STEPS = ("download", "verify", "unpack", "commit", "health", "pending", "switch")


@dataclass
class InstallOutcome:
    """How an update attempt ended, as reported to the bridge."""

    state: InstallState
    target: str
    running_version: str
    phase: str = ""
    error: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)


class UpdateClient:
    """Install signed model bundles into A/B slots without ever bricking the kiosk."""

    def __init__(
        self,
        kiosk_id: str,
        settings: OtaClientSection,
        http: httpx.Client,
        *,
        health_check: HealthCheck,
        busy: Callable[[], bool],
        reporter: Reporter,
        on_step: StepHook | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.kiosk_id = kiosk_id
        self.settings = settings
        self.http = http
        self.health_check = health_check
        self.busy = busy
        self.reporter = reporter
        self.on_step = on_step or (lambda step: None)
        self.clock = clock
        self.sleep = sleep
        self.slots = SlotStore(settings.ota_dir)
        self.base_url = settings.base_url.rstrip("/")

    def running_version(self) -> str:
        """Return the bundle version of the current slot ('' before any)."""
        try:
            return read_manifest(self.slots.current_dir()).bundle_version
        except OtaError:
            return ""

    def running_target(self) -> str:
        """Return the target the current slot was installed from ('' if seeded)."""
        try:
            info = json.loads((self.slots.current_dir() / TARGET_INFO).read_bytes())
        except (OtaError, OSError, ValueError):
            return ""
        return str(info.get("target", ""))

    def boot(self) -> InstallOutcome | None:
        """Settle an interrupted switch at start; roll back one on probation."""
        state = self.slots.read_state()
        pending = state.pending
        if pending is None:
            return None
        state.pending = None
        if self.slots.current_slot() != pending.slot:
            self.slots.write_state(state)
            return self._finish(
                "failed", pending.target, "switch", "a restart interrupted the switch"
            )
        self.slots.switch(pending.previous)
        state.failed_targets.append(pending.target)
        self.slots.write_state(state)
        logger.error("restarted on probation; rolled back to slot %s", pending.previous)
        return self._finish(
            "rolled_back",
            pending.target,
            "probation",
            "the kiosk restarted before the new version was confirmed",
        )

    def confirm(self) -> bool:
        """End a probation that has lasted ``probation_s``; tell whether it did."""
        state = self.slots.read_state()
        pending = state.pending
        if pending is None:
            return False
        if self.clock() - pending.switched_at < self.settings.probation_s:
            return False
        state.pending = None
        self.slots.write_state(state)
        shutil.rmtree(self.slots.slot_dir(pending.previous) / MODELS_DIR, True)
        logger.info("confirmed the update to %s", pending.target)
        return True

    def handle_notice(self, notice: UpdateNotice) -> InstallOutcome | None:
        """Install the target a notice names, unless it is already running."""
        if notice.kiosk_id != self.kiosk_id:
            logger.warning("dropped an update notice for kiosk %s", notice.kiosk_id)
            return None
        if notice.target == self.running_target():
            return None
        return self.install(notice.target)

    def check(self) -> InstallOutcome | None:
        """Ask the bridge which target this kiosk should run; install it if new."""
        url = f"{self.base_url}/kiosks/{self.kiosk_id}/assignment"
        try:
            response = self.http.get(url)
            response.raise_for_status()
            target = response.json().get("target")
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("update check failed: %s", exc)
            return None
        if not isinstance(target, str) or target == self.running_target():
            return None
        return self.install(target)

    def install(self, target: str) -> InstallOutcome:
        """Fetch, verify, unpack, check and switch to ``target``; report it."""
        state = self.slots.read_state()
        if target in state.failed_targets:
            return self._finish("refused", target, "check", "it failed here before")
        if state.pending is not None:
            return self._finish(
                "waiting", target, "probation", "a switch is on probation"
            )
        if not self._wait_idle():
            return self._finish("waiting", target, "idle", "the kiosk stayed busy")
        timings: dict[str, float] = {}
        phase = "refresh"
        try:
            with _timed(timings, "refresh"):
                info = self._target_info(target)
            sequence = _sequence(info, state.installed_sequence)
            phase = "download"
            with _timed(timings, "download"):
                part = self._download(info)
            self.on_step("download")
            phase = "verify"
            with _timed(timings, "verify"):
                self._verify(info, part)
            self.on_step("verify")
            phase = "unpack"
            with _timed(timings, "unpack"):
                slot, manifest = self._unpack(part, target, sequence)
            phase = "health"
            with _timed(timings, "health"):
                report = self.health_check(self.slots.slot_dir(slot), manifest)
            self.on_step("health")
            if not report.passed:
                self._remember_failure(target)
                return self._finish(
                    "failed", target, "health", report.failures(), timings
                )
            phase = "switch"
            if not self._wait_idle():
                return self._finish("waiting", target, "idle", "the kiosk stayed busy")
            with _timed(timings, "switch"):
                self._switch(slot, target, sequence)
            part.unlink(missing_ok=True)
        except UpdateRefusedError as exc:
            return self._finish("refused", target, phase, str(exc), timings)
        except (OtaError, OSError) as exc:
            if isinstance(exc, BundleError | InstallError):
                self._remember_failure(target)
            return self._finish("failed", target, phase, str(exc), timings)
        return self._finish("installed", target, "", "", timings)

    def refresh(self) -> Updater:
        """Return an ``Updater`` whose top-level metadata was just refreshed.

        Raises:
            UpdateRefusedError: metadata failed verification.
            UpdateDownloadError: metadata could not be downloaded.
        """
        directory = self.settings.ota_dir / "tuf"
        directory.mkdir(parents=True, exist_ok=True)
        bootstrap = None
        if not (directory / "root.json").exists():
            bootstrap = self._trusted_root()
        with _tuf_errors():
            updater = Updater(
                str(directory),
                f"{self.base_url}/metadata/",
                target_base_url=f"{self.base_url}/targets/",
                fetcher=HttpFetcher(self.http),
                config=UpdaterConfig(timestamp_max_length=16_384),
                bootstrap=bootstrap,
            )
            updater.refresh()
        return updater

    def seed(self, model_dir: Path, entries: list[ModelEntry], version: str) -> None:
        """Install the models already on disk as the first slot (factory image)."""
        if self.slots.current_slot() is not None:
            raise InstallError("a slot is installed already; seeding is for new kiosks")
        staging = self.slots.prepare("a")
        (staging / MODELS_DIR).mkdir()
        for entry in entries:
            shutil.copy2(model_dir / entry.file, staging / MODELS_DIR / entry.file)
        manifest = BundleManifest(
            bundle_version=version, model=entries, config=BundleConfig()
        )
        (staging / "bundle.toml").write_text(manifest_toml(manifest), "utf-8")
        read_manifest(staging)
        self.slots.commit(staging, "a")
        self.slots.switch("a")

    def _trusted_root(self) -> bytes:
        try:
            return self.settings.trusted_root.read_bytes()
        except OSError as exc:
            raise UpdateRefusedError(
                f"the trusted root metadata {self.settings.trusted_root} is "
                "missing; provision the kiosk with the office's root.json"
            ) from exc

    def _target_info(self, target: str) -> TargetFile:
        updater = self.refresh()
        with _tuf_errors():
            info = updater.get_targetinfo(target)
        if info is None:
            raise UpdateRefusedError(
                f"target {target} is not in the signed metadata; the notice was "
                "wrong or forged"
            )
        return info

    def _download(self, info: TargetFile) -> Path:
        digest = info.hashes["sha256"]
        downloads = self.settings.ota_dir / "downloads"
        downloads.mkdir(parents=True, exist_ok=True)
        part = downloads / f"{digest}.part"
        have = part.stat().st_size if part.exists() else 0
        free = shutil.disk_usage(downloads).free
        needed = 2 * info.length - have + self.settings.min_free_bytes
        if free < needed:
            raise DiskFullError(
                f"{free} bytes are free, the update needs {needed}; free space on "
                f"{downloads} and the update is retried"
            )
        url = f"{self.base_url}/targets/{digest}.{info.path}"
        for attempt in range(3):
            try:
                download_resumable(self.http, url, part, info.length)
                return part
            except DiskFullError:
                raise
            except UpdateRefusedError:
                part.unlink(missing_ok=True)
                raise
            except UpdateDownloadError:
                if attempt == 2:
                    raise
                logger.warning("download of %s interrupted; resuming", info.path)
        return part

    def _verify(self, info: TargetFile, part: Path) -> None:
        try:
            with part.open("rb") as handle:
                info.verify_length_and_hashes(handle)
        except tuf_errors.LengthOrHashMismatchError as exc:
            part.unlink(missing_ok=True)
            raise UpdateRefusedError(
                f"target {info.path} does not match its signed length and hash: {exc}"
            ) from exc

    def _unpack(
        self, part: Path, target: str, sequence: int
    ) -> tuple[str, BundleManifest]:
        slot = self.slots.inactive_slot()
        staging = self.slots.prepare(slot)
        try:
            manifest = extract_bundle(part, staging, 4 * part.stat().st_size + 4096)
        except BundleError:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        info = {"target": target, "sequence": sequence}
        (staging / TARGET_INFO).write_text(json.dumps(info), encoding="utf-8")
        self.on_step("unpack")
        self.slots.commit(staging, slot)
        self.on_step("commit")
        return slot, manifest

    def _switch(self, slot: str, target: str, sequence: int) -> None:
        state = self.slots.read_state()
        previous = self.slots.current_slot() or "a"
        state.pending = Pending(slot, previous, target, self.clock())
        state.installed_sequence = sequence
        self.slots.write_state(state)
        self.on_step("pending")
        self.slots.switch(slot)
        self.on_step("switch")

    def _wait_idle(self) -> bool:
        deadline = time.monotonic() + self.settings.idle_wait_s
        while self.busy():
            if time.monotonic() >= deadline:
                return False
            self.sleep(self.settings.idle_poll_s)
        return True

    def _remember_failure(self, target: str) -> None:
        state = self.slots.read_state()
        if target not in state.failed_targets:
            state.failed_targets.append(target)
            self.slots.write_state(state)

    def _finish(
        self,
        state: InstallState,
        target: str,
        phase: str,
        error: str,
        timings: dict[str, float] | None = None,
    ) -> InstallOutcome:
        outcome = InstallOutcome(
            state, target, self.running_version(), phase, error[:500], timings or {}
        )
        log = logger.info if state in ("installed", "waiting") else logger.error
        log("update %s: %s %s %s", target, state, phase, error)
        report = new_message(
            InstallReport,
            kiosk_id=self.kiosk_id,
            target=target,
            state=state,
            running_version=outcome.running_version,
            phase=phase,
            error=outcome.error,
            timings_ms=outcome.timings_ms,
        )
        try:
            self.reporter(report)
        except Exception:
            logger.exception("could not report the update outcome")
        return outcome


def _sequence(info: TargetFile, installed: int) -> int:
    custom: Any = info.custom or {}
    try:
        sequence = int(custom["sequence"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UpdateRefusedError(f"target {info.path} has no release sequence") from exc
    if sequence <= installed:
        raise UpdateRefusedError(
            f"target {info.path} is release {sequence}, not newer than the "
            f"installed {installed}; refusing a rollback"
        )
    return sequence


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = round((time.perf_counter() - start) * 1000, 1)


@contextmanager
def _tuf_errors() -> Iterator[None]:
    try:
        yield
    except tuf_errors.DownloadLengthMismatchError as exc:
        raise UpdateRefusedError(f"metadata larger than allowed: {exc}") from exc
    except tuf_errors.DownloadError as exc:
        raise UpdateDownloadError(f"cannot download update metadata: {exc}") from exc
    except tuf_errors.RepositoryError as exc:
        raise UpdateRefusedError(
            f"update metadata refused ({type(exc).__name__}): {exc}"
        ) from exc
