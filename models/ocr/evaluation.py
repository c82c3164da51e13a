"""Measure OCR accuracy and speed on generated pages, ours and Tesseract's."""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.images import BgrImage
from models.ocr.synthetic import (
    SamplePage,
    available_fonts,
    camera_version,
    render_page,
)

logger = logging.getLogger(__name__)

TESSERACT_TIMEOUT_S = 60
NAME_LINE, NUMBER_LINE = 3, 5


def character_error_rate(read: str, truth: str) -> float:
    """Return the edit distance between the texts over the truth's length."""
    row = list(range(len(truth) + 1))
    for i, got in enumerate(read, start=1):
        previous, row[0] = row[:], i
        for j, want in enumerate(truth, start=1):
            row[j] = min(
                previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (got != want)
            )
    return row[-1] / max(1, len(truth))


def sample_pages(count: int) -> dict[str, list[SamplePage]]:
    """Return ``count`` clean pages over the installed fonts and camera versions."""
    fonts = available_fonts()
    clean = [render_page(seed, fonts[seed % len(fonts)]) for seed in range(count)]
    camera = [camera_version(page, seed) for seed, page in enumerate(clean)]
    return {"clean": clean, "camera": camera}


def tesseract_text(image: BgrImage) -> str:
    """Return Tesseract 5's ``vie`` reading of ``image`` on one thread."""
    with tempfile.TemporaryDirectory(prefix="kiosk-tess-") as scratch:
        path = Path(scratch) / "page.png"
        cv2.imwrite(str(path), image)
        environment = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        result = subprocess.run(
            ["tesseract", str(path), "stdout", "-l", "vie"],
            capture_output=True,
            text=True,
            timeout=TESSERACT_TIMEOUT_S,
            env=environment,
            check=False,
        )
    lines = [line.strip() for line in result.stdout.splitlines()]
    return "\n".join(line for line in lines if line)


def evaluate(
    read: Callable[[BgrImage], str], pages: list[SamplePage]
) -> dict[str, Any]:
    """Return CER, field exactness and page timings of ``read`` over ``pages``."""
    errors, times, numbers, names = [], [], 0, 0
    for page in pages:
        start = time.perf_counter()
        text = read(page.image)
        times.append(time.perf_counter() - start)
        errors.append(character_error_rate(text, "\n".join(page.lines)))
        numbers += page.lines[NUMBER_LINE].rsplit(" ", 1)[-1] in text
        names += page.lines[NAME_LINE].split(": ", 1)[-1] in text
    return {
        "cer": round(float(np.mean(errors)), 4),
        "id_number_exact": round(numbers / len(pages), 3),
        "full_name_exact": round(names / len(pages), 3),
        "page_median_s": round(float(np.median(times)), 3),
        "page_p95_s": round(float(np.percentile(times, 95)), 3),
        "pages": len(pages),
    }
