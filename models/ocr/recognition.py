"""Read cropped text lines with trueocr's CTC recognition model.

The model reads a line with some of the page above and below it: the crop
is three line-heights of context scaled to 96 pixels high, as an ink map
(1 = ink), right-padded to a multiple of 8 plus 8 empty columns, with each
crop's real width passed alongside. It returns per-step character indices
(0 is the CTC blank), their probabilities and the number of valid steps.
Light text on a dark ground is not inverted; such lines read badly.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from models.ocr.charset import OcrConstants
from models.runtime import InferenceModel

logger = logging.getLogger(__name__)

LINE_HEIGHT = 32
CONTEXT_LINES = 3
WIDTH_STEP = 8
RIGHT_MARGIN = 8
BATCH_LINES = 16
BATCH_WIDTH_RATIO = 1.3


@dataclass(frozen=True)
class LineText:
    """The text of one line and its mean character probability.

    ``characters`` are the characters as decoded, before Unicode
    normalisation and whitespace folding, with ``probabilities`` one each.
    """

    text: str
    confidence: float
    characters: str = ""
    probabilities: tuple[float, ...] = ()


class LineRecognizer:
    """Recognise the text of line boxes in a grey page."""

    def __init__(self, model: InferenceModel, constants: OcrConstants) -> None:
        self.model = model
        self.constants = constants

    def read(
        self, grey: NDArray[np.uint8], boxes: NDArray[np.float32]
    ) -> list[LineText]:
        """Return the text of each box (x0, y0, x1, y1, ...) of ``grey``."""
        crops = [self._crop(grey, box) for box in boxes]
        results: list[LineText | None] = [None] * len(crops)
        for batch in _width_batches([crop.shape[1] for crop in crops]):
            tensor, widths = _pad([crops[i] for i in batch])
            ids, probabilities, lengths = self.model.run(
                {"x": tensor, "widths": widths}
            )
            for row, index in enumerate(batch):
                steps = int(lengths[row])
                results[index] = self._decode(
                    ids[row, :steps], probabilities[row, :steps]
                )
        return [result for result in results if result is not None]

    def _crop(
        self, grey: NDArray[np.uint8], box: NDArray[np.float32]
    ) -> NDArray[np.float32]:
        x0, y0, x1, y1 = (float(v) for v in box[:4])
        height = max(1.0, y1 - y0)
        above = (CONTEXT_LINES * (1 + 2 * self.constants.pad_y) - 1) / 2 * height
        side = self.constants.pad_x * height
        left, top = math.floor(x0 - side), math.floor(y0 - above)
        right, bottom = math.ceil(x1 + side), math.ceil(y1 + above)
        canvas = np.full((bottom - top, right - left), 255, dtype=np.uint8)
        src_top, src_left = max(0, top), max(0, left)
        src_bottom, src_right = min(grey.shape[0], bottom), min(grey.shape[1], right)
        if src_bottom > src_top and src_right > src_left:
            canvas[
                src_top - top : src_bottom - top, src_left - left : src_right - left
            ] = grey[src_top:src_bottom, src_left:src_right]
        out_h = LINE_HEIGHT * CONTEXT_LINES
        out_w = round(canvas.shape[1] * out_h / canvas.shape[0])
        out_w = max(WIDTH_STEP, min(self.constants.max_width, out_w))
        shrink = canvas.shape[0] > out_h
        interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        resized = cv2.resize(canvas, (out_w, out_h), interpolation=interpolation)
        return 1.0 - resized.astype(np.float32) / 255.0

    def _decode(
        self, ids: NDArray[np.int64], probabilities: NDArray[np.float32]
    ) -> LineText:
        previous = np.concatenate(([-1], ids[:-1]))
        keep = (ids != 0) & (ids != previous)
        charset = self.constants.charset
        decoded = [
            (charset[i - 1], float(p))
            for i, p in zip(ids[keep], probabilities[keep], strict=True)
            if 0 < i <= len(charset)
        ]
        characters = "".join(char for char, _ in decoded)
        confidence = float(probabilities[keep].mean()) if keep.any() else 0.0
        return LineText(
            normalized(characters),
            confidence,
            characters,
            tuple(p for _, p in decoded),
        )


def normalized(characters: str) -> str:
    """Return decoded characters as text: NFC, whitespace folded, stripped."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", characters)).strip()


def batch_tensors(
    recognizer: LineRecognizer, grey: NDArray[np.uint8], boxes: NDArray[np.float32]
) -> list[tuple[NDArray[np.float32], NDArray[np.int64]]]:
    """Return the input tensors the recogniser would run for ``boxes``."""
    crops = [recognizer._crop(grey, box) for box in boxes]
    return [
        _pad([crops[i] for i in batch])
        for batch in _width_batches([crop.shape[1] for crop in crops])
    ]


def _width_batches(widths: list[int]) -> list[list[int]]:
    batches: list[list[int]] = []
    for index in sorted(range(len(widths)), key=lambda i: widths[i]):
        if (
            batches
            and len(batches[-1]) < BATCH_LINES
            and widths[index] <= BATCH_WIDTH_RATIO * max(widths[batches[-1][0]], 64)
        ):
            batches[-1].append(index)
        else:
            batches.append([index])
    return batches


def _pad(
    crops: list[NDArray[np.float32]],
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    widest = max(crop.shape[1] for crop in crops)
    width = math.ceil(widest / WIDTH_STEP) * WIDTH_STEP + RIGHT_MARGIN
    tensor = np.zeros((len(crops), 1, crops[0].shape[0], width), dtype=np.float32)
    for i, crop in enumerate(crops):
        tensor[i, 0, :, : crop.shape[1]] = crop
    widths = np.array([crop.shape[1] for crop in crops], dtype=np.int64)
    return tensor, widths
