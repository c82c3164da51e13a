"""Calibrate the face verification threshold on an identity-labelled photo set.

Method: every photo is embedded twice, as it is (the live probe) and
degraded like a re-photographed card portrait (the reference, see
:mod:`models.faces.degrade`). Genuine pairs are every two photos of one
person (degraded first, clean second); impostor pairs are every degraded
photo against every clean photo of other people. The threshold is the
lowest score that keeps the impostor accept rate at or under the target;
the true accept rate is the share of genuine pairs at or above it. A photo
where no face is found counts as a false reject in every genuine pair it is
in. To show how much choosing and measuring on the same data flatters the
figure, the people are also split in two folds: the threshold chosen on one
fold is measured on the other.
"""

from __future__ import annotations

import hashlib
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from models.errors import FaceNotFoundError, ImageError, ModelError
from models.faces.degrade import DEFAULT_SCALE, degrade_portrait
from models.faces.verification import FaceVerifier
from models.images import read_image

logger = logging.getLogger(__name__)

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
EMBEDDING_SIZE = 128
# Changes whenever detection or alignment changes what an embedding is; v2:
# YuNet at the image's own size (multiples of 32) instead of a 640x640 canvas.
PIPELINE_VERSION = "yunet-free-size-v2"


@dataclass(frozen=True)
class EmbeddingSet:
    """Clean and degraded embeddings of every photo, with who is in it."""

    person: NDArray[np.int64]  # person index of each photo
    clean: NDArray[np.float32]  # N x 128, zero rows where no face was found
    degraded: NDArray[np.float32]
    clean_found: NDArray[np.bool_]
    degraded_found: NDArray[np.bool_]


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold and what it gives on a set of pairs."""

    threshold: float
    tar: float
    far: float
    genuine_pairs: int
    impostor_pairs: int


@dataclass(frozen=True)
class Calibration:
    """The calibrated threshold, its figures, and how they were measured."""

    far_target: float
    all_pairs: OperatingPoint
    cross_fold_tar: float | None
    cross_fold_far: float | None
    photos: int
    people: int
    clean_missed: int
    degraded_missed: int
    method: str
    reference_scale: float


def list_photos(data_dir: Path) -> list[tuple[str, Path]]:
    """Return (person, photo) for every photo in one-folder-per-person layout."""
    photos = [
        (folder.name, photo)
        for folder in sorted(data_dir.iterdir())
        if folder.is_dir()
        for photo in sorted(folder.iterdir())
        if photo.suffix.lower() in PHOTO_SUFFIXES
    ]
    if not photos:
        raise ModelError(f"{data_dir} holds no person folders with photos")
    return photos


@dataclass(frozen=True)
class EmbeddedSide:
    """The embeddings of every photo as seen on one side of the pairs."""

    embeddings: NDArray[np.float32]  # N x 128, zero rows where no face was found
    found: NDArray[np.bool_]


def person_index(photos: list[tuple[str, Path]]) -> NDArray[np.int64]:
    """Return the person number of every photo."""
    names = {name: i for i, name in enumerate(sorted({p for p, _ in photos}))}
    return np.array([names[person] for person, _ in photos], dtype=np.int64)


def embed_side(
    photos: list[tuple[str, Path]],
    verifier: FaceVerifier,
    reference_scale: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EmbeddedSide:
    """Embed every photo, degraded as a card portrait when a scale is given.

    The degraded side is embedded as the kiosk embeds a card portrait
    (:meth:`FaceVerifier.embed_reference`), mirrored if so configured.
    """
    count = len(photos)
    embeddings = np.zeros((count, EMBEDDING_SIZE), dtype=np.float32)
    found = np.zeros(count, dtype=np.bool_)
    for i, (_, path) in enumerate(photos):
        try:
            image = read_image(path)
        except ImageError as exc:
            logger.warning("skipping %s: %s", path.name, exc)
            continue
        if reference_scale is not None:
            seed = zlib.crc32(path.name.encode())
            image = degrade_portrait(image, seed, scale=reference_scale)
        try:
            embed = (
                verifier.embed if reference_scale is None else verifier.embed_reference
            )
            embeddings[i] = embed(image).embedding
            found[i] = True
        except FaceNotFoundError:
            logger.debug("no face in %s", path.name)
        if progress is not None:
            progress(i + 1, count)
    return EmbeddedSide(embeddings, found)


def combine(
    photos: list[tuple[str, Path]], clean: EmbeddedSide, degraded: EmbeddedSide
) -> EmbeddingSet:
    """Put the probe (clean) and reference (degraded) sides together."""
    return EmbeddingSet(
        person_index(photos),
        clean.embeddings,
        degraded.embeddings,
        clean.found,
        degraded.found,
    )


def cache_key(
    photos: list[tuple[str, Path]],
    model_hashes: list[str],
    reference_scale: float | None,
    mirror_reference: bool = False,
) -> str:
    """Return a short key naming the photos, models and degradation of a side."""
    digest = hashlib.sha256()
    for person, path in photos:
        digest.update(f"{person}/{path.name}\n".encode())
    settings = (
        "clean"
        if reference_scale is None
        else repr((reference_scale, degrade_portrait.__defaults__, mirror_reference))
    )
    for value in [*model_hashes, settings, PIPELINE_VERSION]:
        digest.update(value.encode())
    return digest.hexdigest()[:16]


def save_side(side: EmbeddedSide, path: Path) -> None:
    """Store one side's embeddings as a compressed NumPy archive."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez_compressed(handle, embeddings=side.embeddings, found=side.found)


