"""Find text lines on a page with trueocr's detection model.

The model reads an ink map (1 = ink) whose sides are multiples of 32 and
returns, at half resolution, a line-core logit and each core pixel's
distance to the line's top and bottom. A line is one connected core
region; its top and bottom are the mean of its pixels' estimates, and its
ends are widened a little because the core stops short of the ink.
"""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np
from numpy.typing import NDArray

from models.runtime import InferenceModel

logger = logging.getLogger(__name__)

SIDE_MULTIPLE = 32
OUTPUT_STRIDE = 2
CORE_THRESHOLD = 0.5
END_WIDENING = 0.15  # times the line height, at each end
FRAGMENT_OVERLAP = 0.3  # vertical overlap, share of the smaller height
FRAGMENT_GAP = 1.0  # horizontal gap, times the line height

Boxes = NDArray[np.float32]  # N x 5: x0, y0, x1, y1, score


class LineDetector:
    """Detect text line boxes in a grey page image."""

    def __init__(self, model: InferenceModel, long_side: int) -> None:
        self.model = model
        self.long_side = long_side

    def detect(self, grey: NDArray[np.uint8]) -> Boxes:
        """Return line boxes (x0, y0, x1, y1, score) in ``grey``'s pixels."""
        ink, scale = _ink_input(grey, self.long_side)
        (maps,) = self.model.run({"x": ink[None, None]})
        boxes = merge_fragments(_boxes_from_maps(maps[0]))
        boxes[:, :4] /= scale
        height, width = grey.shape
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        logger.debug("detected %s text lines", len(boxes))
        return boxes


def _ink_input(
    grey: NDArray[np.uint8], long_side: int
) -> tuple[NDArray[np.float32], float]:
    height, width = grey.shape
    scale = long_side / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(grey, (new_w, new_h), interpolation=interpolation)
    padded_h = math.ceil(new_h / SIDE_MULTIPLE) * SIDE_MULTIPLE
    padded_w = math.ceil(new_w / SIDE_MULTIPLE) * SIDE_MULTIPLE
    ink = np.zeros((padded_h, padded_w), dtype=np.float32)
    ink[:new_h, :new_w] = 1.0 - resized.astype(np.float32) / 255.0
    return ink, scale


def _boxes_from_maps(maps: NDArray[np.float32]) -> Boxes:
    core = 1.0 / (1.0 + np.exp(-maps[0].astype(np.float64)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        (core > CORE_THRESHOLD).astype(np.uint8), connectivity=4
    )
    if count <= 1:
        return np.zeros((0, 5), dtype=np.float32)
    rows, _cols = np.nonzero(labels)
    label = labels[rows, _cols]
    centre_y = (rows.astype(np.float64) + 0.5) * OUTPUT_STRIDE
    tops = centre_y - maps[1][rows, _cols]
    bottoms = centre_y + maps[2][rows, _cols]
    pixels = np.maximum(np.bincount(label, minlength=count), 1)
    top = np.bincount(label, weights=tops, minlength=count) / pixels
    bottom = np.bincount(label, weights=bottoms, minlength=count) / pixels
    score = np.bincount(label, weights=core[rows, _cols], minlength=count) / pixels
    boxes = []
    for i in range(1, count):
        line_height = max(1.0, bottom[i] - top[i])
        widen = END_WIDENING * line_height
        left = stats[i, cv2.CC_STAT_LEFT] * OUTPUT_STRIDE - widen
        right = (
            stats[i, cv2.CC_STAT_LEFT] + stats[i, cv2.CC_STAT_WIDTH]
        ) * OUTPUT_STRIDE
        boxes.append((left, top[i], right + widen, bottom[i], score[i]))
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 5)


def merge_fragments(boxes: Boxes) -> Boxes:
    """Join pieces of one line that the core map broke apart.

    Small or blurred text sometimes leaves a gap in the line core; two boxes
    that overlap vertically and nearly touch end to end are one line.
    """
    merged = [list(map(float, box)) for box in boxes[np.argsort(boxes[:, 0])]]
    changed = True
    while changed:
        changed = False
        for i, first in enumerate(merged):
            for j in range(i + 1, len(merged)):
                if _continues(first, merged[j]):
                    merged[i] = _union(first, merged.pop(j))
                    changed = True
                    break
            if changed:
                break
    return np.asarray(merged, dtype=np.float32).reshape(-1, 5)


def _continues(left: list[float], right: list[float]) -> bool:
    height = min(left[3] - left[1], right[3] - right[1])
    overlap = min(left[3], right[3]) - max(left[1], right[1])
    gap = right[0] - left[2]
    return overlap > FRAGMENT_OVERLAP * height and -height < gap < FRAGMENT_GAP * height


def _union(left: list[float], right: list[float]) -> list[float]:
    width_l, width_r = left[2] - left[0], right[2] - right[0]
    score = (left[4] * width_l + right[4] * width_r) / max(1e-6, width_l + width_r)
    return [
        min(left[0], right[0]),
        min(left[1], right[1]),
        max(left[2], right[2]),
        max(left[3], right[3]),
        score,
    ]
