"""Tests of the liveness challenge, on signal sequences and on real frames."""

from __future__ import annotations

import random
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.faces.liveness import (
    Challenge,
    FrameSignals,
    LivenessLimits,
    LivenessSensor,
    LivenessSession,
)
from models.faces.tracking import FaceMesher, QuickFaceDetector
from models.images import read_image
from models.manifest import Manifest

FPS = 20.0
OPEN = 0.20
FRONT = 0.5


def _action(challenge: Challenge) -> list[tuple[float, float]]:
    """Yaw and eye openness over the frames of one performed action."""
    if challenge is Challenge.BLINK:
        return [(FRONT, OPEN)] * 3 + [(FRONT, 0.05)] * 2 + [(FRONT, OPEN)] * 3
    sign = 1.0 if challenge is Challenge.TURN_LEFT else -1.0
    ramp = [FRONT + sign * step for step in (0.05, 0.1, 0.18, 0.2, 0.1, 0.03)]
    return [(yaw, OPEN) for yaw in ramp] + [(FRONT, OPEN)] * 2


class Camera:
    """Stamp signals at a steady frame rate, as the camera loop would."""

    def __init__(self, session: LivenessSession) -> None:
        self.session = session
        self.time = 0.0

    def feed(self, values: list[tuple[float, float]], framed: bool = False) -> None:
        for yaw, eyes in values:
            self.time += 1 / FPS
            self.session.observe(FrameSignals(self.time, 1, yaw, eyes, framed))

    def empty(self, faces: int) -> None:
        self.time += 1 / FPS
        self.session.observe(FrameSignals(self.time, faces))


def _baseline() -> list[tuple[float, float]]:
    return [(FRONT + 0.005 * (i % 2), OPEN) for i in range(6)]


def test_performing_the_prompts_in_order_passes() -> None:
    session = LivenessSession(
        [Challenge.TURN_LEFT, Challenge.BLINK, Challenge.TURN_RIGHT]
    )
    camera = Camera(session)
    assert session.prompt is None
    camera.feed(_baseline())
    for challenge in session.challenges:
        assert session.prompt is challenge
        camera.feed(_action(challenge))
    result = session.result()
    assert result.passed, result.reasons
    assert result.completed == session.challenges
    assert result.fps == pytest.approx(FPS, rel=0.05)


def test_still_photo_fails_in_time() -> None:
    session = LivenessSession(
        [Challenge.BLINK, Challenge.TURN_LEFT, Challenge.TURN_RIGHT]
    )
    Camera(session).feed([(FRONT, OPEN)] * int(FPS * 8))
    result = session.result()
    assert not result.passed
    assert result.reasons == ("blink was not done in time",)


def test_replayed_video_in_another_order_fails() -> None:
    session = LivenessSession(
        [Challenge.TURN_RIGHT, Challenge.TURN_LEFT, Challenge.BLINK]
    )
    camera = Camera(session)
    camera.feed(_baseline())
    camera.feed(_action(Challenge.TURN_LEFT))
    result = session.result()
    assert not result.passed
    assert "wrong way" in result.reasons[0]


def test_turning_while_eyes_half_close_is_not_a_blink() -> None:
    session = LivenessSession(
        [Challenge.BLINK, Challenge.TURN_LEFT, Challenge.TURN_RIGHT]
    )
    camera = Camera(session)
    camera.feed(_baseline())
    camera.feed([(FRONT + 0.2, 0.05)] * 3 + [(FRONT, OPEN)] * 3)
    assert session.prompt is Challenge.BLINK


def test_second_face_fails_the_session() -> None:
    session = LivenessSession()
    camera = Camera(session)
    camera.feed(_baseline())
    camera.empty(faces=2)
    assert session.finished
    assert session.result().reasons == ("more than one face was in view",)


def test_face_leaving_the_view_fails() -> None:
    session = LivenessSession(limits=LivenessLimits(lost_frames=3))
    camera = Camera(session)
    camera.feed(_baseline())
    for _ in range(3):
        camera.empty(faces=0)
    assert session.result().reasons == ("the face left the camera's view",)


def test_frames_with_a_screen_edge_fail() -> None:
    session = LivenessSession(
        [Challenge.BLINK, Challenge.TURN_LEFT, Challenge.TURN_RIGHT]
    )
    camera = Camera(session)
    camera.feed(_baseline(), framed=True)
    for challenge in session.challenges:
        camera.feed(_action(challenge), framed=True)
    result = session.result()
    assert not result.passed
    assert "edge" in result.reasons[0]


