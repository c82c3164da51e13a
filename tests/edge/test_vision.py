"""The face check on the vision models, with real photos (LFW A-K)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from drivers.camera import Frame, Pixels
from drivers.config import DevicesConfig
from edge.config import VisionSection
from edge.errors import IdentityError
from edge.face import SimulatedFaceChecker
from edge.identity import read_id_card
from edge.simulation import SAMPLE_QR, draw_id_card
from edge.vision import (
    ModelFaceChecker,
    VisionModels,
    build_face_checker,
    fused_score,
)
from models.manifest import Manifest
from tests.models.conftest import lfw_dir, manifest, model_dir  # noqa: F401

FPS = 15.0


@pytest.fixture(scope="module")
def models(manifest: Manifest, model_dir: Path) -> VisionModels:  # noqa: F811
    """The kiosk's vision models from the fetched files."""
    section = VisionSection.model_validate({"model_dir": str(model_dir)})
    return VisionModels(section, manifest)


@pytest.fixture(scope="module")
def checker(models: VisionModels) -> ModelFaceChecker:
    """The face check of a kiosk with real cameras."""
    return ModelFaceChecker(models, max_seconds=3.0)


def photo(lfw: Path, person: str, number: int) -> Pixels:
    """Return an LFW photo as RGB pixels."""
    path = lfw / person / f"{person}_{number:04d}.jpg"
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def camera_frame(face: Pixels) -> Pixels:
    """Blend a photo into a 640x480 frame with soft edges, as a camera sees."""
    frame = np.full((480, 640, 3), (100, 110, 120), np.float32)
    mask = np.zeros((250, 250), np.float32)
    cv2.circle(mask, (125, 125), 95, 1.0, -1)
    soft = cv2.GaussianBlur(mask, (0, 0), 12)[:, :, None]
    region = frame[100:350, 200:450]
    frame[100:350, 200:450] = region * (1 - soft) + face * soft
    return frame.astype(np.uint8)


def stream(image: Pixels, count: int | None = 30) -> Iterator[Frame]:
    """Yield ``image`` as camera frames at 15 per second."""
    numbers = range(count) if count is not None else itertools.count()
    for number in numbers:
        yield Frame(image, number, number / FPS)


def test_same_person_is_accepted_and_a_still_photo_is_not_live(
    checker: ModelFaceChecker,
    lfw_dir: Path,  # noqa: F811
) -> None:
    reference = checker.reference(photo(lfw_dir, "Colin_Powell", 1))
    assert reference is not None
    assert reference.signature.shape == (128,)
    probe = camera_frame(photo(lfw_dir, "Colin_Powell", 2))
    outcome = checker.check(reference, stream(probe), "blink")
    assert outcome.face_found
    assert outcome.matched, outcome
    assert outcome.score >= checker.models.verifier().threshold
    # The same picture in every frame never blinks: not a live person.
    assert not outcome.live
    assert outcome.reason == "face_not_live"


def test_different_person_is_refused(
    checker: ModelFaceChecker,
    lfw_dir: Path,  # noqa: F811
) -> None:
    reference = checker.reference(photo(lfw_dir, "Colin_Powell", 1))
    assert reference is not None
    probe = camera_frame(photo(lfw_dir, "Hugo_Chavez", 1))
    outcome = checker.check(reference, stream(probe), "turn_left")
    assert outcome.face_found
    assert not outcome.matched
    assert outcome.score < checker.models.verifier().threshold
    assert outcome.reason == "face_failed"


def test_no_face_gives_a_clear_outcome(
    checker: ModelFaceChecker,
    lfw_dir: Path,  # noqa: F811
) -> None:
    empty = np.full((480, 640, 3), 128, np.uint8)
    assert checker.reference(empty) is None
    reference = checker.reference(photo(lfw_dir, "Colin_Powell", 1))
    assert reference is not None
    outcome = checker.check(reference, stream(empty), "blink")
    assert (outcome.face_found, outcome.matched, outcome.live) == (False,) * 3
    assert outcome.reason == "face_none"


def test_a_try_ends_after_its_time_limit(
    checker: ModelFaceChecker,
    lfw_dir: Path,  # noqa: F811
) -> None:
    reference = checker.reference(photo(lfw_dir, "Colin_Powell", 1))
    assert reference is not None
    frames = stream(camera_frame(photo(lfw_dir, "Colin_Powell", 3)), count=None)
    checker.check(reference, frames, "turn_right")
    left = next(frames)
    # 3 s at 15 frames per second, and not one frame more than it needed.
    assert left.sequence == int(3.0 * FPS) + 1


def test_id_card_with_a_real_portrait_gives_the_reference(
    checker: ModelFaceChecker,
    lfw_dir: Path,  # noqa: F811
) -> None:
    with Image.open(lfw_dir / "Hugo_Chavez" / "Hugo_Chavez_0001.jpg") as face:
        card = np.asarray(draw_id_card(SAMPLE_QR, portrait=face.copy()))
    reading = read_id_card(card, checker)
    assert reading.card.masked_id_number == "001******345"
    same = checker.check(
        reading.reference,
        stream(camera_frame(photo(lfw_dir, "Hugo_Chavez", 3))),
        "blink",
    )
    other = checker.check(
        reading.reference,
        stream(camera_frame(photo(lfw_dir, "Colin_Powell", 1))),
        "blink",
    )
    assert same.matched and not other.matched
    assert same.score > other.score

    blank = np.asarray(draw_id_card(SAMPLE_QR, with_face=False))
    with pytest.raises(IdentityError, match="card_no_face"):
        read_id_card(blank, checker)


def test_configuration_chooses_the_checker(models: VisionModels) -> None:
    def devices(face: str) -> DevicesConfig:
        cameras = {"document": {"backend": "simulated"}, "face": {"backend": face}}
        return DevicesConfig.model_validate({"cameras": cameras})

    simulated, real = devices("simulated"), devices("v4l2")
    auto = VisionSection()
    assert isinstance(build_face_checker(auto, simulated, models), SimulatedFaceChecker)
    assert isinstance(build_face_checker(auto, real, models), ModelFaceChecker)
    forced = VisionSection(face_checker="models")
    assert isinstance(build_face_checker(forced, simulated, models), ModelFaceChecker)
    off = VisionSection(face_checker="simulated")
    assert isinstance(build_face_checker(off, real, models), SimulatedFaceChecker)


def test_frames_are_fused_by_their_mean_not_their_best() -> None:
    reference = np.zeros(128, np.float32)
    reference[0] = 1.0
    close = np.zeros(128, np.float32)
    close[[0, 1]] = (0.8, 0.6)
    far = np.zeros(128, np.float32)
    far[[0, 2]] = (0.2, np.sqrt(1 - 0.04))

    assert fused_score(reference, [close]) == pytest.approx(0.8)
    assert fused_score(reference, [close, close, close]) == pytest.approx(0.8)
    # One lucky frame among poor ones does not carry the decision.
    mixed = fused_score(reference, [close, far, far])
    assert mixed < 0.8
    assert mixed == pytest.approx(1.2 / np.linalg.norm(close + 2 * far))
    assert fused_score(reference, []) == 0.0
