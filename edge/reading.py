"""Read a captured page with the OCR models: its type and fields, each scored.

A page whose lines are few or read with low confidence is *unreadable*: the
screen asks the citizen to retake it and says that staff will check it
otherwise. The ID number read from a page is kept masked; the full number
is used only in memory, to compare the page with the citizen's ID card.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from drivers.camera import Pixels
from edge.errors import VisionError
from models.errors import ModelError
from models.id_card import IdCard, mask
from models.ocr.fields import classify, cross_check, extract_fields
from models.ocr.page import PageReader

logger = logging.getLogger(__name__)

MIN_LINES = 3


@dataclass(frozen=True)
class FieldReading:
    """One field read from a page and its confidence (0-1)."""

    value: str
    confidence: float


@dataclass(frozen=True)
class PageReading:
    """What the kiosk read on one page."""

    readable: bool
    document_type: str | None = None
    confidence: float = 0.0
    fields: dict[str, FieldReading] = field(default_factory=dict)
    mismatches: tuple[str, ...] = ()  # fields that differ from the ID card

    def as_data(self) -> dict[str, Any]:
        """Return the reading as the session's JSON keeps it."""
        return {
            "readable": self.readable,
            "document_type": self.document_type,
            "confidence": self.confidence,
            "fields": {
                name: {"value": f.value, "confidence": f.confidence}
                for name, f in self.fields.items()
            },
            "mismatches": list(self.mismatches),
        }


class DocumentReader(Protocol):
    """Read one captured page."""

    def read(self, image: Pixels, card: IdCard | None) -> PageReading:
        """Return what the page says, compared with ``card`` when given."""


class ModelDocumentReader:
    """Read pages with the vision package's OCR (``models.ocr``)."""

    def __init__(
        self, reader: Callable[[], PageReader], min_confidence: float = 0.6
    ) -> None:
        self.reader = reader
        self.min_confidence = min_confidence

    def read(self, image: Pixels, card: IdCard | None) -> PageReading:
        """Read ``image`` (RGB); an unreadable page is a reading, never an error."""
        try:
            page = self.reader().read(np.ascontiguousarray(image[:, :, ::-1]))
        except (ModelError, VisionError) as exc:
            logger.warning("the page could not be read: %s", exc)
            return PageReading(False)
        lines = page.lines
        confidence = float(np.mean([line.confidence for line in lines])) if lines else 0
        found = extract_fields(lines)
        mismatches = cross_check(found, card) if card is not None else []
        fields = {
            name: FieldReading(
                mask(value.value) if name == "id_number" else value.value,
                round(value.confidence, 3),
            )
            for name, value in found.items()
        }
        readable = len(lines) >= MIN_LINES and confidence >= self.min_confidence
        reading = PageReading(
            readable,
            classify(lines),
            round(confidence, 3),
            fields,
            tuple(m.field for m in mismatches),
        )
        logger.info(
            "page read: %s lines, confidence %.2f, type %s, fields %s",
            len(lines),
            confidence,
            reading.document_type,
            sorted(fields),
        )
        return reading


def combine(readings: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge the pages' readings: the first type found, each field's best read."""
    document_type = next(
        (r["document_type"] for r in readings if r.get("document_type")), None
    )
    fields: dict[str, dict[str, Any]] = {}
    for reading in readings:
        for name, value in reading.get("fields", {}).items():
            best = fields.get(name)
            if best is None or value["confidence"] > best["confidence"]:
                fields[name] = value
    mismatches = sorted({m for r in readings for m in r.get("mismatches", [])})
    return {"document_type": document_type, "fields": fields, "mismatches": mismatches}
