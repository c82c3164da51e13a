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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.errors import FaceNotFoundError
from models.faces.alignment import align_face
from models.faces.detection import INPUT_SIDE, Face, FaceDetector
from models.faces.embedding import Embedding, FaceEmbedder, cosine_score
from models.images import BgrImage
from models.manifest import Manifest
from models.runtime import load_model
from models.variants import resolve_variant

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
        mirror_reference: bool = False,
    ) -> None:
        self.detector = detector
        self.embedder = embedder
        self.threshold = threshold
        self.min_face_side = min_face_side
        self.mirror_reference = mirror_reference

    @classmethod
    def from_manifest(
        cls,
        manifest: Manifest,
        model_dir: Path,
        threads: int = 1,
        threshold: float | None = None,
        variants: Mapping[str, str] | None = None,
    ) -> FaceVerifier:
        """Load YuNet and SFace (hash-checked) and use the calibrated threshold.

        ``variants`` maps a model name to its precision (``fp32`` or
        ``int8``), as ``ModelsSection.variants`` configures it.
        """
        chosen_variants = variants or {}
        yunet, yunet_dir = resolve_variant(
            manifest.get_model("yunet"), model_dir, chosen_variants.get("yunet", "fp32")
        )
        sface, sface_dir = resolve_variant(
            manifest.get_model("sface"), model_dir, chosen_variants.get("sface", "fp32")
        )
        detector = FaceDetector(
            load_model(yunet, yunet_dir, threads, free_spatial_dims=True)
        )
        embedder = FaceEmbedder(load_model(sface, sface_dir, threads))
        chosen = (
            manifest.face_verification.threshold if threshold is None else threshold
        )
        mirror = manifest.face_verification.mirror_reference
        return cls(detector, embedder, chosen, mirror_reference=mirror)

    def embed(self, image: BgrImage, mirrored: bool = False) -> FaceEmbedding:
        """Return the embedding of the largest face in ``image``.

        ``mirrored`` averages the embeddings of the aligned face and of its
        mirror image (twice the embedding time), which steadies the
        embedding of a low-resolution card portrait.

        Raises:
            FaceNotFoundError: no face, or only faces too small to compare.
        """
        faces = self.detector.detect(image)
        if self._worth_a_closer_look(image, faces):
            faces = self.detector.detect(image, max_side=INPUT_SIDE)
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
        vector = self.embedder.embed(aligned)
        if mirrored:
            both = vector + self.embedder.embed(np.ascontiguousarray(aligned[:, ::-1]))
            vector = (both / max(float(np.linalg.norm(both)), 1e-12)).astype(np.float32)
        return FaceEmbedding(vector, largest, len(faces))

    def embed_reference(self, image: BgrImage) -> FaceEmbedding:
        """Return the embedding of the card portrait, mirrored if so calibrated."""
        return self.embed(image, mirrored=self.mirror_reference)

    def _worth_a_closer_look(self, image: BgrImage, faces: list[Face]) -> bool:
        """Tell whether a small or missing face might show at full detail."""
        if not self.detector.dynamic or max(image.shape[:2]) <= self.detector.max_side:
            return False
        return not faces or min(faces[0].box[2:]) < 2 * self.min_face_side

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
        match = self.compare(
            self.embed_reference(reference_image), self.embed(probe_image)
        )
        logger.info("face verification: score %.3f, match %s", match.score, match.match)
        return match
