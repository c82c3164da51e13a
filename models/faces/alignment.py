"""Warp a face to the 112x112 five-point template the embedding model expects."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from models.images import BgrImage

ALIGNED_SIDE = 112

# Where the eyes, nose tip and mouth corners sit in a 112x112 aligned face
# (the template used to train ArcFace-style embedders such as SFace).
TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def similarity_transform(
    source: NDArray[np.floating], target: NDArray[np.floating]
) -> NDArray[np.float64]:
    """Return the 2x3 least-squares similarity mapping ``source`` onto ``target``.

    This is the closed-form solution (rotation, uniform scale, translation)
    of Umeyama, IEEE PAMI 13(4), 1991.
    """
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    variance = (src_c**2).sum() / len(src)
    scale = float(np.trace(np.diag(singular) @ sign) / variance) if variance else 1.0
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def align_face(image: BgrImage, landmarks: NDArray[np.floating]) -> BgrImage:
    """Return the 112x112 BGR crop of the face with the given five landmarks."""
    matrix = similarity_transform(landmarks, TEMPLATE)
    aligned = cv2.warpAffine(
        image, matrix, (ALIGNED_SIDE, ALIGNED_SIDE), flags=cv2.INTER_LINEAR
    )
    return np.asarray(aligned, dtype=np.uint8)
