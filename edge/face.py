"""Compare the live face with the ID card's portrait, and check liveness.

:class:`FaceChecker` is the seam. :class:`edge.vision.ModelFaceChecker`
runs the vision package's face models (``models.faces``) on real cameras.
:class:`SimulatedFaceChecker` judges the simulated camera's drawn cartoon
faces by colour and movement: it is for development and tests on simulated
cameras only and cannot tell real people apart. ``[vision] face_checker``
chooses between them (:func:`edge.vision.build_face_checker`).

A checker reads the face camera's frames as a stream and stops when it has
seen enough, so a liveness challenge can take the few seconds it needs.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from drivers.camera import Frame, Pixels

logger = logging.getLogger(__name__)

CHALLENGES = ("turn_left", "turn_right", "blink")


@dataclass(frozen=True)
class FaceReference:
    """What the portrait gave: kept in memory only, never stored or sent."""

    signature: NDArray[np.float64]
    faces: int = 1  # faces seen on the portrait (a card's ghost image is a second)


@dataclass(frozen=True)
class FaceOutcome:
    """The result of one try: only this leaves the checker."""

    face_found: bool
    matched: bool
    live: bool
    score: float
    reason: str = ""  # a code for the screen when the try failed


class FaceChecker(Protocol):
    """Find a face on a portrait and compare live frames with it."""

    def reference(self, portrait: Pixels) -> FaceReference | None:
        """Return the portrait's face, or None when it shows no face."""

    def check(
        self, reference: FaceReference, frames: Iterable[Frame], challenge: str
    ) -> FaceOutcome:
        """Compare live ``frames`` with ``reference`` and judge the challenge.

        The checker reads only as many frames as it needs.
        """


def pick_challenge(rng: random.Random | None = None) -> str:
    """Return a random liveness challenge."""
    return (rng or random.SystemRandom()).choice(CHALLENGES)


def _skin_mask(image: Pixels) -> NDArray[np.bool_]:
    red = image[:, :, 0].astype(np.int16)
    green = image[:, :, 1].astype(np.int16)
    blue = image[:, :, 2].astype(np.int16)
    return (red > 95) & (red > green + 10) & (green > blue) & (red - blue > 40)


class SimulatedFaceChecker:
    """Judge drawn faces: skin-coloured area, its mean colour, its movement."""

    def __init__(
        self, min_share: float = 0.03, threshold: float = 0.9, frames: int = 7
    ) -> None:
        self.min_share = min_share
        self.threshold = threshold
        self.frames = frames

    def reference(self, portrait: Pixels) -> FaceReference | None:
        """Return the mean skin colour, or None when too little skin shows."""
        signature = self._signature(portrait)
        return None if signature is None else FaceReference(signature)

    def check(
        self, reference: FaceReference, frames: Iterable[Frame], challenge: str
    ) -> FaceOutcome:
        """Match by skin colour; call it live when the face moved."""
        images = [frame.image for frame in islice(frames, self.frames)]
        signatures = [self._signature(image) for image in images]
        found = [s for s in signatures if s is not None]
        if not found:
            return FaceOutcome(False, False, False, 0.0, "face_none")
        distance = float(np.linalg.norm(np.mean(found, axis=0) - reference.signature))
        score = max(0.0, 1.0 - distance / 100.0)
        centres = [self._centre(image) for image in images]
        moved = len(found) >= 2 and float(np.ptp(np.array(centres)[:, 0])) > 4.0
        matched = score >= self.threshold
        logger.debug("simulated face check: matched %s, live %s", matched, moved)
        reason = "" if matched and moved else "face_failed"
        return FaceOutcome(True, matched, moved, round(score, 3), reason)

    def _signature(self, image: Pixels) -> NDArray[np.float64] | None:
        mask = _skin_mask(image)
        if mask.mean() < self.min_share:
            return None
        return np.asarray(image[mask].mean(axis=0), dtype=np.float64)

    def _centre(self, image: Pixels) -> tuple[float, float]:
        ys, xs = np.nonzero(_skin_mask(image))
        if len(xs) == 0:
            return (0.0, 0.0)
        return (float(xs.mean()), float(ys.mean()))
