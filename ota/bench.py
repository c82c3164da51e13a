"""Measure an update end to end on this machine: publish, refresh, install, switch.

A local bridge (the OTA router under uvicorn on a loopback port) serves a
fresh signed repository; a local kiosk seeded with the current models
installs a bundle of the same models through real HTTP, with the real health
check, while a serving loop keeps answering requests (each one resolves the
current slot and reads its manifest, as a visit would before inference). The
loop's longest pause shows whether the kiosk kept serving. When the model
files are not fetched, a 20 MB bundle of generated test files is used and the
report says so; the health check then only verifies their hashes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from models.files import is_intact
from models.manifest import ModelEntry, load_manifest
from ota.bundle import BundleManifest, build_bundle, read_manifest
from ota.client import UpdateClient
from ota.config import OtaClientSection, OtaRepositorySection
from ota.errors import OtaError
from ota.health import HealthReport, ModelHealthCheck

logger = logging.getLogger(__name__)

KIOSK_ID = "kiosk-bench-001"
TEST_BUNDLE_BYTES = 20_000_000
TARGETS_S = {
    "metadata_refresh": 1.0,
    "download_verify_install": 10.0,
    "health_check": 30.0,
    "switch": 1.0,
}


@dataclass
class ServingLoop:
    """Answer requests in a thread, recording the longest answer time."""

    slots_root: Path
    answered: int = 0
    failed: int = 0
    longest_s: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """Answer one request every 20 ms until stopped."""
        while not self._stop.is_set():
            start = time.perf_counter()
            try:
                read_manifest(self.slots_root / "current")
                self.answered += 1
            except OtaError:
                self.failed += 1
            self.longest_s = max(self.longest_s, time.perf_counter() - start)
            self._stop.wait(0.02)

    def stop(self) -> None:
        """Stop answering."""
        self._stop.set()


class RecordingCheck:
    """Run a health check and keep its report for the bench's output."""

    def __init__(self, inner: ModelHealthCheck) -> None:
        self.inner = inner
        self.report: HealthReport | None = None

    def __call__(self, slot: Path, manifest: BundleManifest) -> HealthReport:
        """Run the inner check and keep the report."""
        self.report = self.inner(slot, manifest)
        return self.report


def run_bench(model_dir: Path, work: Path | None = None) -> dict[str, Any]:
    """Publish and install one bundle locally; return the figures."""
    with tempfile.TemporaryDirectory(prefix="kiosk-ota-bench-", dir=work) as scratch:
        return _bench(model_dir, Path(scratch))


def _bench(model_dir: Path, root: Path) -> dict[str, Any]:
    from ota.repository import init_repository

    entries, source, note = _bundle_source(model_dir, root)
    settings = OtaRepositorySection()
    repository = init_repository(
        root / "repo", root / "root-keys", root / "keys", settings
    )
    bundle = root / "bundle.tar"
    version = time.strftime("bench-%Y%m%d%H%M%S")
    build_bundle(bundle, source, entries, version)
    target = "models-bench-r1.tar"
    repository.publish_target(
        target, bundle, {"sequence": 1, "bundle_version": version}
    )
    port = _free_port()
    server, thread = _serve(root / "repo", port)
    try:
        return _install(
            root, repository.root_bytes(), port, entries, source, target, bundle, note
        )
    finally:
        server.should_exit = True
        thread.join(10)


