"""Judge a document page from the camera and keep it as a JPEG.

The checks are the vision package's (``models.ocr.quality``): page found,
corners inside the frame, sharpness and glare. Each finding has a code the
screen turns into a short sentence in the citizen's language.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np

from drivers.camera import Pixels, encode_jpeg
from models.ocr.quality import assess_capture

logger = logging.getLogger(__name__)

KNOWN_FINDINGS = (
    "no_document",
    "corner_outside",
    "blurred",
    "glare",
    "low_resolution",
)


@dataclass(frozen=True)
class PageShot:
    """A captured page: JPEG bytes, their digest and the quality findings."""

    jpeg: bytes
    sha256: str
    findings: list[str]


def assess(image: Pixels) -> list[str]:
    """Return finding codes for a document frame (empty when it is good)."""
    bgr = np.ascontiguousarray(image[:, :, ::-1])
    codes = [finding.code for finding in assess_capture(bgr)]
    return [code if code in KNOWN_FINDINGS else "no_document" for code in codes]


def shoot_page(image: Pixels) -> PageShot:
    """Judge ``image`` and encode it as the page to send."""
    findings = assess(image)
    jpeg = encode_jpeg(image, quality=85)
    return PageShot(jpeg, hashlib.sha256(jpeg).hexdigest(), findings)
