"""Verify that a live face matches the ID card portrait.

When an image shows several faces, the largest is used and the count is
returned with the result. On the reference (a card portrait) a second,
smaller face is the card's ghost image; on the probe it is usually someone
standing behind the citizen. Refusing outright would stop honest citizens
in a queue; the kiosk flow decides what to do with ``probe_faces > 1``
(the liveness step asks the citizen to be alone in front of the camera).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from models.errors import FaceNotFoundError
from models.faces.alignment import align_face
from models.faces.detection import Face, FaceDetector
from models.faces.embedding import Embedding, FaceEmbedder, cosine_score
from models.images import BgrImage
from models.manifest import Manifest
from models.runtime import load_model

logger = logging.getLogger(__name__)

MIN_FACE_SIDE = 24


@dataclass(frozen=True)
class FaceEmbedding:
    """The embedding of the largest face in an image, and how many were seen."""

    embedding: Embedding
    face: Face
    face_count: int


@dataclass(frozen=True)
class FaceMatch:
    """The outcome of comparing a reference face with a probe face."""

    score: float
    threshold: float
    match: bool
    reference_faces: int
    probe_faces: int


class FaceVerifier:
    """Detect, align, embed and compare faces against a calibrated threshold."""

    def __init__(
        self,
        detector: FaceDetector,
        embedder: FaceEmbedder,
        threshold: float,
        min_face_side: int = MIN_FACE_SIDE,
    ) -> None:
        self.detector = detector
        self.embedder = embedder
        self.threshold = threshold
        self.min_face_side = min_face_side

    @classmethod
    def from_manifest(
        cls,
        manifest: Manifest,
        model_dir: Path,
        threads: int = 1,
        threshold: float | None = None,
    ) -> FaceVerifier:
        """Load YuNet and SFace (hash-checked) and use the calibrated threshold."""
        detector = FaceDetector(
            load_model(manifest.get_model("yunet"), model_dir, threads)
        )
        embedder = FaceEmbedder(
            load_model(manifest.get_model("sface"), model_dir, threads)
        )
        chosen = (
            manifest.face_verification.threshold if threshold is None else threshold
        )
        return cls(detector, embedder, chosen)

    def embed(self, image: BgrImage) -> FaceEmbedding:
        """Return the embedding of the largest face in ``image``.

        Raises:
            FaceNotFoundError: no face, or only faces too small to compare.
        """
        faces = self.detector.detect(image)
        if not faces:
            raise FaceNotFoundError(
                "no face was found; face the camera in good light, or place the "
                "card with its portrait fully visible"
            )
        largest = faces[0]
        if min(largest.box[2], largest.box[3]) < self.min_face_side:
            raise FaceNotFoundError(
                f"the face is too small ({largest.box[2]:.0f} pixels wide, need "
                f"{self.min_face_side}); come closer to the camera"
            )
        aligned = align_face(image, largest.landmarks)
        return FaceEmbedding(self.embedder.embed(aligned), largest, len(faces))

    def compare(self, reference: FaceEmbedding, probe: FaceEmbedding) -> FaceMatch:
        """Score two embeddings and decide against the threshold."""
        score = cosine_score(reference.embedding, probe.embedding)
        return FaceMatch(
            score=score,
            threshold=self.threshold,
            match=score >= self.threshold,
            reference_faces=reference.face_count,
            probe_faces=probe.face_count,
        )

    def verify(self, reference_image: BgrImage, probe_image: BgrImage) -> FaceMatch:
        """Tell whether the probe shows the person of the reference portrait.

        Raises:
            FaceNotFoundError: either image shows no usable face.
        """
        match = self.compare(self.embed(reference_image), self.embed(probe_image))
        logger.info("face verification: score %.3f, match %s", match.score, match.match)
        return match