def _install(
    root: Path,
    trusted_root: bytes,
    port: int,
    entries: list[ModelEntry],
    source: Path,
    target: str,
    bundle: Path,
    note: str,
) -> dict[str, Any]:
    (root / "trusted-root.json").write_bytes(trusted_root)
    settings = OtaClientSection(
        ota_dir=root / "kiosk",
        trusted_root=root / "trusted-root.json",
        base_url=f"http://127.0.0.1:{port}/ota/v1",
        min_free_bytes=0,
    )
    with httpx.Client(timeout=30) as http:
        check = RecordingCheck(ModelHealthCheck(settings))
        client = UpdateClient(
            KIOSK_ID,
            settings,
            http,
            health_check=check,
            busy=lambda: False,
            reporter=lambda report: None,
        )
        client.seed(source, entries, "factory")
        loop = ServingLoop(settings.ota_dir)
        serving = threading.Thread(target=loop.run, daemon=True)
        serving.start()
        start = time.perf_counter()
        client.refresh()
        refresh_s = time.perf_counter() - start
        outcome = client.install(target)
        loop.stop()
        serving.join(5)
    timings = outcome.timings_ms
    phases = {
        "metadata_refresh": refresh_s,
        "download_verify_install": sum(
            timings.get(step, 0.0) for step in ("download", "verify", "unpack")
        )
        / 1000,
        "health_check": timings.get("health", 0.0) / 1000,
        "switch": timings.get("switch", 0.0) / 1000,
    }
    return {
        "bundle_bytes": bundle.stat().st_size,
        "bundle": note,
        "outcome": outcome.state,
        "error": outcome.error,
        "phases_s": {name: round(value, 3) for name, value in phases.items()},
        "targets_s": TARGETS_S,
        "within_targets": all(phases[name] < TARGETS_S[name] for name in TARGETS_S),
        "health": {
            "checks": [
                {"name": r.name, "passed": r.passed, "detail": r.detail}
                for r in (check.report.results if check.report else [])
            ],
            "not_checked": check.report.not_checked if check.report else [],
        },
        "serving": {
            "answered": loop.answered,
            "failed": loop.failed,
            "longest_ms": round(loop.longest_s * 1000, 1),
        },
    }


def _bundle_source(model_dir: Path, root: Path) -> tuple[list[ModelEntry], Path, str]:
    manifest = load_manifest()
    if all(is_intact(entry, model_dir) for entry in manifest.model):
        return list(manifest.model), model_dir, "the current models from the manifest"
    source = root / "test-files"
    source.mkdir()
    entries = []
    for index in range(4):
        data = os.urandom(TEST_BUNDLE_BYTES // 4)
        (source / f"test_{index}.bin").write_bytes(data)
        entries.append(
            ModelEntry(
                name=f"test_{index}",
                version="bench",
                task="bench data",
                runtime="none",
                file=f"test_{index}.bin",
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
                package="bench",
                member=f"test_{index}.bin",
                licence="none",
                inputs=[],
                outputs=[],
            )
        )
    return (
        entries,
        source,
        (
            f"20 MB of generated test files: the model files are not in {model_dir} "
            "(run 'kiosk models fetch'); the health check only verified hashes"
        ),
    )


def _serve(repo_dir: Path, port: int) -> tuple[Any, threading.Thread]:
    import uvicorn
    from fastapi import FastAPI

    from cloud_bridge.ota_routes import create_ota_router

    app = FastAPI()
    app.include_router(create_ota_router(repo_dir, None))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise OtaError("the local bridge for the bench did not start")
        time.sleep(0.05)
    return server, thread


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def describe(result: dict[str, Any]) -> str:
    """Return the bench result as lines for a terminal."""
    lines = [
        f"bundle: {result['bundle_bytes'] / 1e6:.1f} MB, {result['bundle']}",
        f"outcome: {result['outcome']} {result['error']}".rstrip(),
    ]
    for name, seconds in result["phases_s"].items():
        target = result["targets_s"][name]
        mark = "ok" if seconds < target else "OVER"
        lines.append(f"  {name:<24} {seconds:8.3f} s  (target < {target:g} s) {mark}")
    for check in result["health"]["checks"]:
        mark = "ok" if check["passed"] else "FAILED"
        lines.append(f"    {check['name']}: {check['detail']} {mark}")
    for item in result["health"]["not_checked"]:
        lines.append(f"    not checked: {item}")
    serving = result["serving"]
    lines.append(
        f"serving throughout: {serving['answered']} requests answered, "
        f"{serving['failed']} failed, longest {serving['longest_ms']} ms"
    )
    return "\n".join(lines)
