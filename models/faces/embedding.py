"""Turn an aligned face into a unit-length SFace embedding; compare two."""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from models.errors import InferenceError
from models.images import BgrImage
from models.runtime import InferenceModel

logger = logging.getLogger(__name__)

Embedding = NDArray[np.float32]


class FaceEmbedder:
    """Compute embeddings of 112x112 aligned BGR faces with SFace."""

    def __init__(self, model: InferenceModel) -> None:
        self.model = model

    def embed(self, aligned: BgrImage) -> Embedding:
        """Return the L2-normalised 128-value embedding of one aligned face.

        Raises:
            InferenceError: the model returned a zero or non-finite vector.
        """
        rgb = aligned[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32)
        (vector,) = self.model.run({"data": rgb})
        flat = vector.reshape(-1).astype(np.float32)
        norm = float(np.linalg.norm(flat))
        if not np.isfinite(norm) or norm == 0.0:
            raise InferenceError("the face embedding is empty; the image is unusable")
        return flat / norm


def cosine_score(first: Embedding, second: Embedding) -> float:
    """Return the cosine similarity of two unit-length embeddings (-1 to 1)."""
    return float(np.clip(np.dot(first, second), -1.0, 1.0))
