"""Judge liveness from camera frames: an active challenge and presentation checks.

The citizen is asked, in a random order drawn fresh for each session, to
turn the head left, turn it right and blink, returning to face the camera
between actions. Each frame is reduced to a few signals from the face mesh:

- yaw: where the nose tip sits between the two cheek contours of the mesh
  (0.5 facing the camera; higher when the citizen turns to their left, as
  seen in the unmirrored camera frame).
- eye openness: the eye aspect ratio (lid gap over eye width) of both
  eyes, divided by the face's own aspect ratio (forehead to chin over cheek
  to cheek), so that a photo tilted away from the camera, which squashes
  eyes and face alike, does not look like a blink.
- a rectangle around the face: the edge of a phone, tablet or printed
  photo held up to the camera, found as a four-sided contour enclosing
  the face and at most a few times its size.

What it stops: a still photo, printed or on a screen (it cannot blink,
and tilting it squashes eyes and face alike), a photo or
screen held up with its edges in view (the rectangle check), a pre-recorded
video that does not follow this session's random order within the time
limits (a turn the wrong way fails at once), a second person in view, and
frames too slow to judge.

What it does not stop: a video replayed on a screen held so close that its
edges are outside the frame, driven live by an attacker who follows the
prompts (or a real-time face puppet); a 3D mask; two photos swapped by hand
(eyes open, eyes closed) with no edge in view; frames injected into the
camera cable or driver; and a present but coerced citizen. Turns alone do
not prove depth: the mesh model infers the nose from appearance, and a flat
photo turned about its vertical axis moved the measured yaw from 0.59 to
0.75 in our check, so the blink and the edge check carry the still-photo
defence. The enclosure (fixed camera distance and lighting) and the
officer's review are the remaining defences.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import cv2
import numpy as np
from numpy.typing import NDArray

from models.faces.tracking import FaceMesher, QuickFaceDetector
from models.images import BgrImage

logger = logging.getLogger(__name__)

# Mesh indices: eye corners and lids (subject's right, then left eye), the
# nose tip and the outer cheek contour on each side.
RIGHT_EYE = (33, 160, 158, 133, 153, 144)
LEFT_EYE = (362, 385, 387, 263, 373, 380)
NOSE_TIP = 1
RIGHT_CHEEK = 234
LEFT_CHEEK = 454
FOREHEAD = 10
CHIN = 152


class Challenge(StrEnum):
    """An action the citizen is asked to perform."""

    TURN_LEFT = "turn_left"
    TURN_RIGHT = "turn_right"
    BLINK = "blink"


@dataclass(frozen=True)
class FrameSignals:
    """What one frame tells about liveness."""

    time: float
    faces: int
    yaw: float | None = None
    eye_openness: float | None = None
    framed: bool = False  # a photo or screen edge surrounds the face


@dataclass(frozen=True)
class LivenessResult:
    """The verdict of one session, with the reasons for a failure."""

    passed: bool
    challenges: tuple[Challenge, ...]
    completed: tuple[Challenge, ...]
    reasons: tuple[str, ...]
    frames: int
    fps: float


@dataclass(frozen=True)
class LivenessLimits:
    """Thresholds of the judge (relative to the citizen's own baseline)."""

    turn: float = 0.12
    neutral: float = 0.06
    blink_closed: float = 0.6
    blink_open: float = 0.85
    baseline_frames: int = 5
    challenge_seconds: float = 6.0
    lost_frames: int = 8
    framed_share: float = 0.3
    min_fps: float = 8.0


def eye_openness(points: NDArray[np.float32]) -> float:
    """Return both eyes' mean aspect ratio over the face's aspect ratio."""
    ratios = []
    for eye in (RIGHT_EYE, LEFT_EYE):
        p = points[list(eye), :2]
        width = float(np.linalg.norm(p[0] - p[3])) or 1e-6
        gap = float(np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4]))
        ratios.append(gap / (2 * width))
    height = float(np.linalg.norm(points[FOREHEAD, :2] - points[CHIN, :2]))
    span = float(np.linalg.norm(points[RIGHT_CHEEK, :2] - points[LEFT_CHEEK, :2]))
    aspect = height / span if span > 1e-6 else 1.0
    return float(np.mean(ratios)) / max(aspect, 1e-6)


def head_yaw(points: NDArray[np.float32]) -> float:
    """Return the nose position between the cheeks (0.5 frontal, up: subject's left)."""
    right, left = points[RIGHT_CHEEK, 0], points[LEFT_CHEEK, 0]
    span = float(left - right)
    if abs(span) < 1e-6:
        return 0.5
    return float((points[NOSE_TIP, 0] - right) / span)


