"""Tests of threshold calibration, on synthetic and real embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.errors import ModelError
from models.faces import calibration
from models.faces.degrade import degrade_portrait
from models.faces.verification import FaceVerifier
from models.images import read_image
from models.manifest import Manifest


def _synthetic(
    people: int = 120, photos: int = 4, spread: float = 0.5
) -> calibration.EmbeddingSet:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(people, 128))
    person = np.repeat(np.arange(people), photos)

    def side() -> np.ndarray:
        vectors = centres[person] + spread * rng.normal(size=(len(person), 128))
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.asarray(unit, dtype=np.float32)

    found = np.ones(len(person), bool)
    return calibration.EmbeddingSet(person, side(), side(), found, found.copy())


def test_threshold_keeps_false_accepts_at_the_target() -> None:
    result = calibration.calibrate(_synthetic(), far_target=1e-3)
    point = result.all_pairs
    assert point.far <= 1e-3
    assert point.genuine_pairs == 120 * 6
    assert point.impostor_pairs == 480 * 480 - 120 * 16
    assert point.tar > 0.95
    assert result.cross_fold_far is not None
    assert 0 < result.cross_fold_far < 5e-3


def test_one_person_cannot_be_calibrated() -> None:
    embeddings = _synthetic(people=1)
    with pytest.raises(ModelError, match="at least two people"):
        calibration.calibrate(embeddings)


def test_a_missed_face_counts_as_false_rejects() -> None:
    embeddings = _synthetic()
    embeddings.degraded_found[0] = False
    embeddings.clean_found[1] = False
    point = calibration.calibrate(embeddings, far_target=1e-3).all_pairs
    clean = calibration.calibrate(_synthetic(), far_target=1e-3).all_pairs
    assert point.genuine_pairs == clean.genuine_pairs
    assert point.tar <= clean.tar - 2 / clean.genuine_pairs + 1e-9


def test_degradation_is_smaller_and_reproducible(lfw_dir: Path) -> None:
    photo = read_image(lfw_dir / "Colin_Powell" / "Colin_Powell_0001.jpg")
    first = degrade_portrait(photo, seed=5, scale=0.5)
    assert first.shape[0] < photo.shape[0] * 0.6
    assert np.array_equal(first, degrade_portrait(photo, seed=5, scale=0.5))
    assert first.std() < photo.std()


def test_sides_are_cached(
    manifest: Manifest, model_dir: Path, lfw_dir: Path, tmp_path: Path
) -> None:
    people = [lfw_dir / "Colin_Powell", lfw_dir / "Hugo_Chavez"]
    photos = [(p.name, f) for p in people for f in sorted(p.iterdir())[:2]]
    calls = []

    def verifier() -> FaceVerifier:
        calls.append(1)
        return FaceVerifier.from_manifest(manifest, model_dir)

    hashes = ["a", "b"]
    first = calibration.cached_side(photos, 0.8, tmp_path, hashes, verifier)
    again = calibration.cached_side(photos, 0.8, tmp_path, hashes, verifier)
    assert len(calls) == 1
    assert np.array_equal(first.embeddings, again.embeddings)
    assert first.found.all()
    sides = calibration.combine(photos, first, first)
    assert list(sides.person) == [0, 0, 1, 1]
    with pytest.raises(ModelError, match="no person folders"):
        calibration.list_photos(tmp_path)
