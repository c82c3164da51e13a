"""Find text lines on a page with trueocr's detection model.

The model reads an ink map (1 = ink) whose sides are multiples of 32 and
returns, at half resolution, a line-core logit and each core pixel's
distance to the line's top and bottom. A line is one connected core
region; its top and bottom are the mean of its pixels' estimates, and its
ends are widened a little because the core stops short of the ink. On
small blurred text (an ID card under the document camera) the core can
stop several characters short of the line's end, so each box's right end
is then followed along the ink of its band (:func:`extend_to_ink`) until a
gap wider than a word space, another box, or the page's edge.
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
INK_LEVEL = 200  # a column with a pixel darker than this (0-255) holds ink
INK_GAP = 0.9  # blank run that ends a line, times the line height
INK_BAND = 0.25  # share of the box height left out at its top and bottom

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
        # Followed to their ink, two pieces of a broken line may now touch.
        boxes = merge_fragments(extend_to_ink(grey, boxes))
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


def extend_to_ink(grey: NDArray[np.uint8], boxes: Boxes) -> Boxes:
    """Move each box's right end along its band's ink, up to a word-wide gap.

    The band is the middle of the box (the strokes every character shares),
    so accents and descenders of neighbouring lines do not count as ink.
    A box never grows into another box on its row.
    """
    extended = boxes.copy()
    width = grey.shape[1]
    for index, box in enumerate(boxes):
        x1, y0, y1 = round(float(box[2])), float(box[1]), float(box[3])
        height = max(1.0, y1 - y0)
        top = int(y0 + INK_BAND * height)
        bottom = max(top + 1, int(y1 - INK_BAND * height))
        limit = min(width, _next_box_left(boxes, index))
        if x1 >= limit:
            continue
        inked = np.asarray((grey[top:bottom, x1:limit] < INK_LEVEL).any(axis=0))
        last = _last_ink_before_gap(inked, max(2, int(INK_GAP * height)))
        if last >= 0:
            end = x1 + last + 1 + END_WIDENING * height
            extended[index, 2] = min(float(limit), end)
    extended[:, 2] = np.minimum(extended[:, 2], width)
    return extended


def _next_box_left(boxes: Boxes, index: int) -> int:
    """Return the left end of the nearest box to the right on the same row."""
    box = boxes[index]
    height = float(box[3] - box[1])
    overlap = np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1])
    right = (boxes[:, 0] > box[2]) & (overlap > FRAGMENT_OVERLAP * height)
    return int(boxes[right, 0].min()) if right.any() else 1 << 30


def _last_ink_before_gap(inked: NDArray[np.bool_], gap: int) -> int:
    """Return the last inked column reached without ``gap`` blank ones (-1: none)."""
    columns = np.flatnonzero(inked)
    # Blank columns before each inked one, counting from the box's end.
    blanks = np.diff(columns, prepend=-1) - 1
    too_wide = np.flatnonzero(blanks >= gap)
    reached = columns if too_wide.size == 0 else columns[: too_wide[0]]
    return int(reached[-1]) if reached.size else -1


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