def is_framed(frame: BgrImage, box: tuple[float, float, float, float]) -> bool:
    """Tell whether a four-sided edge (screen, photo) closely surrounds the face."""
    x, y, w, h = box
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    edges = cv2.Canny(cv2.GaussianBlur(grey, (5, 5), 0), 40, 120)
    edges = cv2.dilate(edges, np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    centre = (float(x + w / 2), float(y + h / 2))
    face_area = max(w * h, 1.0)
    frame_area = frame.shape[0] * frame.shape[1]
    for contour in contours:
        area = cv2.contourArea(contour)
        if not 1.5 * face_area <= area <= min(15 * face_area, 0.9 * frame_area):
            continue
        approx = cv2.approxPolyDP(contour, 0.03 * cv2.arcLength(contour, True), True)
        if (
            len(approx) == 4
            and cv2.isContourConvex(approx)
            and cv2.pointPolygonTest(approx, centre, False) > 0
        ):
            return True
    return False


class LivenessSensor:
    """Turn camera frames into :class:`FrameSignals` with BlazeFace and the mesh."""

    def __init__(self, detector: QuickFaceDetector, mesher: FaceMesher) -> None:
        self.detector = detector
        self.mesher = mesher

    def measure(self, frame: BgrImage, time: float) -> FrameSignals:
        """Return the signals of one frame taken at ``time`` (seconds)."""
        faces = self.detector.detect(frame)
        if len(faces) != 1:
            return FrameSignals(time, len(faces))
        mesh = self.mesher.fit(frame, faces[0].box)
        if mesh.presence < 0.5:
            return FrameSignals(time, 0)
        return FrameSignals(
            time,
            1,
            yaw=head_yaw(mesh.points),
            eye_openness=eye_openness(mesh.points),
            framed=is_framed(frame, faces[0].box),
        )


@dataclass
class _Progress:
    baseline_yaw: list[float] = field(default_factory=list)
    baseline_eyes: list[float] = field(default_factory=list)
    index: int = 0
    acted: bool = False
    started: float | None = None
    first_time: float | None = None
    last_time: float = 0.0
    frames: int = 0
    framed: int = 0
    missing_run: int = 0


class LivenessSession:
    """Run one active challenge over a stream of :class:`FrameSignals`."""

    def __init__(
        self,
        challenges: Sequence[Challenge] | None = None,
        limits: LivenessLimits | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if challenges is None:
            challenges = list(Challenge)
            (rng or random.SystemRandom()).shuffle(challenges)
        self.challenges = tuple(challenges)
        self.limits = limits or LivenessLimits()
        self._state = _Progress()
        self._completed: list[Challenge] = []
        self._failures: list[str] = []

    @property
    def prompt(self) -> Challenge | None:
        """Return the action to ask for now (None while calibrating or when done)."""
        if self.finished or len(self._state.baseline_yaw) < self.limits.baseline_frames:
            return None
        return self.challenges[self._state.index]

    @property
    def finished(self) -> bool:
        """Tell whether the session has passed or failed."""
        return bool(self._failures) or len(self._completed) == len(self.challenges)

    def observe(self, signals: FrameSignals) -> None:
        """Take one frame's signals into account."""
        if self.finished:
            return
        state = self._state
        state.frames += 1
        state.first_time = (
            signals.time if state.first_time is None else state.first_time
        )
        state.last_time = signals.time
        state.framed += signals.framed
        if not self._check_presence(signals):
            return
        if signals.yaw is None or signals.eye_openness is None:
            return  # _check_presence counted it as a missing face
        if len(state.baseline_yaw) < self.limits.baseline_frames:
            state.baseline_yaw.append(signals.yaw)
            state.baseline_eyes.append(signals.eye_openness)
            return
        if state.started is None:
            state.started = signals.time
        if signals.time - state.started > self.limits.challenge_seconds:
            challenge = self.challenges[state.index].value
            self._failures.append(f"{challenge} was not done in time")
            return
        self._judge(signals.yaw, signals.eye_openness, signals.time)

    def result(self) -> LivenessResult:
        """Return the verdict (a session cut short fails)."""
        state = self._state
        span = state.last_time - (state.first_time or state.last_time)
        fps = (state.frames - 1) / span if span > 0 else 0.0
        reasons = list(self._failures)
        if state.frames and state.framed / state.frames >= self.limits.framed_share:
            reasons.append("a photo or screen edge was seen around the face")
        if state.frames > 1 and fps < self.limits.min_fps:
            reasons.append(f"frames came at {fps:.1f} per second, too few to judge")
        if len(self._completed) < len(self.challenges) and not self._failures:
            reasons.append("the challenge was not completed")
        if reasons:
            logger.info("liveness failed: %s", "; ".join(reasons))
        return LivenessResult(
            passed=not reasons,
            challenges=self.challenges,
            completed=tuple(self._completed),
            reasons=tuple(reasons),
            frames=state.frames,
            fps=round(fps, 1),
        )

    def _check_presence(self, signals: FrameSignals) -> bool:
        state = self._state
        if signals.faces > 1:
            self._failures.append("more than one face was in view")
            return False
        if signals.faces == 0 or signals.yaw is None or signals.eye_openness is None:
            state.missing_run += 1
            if state.missing_run >= self.limits.lost_frames:
                self._failures.append("the face left the camera's view")
            return False
        state.missing_run = 0
        return True

    def _judge(self, yaw: float, eyes: float, time: float) -> None:
        state, limits = self._state, self.limits
        turn = yaw - float(np.median(state.baseline_yaw))
        openness = eyes / max(float(np.median(state.baseline_eyes)), 1e-6)
        challenge = self.challenges[state.index]
        if not state.acted:
            if challenge is Challenge.BLINK:
                state.acted = (
                    abs(turn) < limits.turn and openness <= limits.blink_closed
                )
                return
            wanted = 1.0 if challenge is Challenge.TURN_LEFT else -1.0
            if turn * wanted >= limits.turn:
                state.acted = True
            elif turn * wanted <= -limits.turn:
                self._failures.append(f"turned the wrong way for {challenge.value}")
            return
        back = (
            openness >= limits.blink_open
            if challenge is Challenge.BLINK
            else abs(turn) <= limits.neutral
        )
        if back:
            self._completed.append(challenge)
            logger.debug("liveness challenge %s done", challenge.value)
            state.index = min(state.index + 1, len(self.challenges) - 1)
            state.acted, state.started = False, time
