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
from models.ocr.documents import DOCUMENT_TYPES
from models.ocr.synthetic import (
    SamplePage,
    available_fonts,
    camera_version,
    render_page,
)

logger = logging.getLogger(__name__)

TESSERACT_TIMEOUT_S = 60
FIELDS = ("full_name", "date_of_birth", "id_number", "document_number", "issue_date")
Reading = tuple[str, dict[str, str] | None]


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
    """Return ``count`` clean pages (types and fonts in turn) and camera versions."""
    fonts = available_fonts()
    clean = [
        render_page(seed, fonts[(seed // len(DOCUMENT_TYPES)) % len(fonts)])
        for seed in range(count)
    ]
    camera = [camera_version(page, seed) for seed, page in enumerate(clean)]
    return {"clean": clean, "camera": camera}


def tesseract_reading(image: BgrImage) -> Reading:
    """Return Tesseract's text of ``image`` (no fields) for :func:`evaluate`."""
    return tesseract_text(image), None


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


def evaluate(read: Callable[[BgrImage], Reading], pages: list[SamplePage]) -> Any:
    """Return CER, field exactness and page timings of ``read`` over ``pages``.

    ``read`` returns the page's text and, for a reader that extracts fields,
    the fields it found; a reader without fields (a reference engine) is
    credited with a field whenever the true value appears in its text.
    """
    errors, times = [], []
    hits = {name: 0 for name in FIELDS}
    totals = {name: 0 for name in FIELDS}
    for page in pages:
        start = time.perf_counter()
        text, fields = read(page.image)
        times.append(time.perf_counter() - start)
        errors.append(character_error_rate(text, "\n".join(page.lines)))
        for name in FIELDS:
            truth = page.fields.get(name)
            if truth is None:
                continue
            totals[name] += 1
            if fields is None:
                hits[name] += _shown(name, truth, text)
            else:
                hits[name] += fields.get(name) == truth
    report: dict[str, Any] = {
        "cer": round(float(np.mean(errors)), 4),
        "cer_p90": round(float(np.percentile(errors, 90)), 4),
    }
    for name in FIELDS:
        if totals[name]:
            report[f"{name}_exact"] = round(hits[name] / totals[name], 3)
    report.update(
        {
            "page_median_s": round(float(np.median(times)), 3),
            "page_p95_s": round(float(np.percentile(times, 95)), 3),
            "pages": len(pages),
        }
    )
    return report


def _shown(name: str, truth: str, text: str) -> bool:
    """Tell whether a true field value appears in a reference engine's text."""
    if name in ("date_of_birth", "issue_date"):
        year, month, day = truth.split("-")
        return f"{day}/{month}/{year}" in text or (
            f"ngày {int(day)} tháng {int(month)} năm {year}" in text
        )
    return truth in text
