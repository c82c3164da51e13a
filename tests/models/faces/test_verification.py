"""Tests of face detection, alignment, embedding and verification."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from models.errors import FaceNotFoundError, ImageError
from models.faces.alignment import TEMPLATE, align_face, similarity_transform
from models.faces.degrade import degrade_portrait
from models.faces.detection import FaceDetector
from models.faces.verification import FaceVerifier
from models.images import as_bgr, decode_image, read_image
from models.manifest import Manifest


@pytest.fixture(scope="module")
def verifier(manifest: Manifest, model_dir: Path) -> FaceVerifier:
    """YuNet and SFace on one thread with the manifest's threshold."""
    return FaceVerifier.from_manifest(manifest, model_dir, threads=1)


def _photo(lfw_dir: Path, person: str, number: int) -> np.ndarray:
    return read_image(lfw_dir / person / f"{person}_{number:04d}.jpg")


def test_detection_matches_opencv_reference(
    verifier: FaceVerifier, lfw_dir: Path, model_dir: Path, manifest: Manifest
) -> None:
    image = _photo(lfw_dir, "Colin_Powell", 1)
    assert verifier.detector.dynamic
    ours = verifier.detector.detect(image)[0]
    # The 250x250 photo is detected on a 256x256 canvas (multiples of 32).
    canvas = np.zeros((256, 256, 3), np.uint8)
    canvas[: image.shape[0], : image.shape[1]] = image
    path = str(model_dir / manifest.get_model("yunet").file)
    reference = cv2.FaceDetectorYN.create(path, "", (256, 256), 0.6, 0.3)
    _, found = reference.detect(canvas)
    assert np.allclose(ours.box, found[0][:4], atol=0.5)
    assert np.allclose(ours.landmarks.reshape(-1), found[0][4:14], atol=0.5)


def test_camera_frames_are_detected_at_320_pixels(
    verifier: FaceVerifier, lfw_dir: Path
) -> None:
    photo = _photo(lfw_dir, "Colin_Powell", 1)
    frame = np.full((480, 640, 3), 110, np.uint8)
    frame[100:350, 200:450] = photo
    small = verifier.detector.detect(frame)
    full = verifier.detector.detect(frame, max_side=640)
    assert len(small) == len(full) == 1
    # Half the resolution: the box and landmarks move by a few pixels.
    assert np.allclose(small[0].box, full[0].box, atol=8)
    assert np.abs(small[0].landmarks - full[0].landmarks).max() < 6


def test_same_person_matches(verifier: FaceVerifier, lfw_dir: Path) -> None:
    match = verifier.verify(
        _photo(lfw_dir, "Colin_Powell", 1), _photo(lfw_dir, "Colin_Powell", 2)
    )
    assert match.match
    assert match.score > match.threshold + 0.1


def test_different_people_do_not_match(verifier: FaceVerifier, lfw_dir: Path) -> None:
    match = verifier.verify(
        _photo(lfw_dir, "Colin_Powell", 1), _photo(lfw_dir, "Hugo_Chavez", 1)
    )
    assert not match.match
    assert match.score < match.threshold - 0.1


def test_degraded_card_portrait_still_scores_above_strangers(
    verifier: FaceVerifier, lfw_dir: Path
) -> None:
    card = degrade_portrait(_photo(lfw_dir, "Hugo_Chavez", 1), seed=7)
    assert card.shape[0] < 150
    same = verifier.verify(card, _photo(lfw_dir, "Hugo_Chavez", 3))
    other = verifier.verify(card, _photo(lfw_dir, "Colin_Powell", 1))
    assert same.score > other.score + 0.2


def test_no_face_is_reported(verifier: FaceVerifier) -> None:
    wall = np.full((240, 320, 3), 128, np.uint8)
    with pytest.raises(FaceNotFoundError, match="no face"):
        verifier.embed(wall)


def test_several_faces_use_the_largest_and_count_them(
    verifier: FaceVerifier, lfw_dir: Path
) -> None:
    large = _photo(lfw_dir, "Colin_Powell", 1)
    small = cv2.resize(_photo(lfw_dir, "Hugo_Chavez", 1), (125, 125))
    canvas = np.full((260, 420, 3), 200, np.uint8)
    canvas[5:255, 5:255] = large
    canvas[60:185, 285:410] = small
    both = verifier.embed(canvas)
    alone = verifier.embed(large)
    assert both.face_count == 2
    assert float(both.embedding @ alone.embedding) > 0.95


def test_tiny_face_is_refused(verifier: FaceVerifier, lfw_dir: Path) -> None:
    tiny = np.asarray(
        cv2.resize(_photo(lfw_dir, "Colin_Powell", 1), (48, 48)), np.uint8
    )
    with pytest.raises(FaceNotFoundError):
        verifier.embed(tiny)


def test_alignment_recovers_a_known_similarity() -> None:
    angle, scale = np.deg2rad(20), 1.7
    rotation = scale * np.array(
        [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    )
    moved = TEMPLATE @ rotation.T + [30.0, -12.0]
    matrix = similarity_transform(moved, TEMPLATE)
    back = moved @ matrix[:, :2].T + matrix[:, 2]
    assert np.allclose(back, TEMPLATE, atol=1e-6)
    aligned = align_face(np.zeros((200, 200, 3), np.uint8), moved)
    assert aligned.shape == (112, 112, 3)


def test_empty_and_corrupt_bytes_are_refused() -> None:
    with pytest.raises(ImageError, match="empty"):
        decode_image(b"")
    with pytest.raises(ImageError, match="not a readable image"):
        decode_image(b"\xff\xd8\xff\xe0 truncated jpeg")


def test_huge_and_tiny_images_are_refused_before_decoding() -> None:
    buffer = io.BytesIO()
    Image.new("1", (9000, 5000)).save(buffer, "PNG")
    with pytest.raises(ImageError, match="more than"):
        decode_image(buffer.getvalue())
    buffer = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buffer, "PNG")
    with pytest.raises(ImageError, match="too small"):
        decode_image(buffer.getvalue())


def test_grey_and_alpha_frames_become_bgr() -> None:
    assert as_bgr(np.zeros((64, 64), np.uint8)).shape == (64, 64, 3)
    assert as_bgr(np.zeros((64, 64, 4), np.uint8)).shape == (64, 64, 3)
    with pytest.raises(ImageError, match="float32"):
        as_bgr(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ImageError, match="shape"):
        as_bgr(np.zeros((64, 64, 2), np.uint8))


def test_detector_handles_wide_frames(verifier: FaceVerifier, lfw_dir: Path) -> None:
    frame = np.full((720, 1280, 3), 90, np.uint8)
    frame[200:450, 500:750] = _photo(lfw_dir, "Colin_Powell", 1)
    faces = FaceDetector(verifier.detector.model).detect(frame)
    assert len(faces) == 1
    x, y, w, _h = faces[0].box
    assert 500 < x < 650 and 200 < y < 350 and w > 60
