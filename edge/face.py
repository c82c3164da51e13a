"""Compare the live face with the ID card's portrait, and check liveness.

:class:`FaceChecker` is the seam. The vision package's face models
(``models.faces``) need model files fetched by ``kiosk models fetch``; an
adapter for them is not written yet, so the agent uses
:class:`SimulatedFaceChecker`, which judges the simulated camera's drawn
faces by colour and movement. It is for development and tests only: it
cannot tell real people apart.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from drivers.camera import Pixels

logger = logging.getLogger(__name__)

CHALLENGES = ("turn_left", "turn_right", "blink")


@dataclass(frozen=True)
class FaceReference:
    """What the portrait gave: kept in memory only, never stored or sent."""

    signature: NDArray[np.float64]


@dataclass(frozen=True)
class FaceOutcome:
    """The result of one try: only this leaves the checker."""

    face_found: bool
    matched: bool
    live: bool
    score: float


class FaceChecker(Protocol):
    """Find a face on a portrait and compare live frames with it."""

    def reference(self, portrait: Pixels) -> FaceReference | None:
        """Return the portrait's face, or None when it shows no face."""

    def check(
        self, reference: FaceReference, frames: Sequence[Pixels], challenge: str
    ) -> FaceOutcome:
        """Compare ``frames`` with ``reference`` and judge the challenge."""


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

    def __init__(self, min_share: float = 0.03, threshold: float = 0.9) -> None:
        self.min_share = min_share
        self.threshold = threshold

    def reference(self, portrait: Pixels) -> FaceReference | None:
        """Return the mean skin colour, or None when too little skin shows."""
        signature = self._signature(portrait)
        return None if signature is None else FaceReference(signature)

    def check(
        self, reference: FaceReference, frames: Sequence[Pixels], challenge: str
    ) -> FaceOutcome:
        """Match by skin colour; call it live when the face moved."""
        signatures = [self._signature(frame) for frame in frames]
        found = [s for s in signatures if s is not None]
        if not found:
            return FaceOutcome(False, False, False, 0.0)
        distance = float(np.linalg.norm(np.mean(found, axis=0) - reference.signature))
        score = max(0.0, 1.0 - distance / 100.0)
        centres = [self._centre(frame) for frame in frames]
        moved = len(found) >= 2 and float(np.ptp(np.array(centres)[:, 0])) > 4.0
        matched = score >= self.threshold
        logger.debug("simulated face check: matched %s, live %s", matched, moved)
        return FaceOutcome(True, matched, moved, round(score, 3))

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
