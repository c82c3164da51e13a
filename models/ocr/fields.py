"""Identify the document type and extract its fields from OCR lines.

Labels are matched with tone marks and case folded away, because the
recogniser drops tone marks on upper-case text. Values are checked against
their format (a real date, a 12-digit ID number with a known province
code); a value that fails gets a lower confidence, never a silent fix.
Fields are then compared with the identified citizen's data by
:func:`cross_check`, and differences are reported for the officer.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from models.id_card import PROVINCE_CODES, IdCard
from models.ocr.page import OcrLine

logger = logging.getLogger(__name__)

DOCUMENT_KEYWORDS = (
    ("citizen_id_card", ("can cuoc cong dan", "can cuoc", "citizen identity")),
    ("birth_certificate", ("giay khai sinh",)),
    ("diploma", ("bang tot nghiep", "bang cu nhan", "bang thac si")),
    ("residence_confirmation", ("xac nhan thong tin ve cu tru",)),
)
LABELS = {
    "full_name": re.compile(r"\b(ho,?\s*chu dem va ten|ho va ten|ho ten)\b\s*[:.]?\s*"),
    "date_of_birth": re.compile(
        r"\b(ngay,?\s*thang,?\s*nam sinh|ngay sinh|sinh ngay)\b\s*[:.]?\s*"
    ),
    "id_number": re.compile(
        r"\b(so dinh danh ca nhan|so can cuoc( cong dan)?|so cccd|so)\b\s*[:.]?\s*"
    ),
    "issue_date": re.compile(r"\b(cap ngay|ngay cap)\b\s*[:.]?\s*"),
    "document_number": re.compile(r"^\s*(so)\s*[:.]\s*"),
}
DATE_VALUE = re.compile(r"(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{4})")
WORDY_DATE = re.compile(r"(\d{1,2})\s+thang\s+(\d{1,2})\s+nam\s+(\d{4})")
DIGIT_LOOKALIKES = str.maketrans({"O": "0", "o": "0", "D": "0", "I": "1", "l": "1"})
ID_VALUE = re.compile(r"(?<![\w])([0-9OoDIl]{12})(?![\w])")
INVALID_FACTOR = 0.3


@dataclass(frozen=True)
class DocumentField:
    """One extracted value, its confidence (0-1) and the line it came from."""

    value: str
    confidence: float
    line: int


@dataclass(frozen=True)
class Mismatch:
    """A field that differs from the identified citizen's data."""

    field: str
    read: str
    expected: str


def fold(text: str) -> str:
    """Return lower-case ``text`` without tone marks, one character per character."""
    folded = []
    for char in unicodedata.normalize("NFC", text):
        base = unicodedata.normalize("NFD", char)[0]
        folded.append("d" if char in "đĐ" else base.lower())
    return "".join(folded)


def classify(lines: Sequence[OcrLine]) -> str | None:
    """Return the document type named by its title, or None when unknown."""
    text = " ".join(fold(line.text) for line in lines)
    for document_type, keywords in DOCUMENT_KEYWORDS:
        if any(keyword in text for keyword in keywords):
            return document_type
    return None


def extract_fields(lines: Sequence[OcrLine]) -> dict[str, DocumentField]:
    """Return the fields found in ``lines`` (name, birth date, numbers, issue)."""
    found: dict[str, DocumentField] = {}
    for index, line in enumerate(lines):
        folded = fold(line.text)
        for name, label in LABELS.items():
            if name in found:
                continue
            match = label.search(folded)
            if match is None:
                continue
            value = _value(name, line.text[match.end() :], folded[match.end() :])
            if value is not None:
                text, valid = value
                factor = 1.0 if valid else INVALID_FACTOR
                found[name] = DocumentField(
                    text, round(line.confidence * factor, 4), index
                )
    return found


def _value(name: str, original: str, folded: str) -> tuple[str, bool] | None:
    if name == "full_name":
        cleaned = " ".join(original.split())
        return (cleaned, len(cleaned.split()) >= 2) if cleaned else None
    if name in ("date_of_birth", "issue_date"):
        return _date_value(folded)
    if name == "id_number":
        match = ID_VALUE.search(original)
        if match is None:
            return None
        digits = match.group(1).translate(DIGIT_LOOKALIKES)
        return digits, digits.isdigit() and digits[:3] in PROVINCE_CODES
    cleaned = original.strip()
    return (cleaned, True) if cleaned else None


def _date_value(folded: str) -> tuple[str, bool] | None:
    match = DATE_VALUE.search(folded) or WORDY_DATE.search(folded)
    if match is None:
        return None
    day, month, year = (int(part) for part in match.groups())
    try:
        return date(year, month, day).isoformat(), True
    except ValueError:
        return f"{year:04d}-{month:02d}-{day:02d}", False


def cross_check(fields: dict[str, DocumentField], citizen: IdCard) -> list[Mismatch]:
    """Return the fields that differ from the citizen's ID card data.

    Names are compared without case and spacing differences only: a tone
    mark that differs is a mismatch for the officer to judge.
    """
    expected = {
        "full_name": " ".join(citizen.full_name.split()),
        "date_of_birth": citizen.date_of_birth.isoformat(),
        "id_number": citizen.id_number,
    }
    mismatches = []
    for name, wanted in expected.items():
        field = fields.get(name)
        if field is None:
            continue
        same = (
            field.value.casefold() == wanted.casefold()
            if name == "full_name"
            else field.value == wanted
        )
        if not same:
            mismatches.append(
                Mismatch(name, _masked(name, field.value), _masked(name, wanted))
            )
    if mismatches:
        logger.info(
            "document fields differ from the ID card: %s", [m.field for m in mismatches]
        )
    return mismatches


def _masked(name: str, value: str) -> str:
    if name != "id_number" or len(value) < 7:
        return value
    return value[:3] + "*" * (len(value) - 6) + value[-3:]
