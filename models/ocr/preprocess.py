"""Prepare a page image for the line models: perspective and light.

A camera frame is first straightened from the page's four corners when
they are found (:func:`models.ocr.quality.find_page`), then its light is
flattened: the paper's brightness is estimated on a small copy with a
maximum filter wider than any ink stroke (so only paper remains), smoothed
with a box filter and divided out, which removes falloff and soft shadows
before the models see an ink map. Clean scans pass almost unchanged.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
from numpy.typing import NDArray

from models.images import BgrImage
from models.ocr.quality import find_page, rectify

logger = logging.getLogger(__name__)

GreyImage = NDArray[np.uint8]

WORK_SIDE = 200  # the background is estimated on an image about this small
WINDOW_SHARE = 1 / 12  # filter window, as a share of the short side


def prepare_page(image: BgrImage, straight: bool = True) -> tuple[GreyImage, bool]:
    """Return the grey, straightened, light-flattened page and if it was found."""
    found = False
    if straight:
        image, found = straighten(image)
    grey = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    return flatten_light(grey), found


def straighten(image: BgrImage) -> tuple[BgrImage, bool]:
    """Return the page seen straight on, and whether its corners were found."""
    corners = find_page(image)
    if corners is None:
        return image, False
    return rectify(image, corners), True


def flatten_light(grey: GreyImage) -> GreyImage:
    """Return ``grey`` with the paper's uneven brightness divided out."""
    height, width = grey.shape
    step = max(1, min(height, width) // WORK_SIDE)
    size = (max(1, width // step), max(1, height // step))
    small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    side = max(3, int(min(small.shape) * WINDOW_SHARE) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))
    paper = cv2.blur(cv2.dilate(small, kernel), (side, side))
    paper = cv2.resize(paper, (width, height), interpolation=cv2.INTER_LINEAR)
    flat = cv2.divide(grey, np.maximum(paper, 1), scale=255.0)
    return np.asarray(flat, dtype=np.uint8)