def load_side(path: Path) -> EmbeddedSide:
    """Read one side's embeddings stored by :func:`save_side`."""
    with np.load(path) as data:
        return EmbeddedSide(data["embeddings"], data["found"])


def cached_side(
    photos: list[tuple[str, Path]],
    reference_scale: float | None,
    cache_dir: Path,
    model_hashes: list[str],
    verifier: Callable[[], FaceVerifier],
    progress: Callable[[int, int], None] | None = None,
    mirror_reference: bool = False,
) -> EmbeddedSide:
    """Return one side's embeddings from the cache, computing them if absent."""
    kind = "clean" if reference_scale is None else "degraded"
    key = cache_key(photos, model_hashes, reference_scale, mirror_reference)
    cache = cache_dir / f"{kind}-{key}.npz"
    if cache.is_file():
        logger.info("using cached embeddings %s", cache)
        return load_side(cache)
    side = embed_side(photos, verifier(), reference_scale, progress)
    save_side(side, cache)
    return side


def calibrate(
    embeddings: EmbeddingSet,
    far_target: float = 1e-4,
    reference_scale: float = DEFAULT_SCALE,
) -> Calibration:
    """Choose the threshold for ``far_target`` and measure it (see module doc)."""
    started = time.perf_counter()
    genuine, impostor = _pair_scores(embeddings, np.ones_like(embeddings.person, bool))
    overall = _operating_point(genuine, impostor, far_target)
    tar, far = _cross_fold(embeddings, far_target)
    logger.info("calibrated in %.1f s", time.perf_counter() - started)
    return Calibration(
        far_target=far_target,
        all_pairs=overall,
        cross_fold_tar=tar,
        cross_fold_far=far,
        photos=len(embeddings.person),
        people=len(np.unique(embeddings.person)),
        clean_missed=int((~embeddings.clean_found).sum()),
        degraded_missed=int((~embeddings.degraded_found).sum()),
        reference_scale=reference_scale,
        method=(
            "SFace cosine on YuNet five-point aligned faces; reference side "
            f"degraded like a re-photographed card portrait (scale "
            f"{reference_scale}, blur sigma 0.9, contrast 0.7, JPEG 45, each "
            "jittered 15%); all genuine "
            "pairs and all cross-person impostor pairs; no-face photos count "
            "as false rejects; cross-fold figures choose on half the people "
            "and measure on the other half"
        ),
    )


def _cross_fold(
    embeddings: EmbeddingSet, far_target: float
) -> tuple[float | None, float | None]:
    fold = (embeddings.person % 2).astype(bool)
    tars, fars = [], []
    for chosen_on in (fold, ~fold):
        genuine, impostor = _pair_scores(embeddings, chosen_on)
        held_genuine, held_impostor = _pair_scores(embeddings, ~chosen_on)
        if not (
            genuine.size and impostor.size and held_genuine.size and held_impostor.size
        ):
            continue  # too few people in a fold to measure anything
        chosen = _operating_point(genuine, impostor, far_target)
        tars.append(float(np.mean(held_genuine >= chosen.threshold)))
        fars.append(float(np.mean(held_impostor >= chosen.threshold)))
    if not tars:
        return None, None
    return float(np.mean(tars)), float(np.mean(fars))


def _pair_scores(
    embeddings: EmbeddingSet, people_mask: NDArray[np.bool_]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    keep = np.nonzero(people_mask)[0]
    person = embeddings.person[keep]
    scores = embeddings.degraded[keep] @ embeddings.clean[keep].T
    both = (
        embeddings.degraded_found[keep][:, None] & embeddings.clean_found[keep][None, :]
    )
    # A photo without a detected face scores below any threshold.
    scores = np.where(both, scores, -2.0).astype(np.float32)
    same = person[:, None] == person[None, :]
    upper = np.triu(np.ones_like(same), k=1)
    genuine = scores[same & upper]
    impostor = scores[~same & both]
    return genuine, impostor


def _operating_point(
    genuine: NDArray[np.float32], impostor: NDArray[np.float32], far_target: float
) -> OperatingPoint:
    if not genuine.size or not impostor.size:
        raise ModelError(
            "calibration needs at least two people and one person with two "
            "photos; give a larger photo set"
        )
    allowed = int(np.floor(far_target * impostor.size))
    ranked = np.sort(impostor)[::-1]
    # Accept when score >= threshold: only the `allowed` highest impostors pass.
    threshold = float(np.nextafter(ranked[allowed], np.float32(np.inf)))
    return OperatingPoint(
        threshold=threshold,
        tar=float(np.mean(genuine >= threshold)),
        far=float(np.mean(impostor >= threshold)),
        genuine_pairs=int(genuine.size),
        impostor_pairs=int(impostor.size),
    )
