"""Degrade a face photo as a printed, re-photographed ID card portrait would be.

The kiosk's reference face is the portrait printed on the citizen ID card,
photographed by the document camera: small, softened by print and optics,
low in contrast, and JPEG-compressed. Calibration applies this to one side
of every pair so that the threshold fits that situation, not clean photos.
"""

from __future__ import annotations

import cv2
import numpy as np

from models.images import BgrImage

DEFAULT_SCALE = 0.45
DEFAULT_BLUR_SIGMA = 0.9
DEFAULT_CONTRAST = 0.7
DEFAULT_JPEG_QUALITY = 45


def degrade_portrait(
    image: BgrImage,
    seed: int,
    scale: float = DEFAULT_SCALE,
    blur_sigma: float = DEFAULT_BLUR_SIGMA,
    contrast: float = DEFAULT_CONTRAST,
    jpeg_quality: int = DEFAULT_JPEG_QUALITY,
) -> BgrImage:
    """Return ``image`` shrunk, blurred, flattened and JPEG-coded, reproducibly.

    ``seed`` jitters each setting by up to 15% (and the tint), so the set
    is not degraded in one identical way.
    """
    rng = np.random.default_rng(seed)
    jitter = rng.uniform(0.85, 1.15, size=4)
    height, width = image.shape[:2]
    factor = scale * jitter[0]
    size = (max(8, round(width * factor)), max(8, round(height * factor)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    soft = np.asarray(
        cv2.GaussianBlur(small, (0, 0), blur_sigma * jitter[1]), dtype=np.uint8
    )
    flat = _flatten(soft, contrast * jitter[2], rng.uniform(-8, 8, size=3))
    quality = int(np.clip(jpeg_quality * jitter[3], 10, 95))
    ok, encoded = cv2.imencode(".jpg", flat, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        return flat
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    return np.asarray(decoded, dtype=np.uint8)


def _flatten(image: BgrImage, contrast: float, tint: np.ndarray) -> BgrImage:
    pixels = image.astype(np.float32)
    mean = pixels.mean(axis=(0, 1), keepdims=True)
    flattened = (pixels - mean) * contrast + mean + 10.0 + tint
    return np.asarray(np.clip(flattened, 0, 255), dtype=np.uint8)