def test_slow_frames_fail() -> None:
    session = LivenessSession(
        [Challenge.BLINK], limits=LivenessLimits(challenge_seconds=60)
    )
    for i, (yaw, eyes) in enumerate(_baseline() + _action(Challenge.BLINK)):
        session.observe(FrameSignals(i * 0.5, 1, yaw, eyes))
    result = session.result()
    assert result.completed == (Challenge.BLINK,)
    assert not result.passed
    assert "per second" in result.reasons[0]


def test_order_is_random_per_session() -> None:
    orders = {LivenessSession().challenges for _ in range(60)}
    assert len(orders) >= 3
    seeded = LivenessSession(rng=random.Random(4)).challenges
    assert sorted(seeded) == sorted(Challenge)


@pytest.fixture(scope="module")
def sensor(manifest: Manifest, model_dir: Path) -> LivenessSensor:
    """BlazeFace and the face mesh on LiteRT, one thread."""
    from models.runtime import load_model

    return LivenessSensor(
        QuickFaceDetector(load_model(manifest.get_model("blazeface_short"), model_dir)),
        FaceMesher(load_model(manifest.get_model("face_landmark"), model_dir)),
    )


def _live_frame(face: np.ndarray) -> np.ndarray:
    """Blend a face into a 640x480 frame with soft edges (no photo border)."""
    frame = np.full((480, 640, 3), (120, 110, 100), np.float32)
    mask = np.zeros((250, 250), np.float32)
    cv2.circle(mask, (125, 125), 95, 1.0, -1)
    soft = cv2.GaussianBlur(mask, (0, 0), 12)[:, :, None]
    region = frame[100:350, 200:450]
    frame[100:350, 200:450] = region * (1 - soft) + face * soft
    return frame.astype(np.uint8)


@pytest.fixture(scope="module")
def face(lfw_dir: Path) -> np.ndarray:
    return read_image(lfw_dir / "Colin_Powell" / "Colin_Powell_0001.jpg")


def test_sensor_reads_one_unframed_face(
    sensor: LivenessSensor, face: np.ndarray
) -> None:
    signals = sensor.measure(_live_frame(face), 0.0)
    assert signals.faces == 1
    assert signals.framed is False
    assert signals.eye_openness is not None and signals.eye_openness > 0.1


def test_sensor_sees_a_held_up_photo_edge(
    sensor: LivenessSensor, face: np.ndarray
) -> None:
    frame = np.full((480, 640, 3), 100, np.uint8)
    frame[100:350, 200:450] = face
    assert sensor.measure(frame, 0.0).framed is True


def test_mirrored_face_mirrors_the_yaw(
    sensor: LivenessSensor, face: np.ndarray
) -> None:
    straight = sensor.measure(_live_frame(face), 0.0).yaw
    mirrored = sensor.measure(_live_frame(face[:, ::-1].copy()), 0.0).yaw
    assert straight is not None and mirrored is not None
    assert abs(straight - 0.5) > 0.1
    assert straight + mirrored == pytest.approx(1.0, abs=0.08)


def test_tilted_photo_does_not_look_like_a_blink(
    sensor: LivenessSensor, face: np.ndarray
) -> None:
    frame = _live_frame(face)
    upright = sensor.measure(frame, 0.0).eye_openness
    squash = np.array([[1, 0, 0], [0, 0.7, 72]], np.float32)
    tilted_frame = np.asarray(
        cv2.warpAffine(frame, squash, (640, 480), borderMode=cv2.BORDER_REPLICATE),
        np.uint8,
    )
    tilted = sensor.measure(tilted_frame, 0.0).eye_openness
    assert upright is not None and tilted is not None
    assert tilted / upright > LivenessLimits().blink_closed + 0.1


def test_loop_runs_above_fifteen_frames_per_second(
    sensor: LivenessSensor, face: np.ndarray
) -> None:
    frame = _live_frame(face)
    sensor.measure(frame, 0.0)
    times = []
    for _ in range(15):
        start = time.perf_counter()
        sensor.measure(frame, 0.0)
        times.append(time.perf_counter() - start)
    assert float(np.median(times)) < 1 / 15
