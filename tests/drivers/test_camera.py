"""Cameras with the simulated backend: preview, stills, watchdog, faults."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drivers.camera import Camera, CaptureMode, encode_jpeg, mjpeg_part
from drivers.camera_sim import SimulatedCameraBackend
from drivers.errors import (
    BackendMissingError,
    CaptureError,
    DeviceTimeoutError,
    DeviceUnavailableError,
)
from drivers.health import Capability, HealthState, Reason


def wait_until(predicate: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def face_sequence(tmp_path: Path) -> Path:
    """Three frames of a 'face' moving left to right."""
    folder = tmp_path / "turn"
    folder.mkdir()
    for number, x in enumerate((10, 40, 70)):
        image = Image.new("RGB", (120, 90), "black")
        image.paste((255, 255, 255), (x, 20, x + 30, 60))
        image.save(folder / f"{number:02d}.png")
    return folder


@pytest.fixture
def backend() -> SimulatedCameraBackend:
    return SimulatedCameraBackend(fps=50, preview_size=(64, 48), still_size=(320, 240))


@pytest.fixture
def camera(backend: SimulatedCameraBackend) -> Iterator[Camera]:
    cam = Camera("camera.document", backend, stall_timeout=0.3, max_restarts=2)
    cam.start()
    yield cam
    cam.stop()


def test_preview_frames_and_still(camera: Camera) -> None:
    first = camera.next_frame(timeout=2)
    second = camera.next_frame(first.sequence, timeout=2)
    assert second.sequence > first.sequence
    assert first.size == (64, 48)

    still = camera.capture_still(CaptureMode.DOCUMENT, timeout=2)
    assert still.size == (320, 240)
    assert camera.health().state is HealthState.OK
    assert Capability.CAPTURE_DOCUMENT in camera.capabilities


def test_mjpeg_parts_hold_jpegs(camera: Camera) -> None:
    part = next(camera.mjpeg(timeout=2))
    assert part.startswith(b"--kioskframe\r\nContent-Type: image/jpeg")
    assert b"\xff\xd8" in part
    assert mjpeg_part(encode_jpeg(np.zeros((4, 4, 3), np.uint8))).endswith(b"\r\n")


def test_sequence_plays_in_order(face_sequence: Path) -> None:
    sim = SimulatedCameraBackend(
        face_sequence, fps=100, preview_size=(120, 90), loop=False
    )
    cam = Camera("camera.face", sim, CaptureMode.FACE)
    cam.start()
    try:
        frames = [cam.next_frame(-1, 2)]
        while len(frames) < 3:
            frames.append(cam.next_frame(frames[-1].sequence, 2))
    finally:
        cam.stop()
    columns = [int(np.argmax(f.image[40, :, 0] > 128)) for f in frames]
    assert columns == sorted(columns) and columns[0] < columns[-1]
    assert sim.mode is CaptureMode.FACE


def test_stalled_camera_is_detected_and_recovered(
    camera: Camera, backend: SimulatedCameraBackend
) -> None:
    camera.next_frame(timeout=2)
    reasons: list[Reason] = []
    camera.tracker.subscribe(lambda _name, health: reasons.append(health.reason))

    backend.stall()

    assert wait_until(lambda: Reason.FRAMES_STALLED in reasons, 3)
    assert wait_until(lambda: camera.health().state is HealthState.OK, 3)
    assert camera.restarts >= 1 and backend.opened >= 2
    frame = camera.next_frame(camera.latest_frame().sequence, timeout=2)  # type: ignore[union-attr]
    assert frame.size == (64, 48)


def test_unplugged_camera_fails_then_recovers(
    camera: Camera, backend: SimulatedCameraBackend
) -> None:
    camera.next_frame(timeout=2)
    backend.unplug()
    assert wait_until(lambda: camera.health().reason is Reason.CAMERA_GONE, 5)
    with pytest.raises(DeviceUnavailableError, match="camera gone"):
        camera.capture_still(timeout=1)

    backend.replug()
    assert wait_until(lambda: camera.health().state is HealthState.OK, 5)


def test_corrupt_frames_degrade_health(
    camera: Camera, backend: SimulatedCameraBackend
) -> None:
    camera.next_frame(timeout=2)
    reasons: list[Reason] = []
    camera.tracker.subscribe(lambda _name, health: reasons.append(health.reason))
    backend.corrupt(8)
    assert wait_until(lambda: Reason.CORRUPT_FRAMES in reasons, 3)
    assert wait_until(lambda: camera.health().state is HealthState.OK, 3)


def test_corrupt_still_is_an_error(
    camera: Camera, backend: SimulatedCameraBackend
) -> None:
    backend.corrupt_stills(1)
    with pytest.raises(CaptureError, match="corrupt still"):
        camera.capture_still(timeout=2)
    assert camera.capture_still(timeout=2).size == (320, 240)


def test_hung_backend_still_times_out(
    camera: Camera, backend: SimulatedCameraBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backend, "capture_still", lambda mode: time.sleep(3))
    started = time.monotonic()
    with pytest.raises(DeviceTimeoutError, match="did not answer"):
        camera.capture_still(timeout=0.3)
    assert time.monotonic() - started < 1.5


def test_missing_source_is_reported(tmp_path: Path) -> None:
    with pytest.raises(DeviceUnavailableError, match="no image files"):
        SimulatedCameraBackend(tmp_path)


def test_picamera2_missing_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)
    from drivers.camera_picamera2 import Picamera2Backend

    with pytest.raises(BackendMissingError, match="python3-picamera2"):
        Picamera2Backend()


def test_v4l2_absent_device_is_unavailable() -> None:
    from drivers.camera_v4l2 import V4l2CameraBackend

    backend = V4l2CameraBackend("/dev/video-kiosk-none")
    with pytest.raises(DeviceUnavailableError, match="cannot be opened"):
        backend.open()
