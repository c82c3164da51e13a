"""Read a page image into text lines in reading order, with timings.

The image is straightened from the page's corners when they are found and
its light flattened (:mod:`models.ocr.preprocess`); lines are then
detected, recognised (12-digit numbers three times, see
:mod:`models.ocr.numbers`) and corrected with the domain's closed sets
(:mod:`models.ocr.correction`). Reading order is geometric: lines are
grouped into rows where they overlap vertically by half their height, rows
run top to bottom and lines left to right. Multi-column layouts and pages
upside down or turned by 90 degrees are not handled: trueocr's orientation
and order models are fetched but not used, because every generated and
kiosk-framed page is upright and single-column, and they would add latency.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from models.images import BgrImage
from models.manifest import Manifest
from models.ocr.charset import load_constants
from models.ocr.correction import correct_lines
from models.ocr.detection import LineDetector
from models.ocr.numbers import reread_numbers
from models.ocr.preprocess import prepare_page
from models.ocr.recognition import LineRecognizer
from models.runtime import load_model

logger = logging.getLogger(__name__)

ROW_OVERLAP = 0.5


@dataclass(frozen=True)
class OcrLine:
    """One line of text with its box (x0, y0, x1, y1) and confidence."""

    text: str
    box: tuple[float, float, float, float]
    confidence: float
    raw_text: str = ""  # as recognised, before domain correction


@dataclass(frozen=True)
class PageText:
    """The lines of a page in reading order and the milliseconds per step."""

    lines: list[OcrLine]
    timings_ms: dict[str, float] = field(default_factory=dict)
    straightened: bool = False  # the page's corners were found and used

    @property
    def text(self) -> str:
        """Return the page's text, one line per line."""
        return "\n".join(line.text for line in self.lines)


class PageReader:
    """Detect and recognise the text lines of a page image."""

    def __init__(
        self,
        detector: LineDetector,
        recognizer: LineRecognizer,
        straighten: bool = True,
    ) -> None:
        self.detector = detector
        self.recognizer = recognizer
        self.straighten = straighten

    @classmethod
    def from_manifest(
        cls, manifest: Manifest, model_dir: Path, threads: int = 1
    ) -> PageReader:
        """Load the hash-checked OCR models and constants."""
        constants = load_constants(manifest.get_model("ocr_charset"), model_dir)
        detection = load_model(manifest.get_model("ocr_detection"), model_dir, threads)
        recognition = load_model(
            manifest.get_model("ocr_recognition"), model_dir, threads
        )
        return cls(
            LineDetector(detection, constants.det_long_side),
            LineRecognizer(recognition, constants),
        )

    def read(self, image: BgrImage) -> PageText:
        """Return the page's lines in reading order.

        When the page's corners are found the image is straightened first,
        and the boxes are in the straightened page's pixels.
        """
        timings: dict[str, float] = {}
        start = time.perf_counter()
        grey, found = prepare_page(image, self.straighten)
        boxes = self.detector.detect(grey)
        boxes = boxes[reading_order(boxes)]
        detected = time.perf_counter()
        texts = self.recognizer.read(grey, boxes) if len(boxes) else []
        texts = reread_numbers(self.recognizer, grey, boxes, texts)
        done = time.perf_counter()
        timings["detect_ms"] = round((detected - start) * 1000, 1)
        timings["recognize_ms"] = round((done - detected) * 1000, 1)
        corrected = correct_lines([text.text for text in texts])
        timings["correct_ms"] = round((time.perf_counter() - done) * 1000, 1)
        lines = [
            OcrLine(
                fixed,
                (float(b[0]), float(b[1]), float(b[2]), float(b[3])),
                round(text.confidence, 4),
                text.text,
            )
            for fixed, text, b in zip(corrected, texts, boxes, strict=True)
            if text.text
        ]
        return PageText(lines, timings, found)


def reading_order(boxes: NDArray[np.float32]) -> list[int]:
    """Return box indices in rows top to bottom, each row left to right."""
    order = sorted(range(len(boxes)), key=lambda i: float(boxes[i, 1] + boxes[i, 3]))
    rows: list[list[int]] = []
    for index in order:
        top, bottom = float(boxes[index, 1]), float(boxes[index, 3])
        if rows:
            last = rows[-1][0]
            overlap = min(bottom, float(boxes[last, 3])) - max(
                top, float(boxes[last, 1])
            )
            if overlap > ROW_OVERLAP * min(
                bottom - top, float(boxes[last, 3] - boxes[last, 1])
            ):
                rows[-1].append(index)
                continue
        rows.append([index])
    return [i for row in rows for i in sorted(row, key=lambda i: float(boxes[i, 0]))]
