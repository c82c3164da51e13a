"""Turn a request's kiosk metadata into what the request page shows.

Kiosks put their findings in ``RequestRecord.metadata`` under ``fields``
(name to value, or to ``{"value", "confidence"}``), ``face``
(``{"score", "match", "threshold"}``), ``liveness`` (``{"passed", "score"}``),
``quality`` (a list of findings, strings or ``{"page", "problem"}``),
``mismatches`` (strings or ``{"field", "id_card", "document"}``),
``fee_vnd`` and ``delivery`` (``{"email", "wallet", "attach_pdf",
"copies"}``). Any key may be absent; a request then is not "clean" and the
page says what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cloud_bridge.store import RequestRecord

LOW_CONFIDENCE = 0.8


@dataclass(frozen=True)
class FieldRead:
    """One field read from the document, with the reader's confidence."""

    name: str
    value: str
    confidence: float | None

    @property
    def doubtful(self) -> bool:
        """Return True when the confidence is low enough to check by eye."""
        return self.confidence is not None and self.confidence < LOW_CONFIDENCE


@dataclass(frozen=True)
class RequestView:
    """A request's findings, normalised for the page and the queue."""

    fields: list[FieldRead]
    face_score: float | None
    face_match: bool | None
    liveness_passed: bool | None
    quality: list[str]
    mismatches: list[str]
    fee_vnd: int | None
    delivery: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Return True when every check passed and nothing is missing."""
        return (
            not self.quality
            and not self.mismatches
            and not self.missing
            and self.face_match is True
            and self.liveness_passed is True
        )


def describe(record: RequestRecord, label: Callable[[str], str] = str) -> RequestView:
    """Return the normalised view of a request's metadata.

    ``label`` names the keys of findings and the fields a mismatch is about
    (see :mod:`.labels`); by default they are shown as the kiosk sent them.
    """
    data = record.metadata
    face = _mapping(data.get("face"))
    liveness = _mapping(data.get("liveness"))
    missing = [key for key in ("fields", "face", "liveness") if key not in data]
    return RequestView(
        fields=_fields(data.get("fields")),
        face_score=_number(face.get("score")),
        face_match=_face_match(face),
        liveness_passed=_flag(liveness.get("passed")),
        quality=_findings(data.get("quality"), ("page", "problem"), label),
        mismatches=_findings(
            data.get("mismatches"), ("field", "id_card", "document"), label
        ),
        fee_vnd=_integer(data.get("fee_vnd")),
        delivery=_delivery(data.get("delivery")),
        missing=missing,
    )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _integer(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _face_match(face: dict[str, Any]) -> bool | None:
    match = _flag(face.get("match"))
    if match is not None:
        return match
    score, threshold = _number(face.get("score")), _number(face.get("threshold"))
    if score is None or threshold is None:
        return None
    return score >= threshold


def _fields(value: Any) -> list[FieldRead]:
    if not isinstance(value, dict):
        return []
    found = []
    for name, item in value.items():
        if isinstance(item, dict):
            text = str(item.get("value", ""))
            confidence = _number(item.get("confidence"))
        else:
            text, confidence = str(item), None
        found.append(FieldRead(str(name), text, confidence))
    return found


def _findings(
    value: Any, keys: tuple[str, ...], label: Callable[[str], str]
) -> list[str]:
    if not isinstance(value, list):
        return []
    lines = []
    for item in value:
        if isinstance(item, dict):
            parts = [
                f"{label(key)}: {_finding_value(key, item[key], label)}"
                for key in keys
                if key in item
            ]
            lines.append("; ".join(parts) or str(item))
        else:
            lines.append(str(item))
    return lines


def _finding_value(key: str, value: Any, label: Callable[[str], str]) -> str:
    # A mismatch's "field" is a field's key, named like the fields read.
    return label(str(value)) if key == "field" else str(value)


def _delivery(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(key): str(item) for key, item in value.items()}
