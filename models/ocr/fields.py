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
from dataclasses import dataclass, replace
from datetime import date

from models.id_card import PROVINCE_CODES, IdCard, check_id_number
from models.ocr.id_number import find_id_number
from models.ocr.lexicon import load_lexicon
from models.ocr.page import OcrLine

logger = logging.getLogger(__name__)

DOCUMENT_KEYWORDS = (
    ("citizen_id_card", ("can cuoc cong dan", "can cuoc", "citizen identity")),
    ("birth_certificate", ("giay khai sinh",)),
    (
        "diploma",
        ("bang tot nghiep", "bang cu nhan", "bang thac si", "bang ky su"),
    ),
    ("residence_confirmation", ("xac nhan thong tin ve cu tru",)),
)
LABELS = {
    "full_name": re.compile(
        r"(\b(ho,?\s*chu dem,?\s*(va\s*)?ten|ho va ten|ho ten)\b(?!\s*nguoi)"
        r"(\s*/\s*full name)?|^\s*cho)\s*[:.]?\s*"
    ),
    "date_of_birth": re.compile(
        r"\b(ngay,?\s*thang,?\s*nam sinh|ngay sinh|sinh ngay)\b\s*[:.]?\s*"
    ),
    "id_number": re.compile(
        r"\b(so dinh danh ca nhan|so can cuoc( cong dan)?|so cccd|so)\b\s*[:.]?\s*"
    ),
    "issue_date": re.compile(
        r"\b(cap ngay|ngay cap|ngay,?\s*thang,?\s*nam dang ky)\b\s*[:.]?\s*"
        r"|^[^:]*,\s*(?=ngay \d{1,2} thang \d{1,2} nam \d{4})"
    ),
    "document_number": re.compile(r"^\s*(so|so hieu)\s*[:.]\s*"),
}
HONORIFICS = ("ông", "bà", "anh", "chị")
CORRECTED_FACTOR = 0.9
UNLISTED_NAME_FACTOR = 0.6
DATE_VALUE = re.compile(r"(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{4})")
WORDY_DATE = re.compile(r"(\d{1,2})\s+thang\s+(\d{1,2})\s+nam\s+(\d{4})")
LOOSE_DATE = re.compile(
    r"(?<![\w])([\dol]{1,2})\s*/\s*([\dolbs]{1,2})\s*/\s*([\dolbs]{4})(?![\w])"
)
FOLDED_LOOKALIKES = str.maketrans({"o": "0", "l": "1", "b": "8", "s": "5"})
INVALID_FACTOR = 0.3
SEX_VALUE = re.compile(r"gioi tinh[^:]*:\s*(nam|nu)\b")


@dataclass(frozen=True)
class DocumentField:
    """One extracted value, its confidence (0-1) and the line it came from."""

    value: str
    confidence: float
    line: int
    corrected: bool = False  # the domain correction changed the reading
    raw: str = ""  # the line as recognised
    problems: tuple[str, ...] = ()  # why the value is doubtful


@dataclass(frozen=True)
class Mismatch:
    """A field that differs from the identified citizen's data."""

    field: str
    read: str
    expected: str
    raw: str = ""  # the line as recognised, before domain correction


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
    """Return the fields found in ``lines`` (name, birth date, numbers, issue).

    A label alone on its line takes its value from the next line (the ID
    card prints the name under its label). Values are validated: a real
    date, a 12-digit number whose structure agrees with the birth date and
    sex on the page, name parts from the lists of Vietnamese names.
    """
    found: dict[str, DocumentField] = {}
    id_lines: list[int] = []
    for index, line in enumerate(lines):
        folded = fold(line.text)
        for name, label in LABELS.items():
            match = None if name in found else label.search(folded)
            if match is None:
                continue
            source, rest = index, line.text[match.end() :]
            if not rest.strip() and index + 1 < len(lines):
                source, rest = index + 1, lines[index + 1].text
            if name == "id_number":
                id_lines.append(source)
                continue
            value = _value(name, rest, fold(rest))
            if value is not None:
                found[name] = _field(value, lines[source], source)
    number = _id_number_field(found, lines, id_lines)
    if number is not None:
        found["id_number"] = number
    _check_id_structure(found, lines)
    return found


def _id_number_field(
    found: dict[str, DocumentField], lines: Sequence[OcrLine], labelled: list[int]
) -> DocumentField | None:
    """Return the ID number read with its structure (:mod:`.id_number`)."""
    birth = _birth_date(found)
    reading = find_id_number(
        [line.text for line in lines], labelled, birth, _page_sex(lines)
    )
    if reading is None:
        return None
    field = _field(
        (reading.value, reading.value[:3] in PROVINCE_CODES),
        lines[reading.line],
        reading.line,
    )
    if not reading.adjusted:
        return field
    return replace(
        field,
        confidence=round(field.confidence * CORRECTED_FACTOR, 4),
        corrected=True,
    )


def _birth_date(found: dict[str, DocumentField]) -> date | None:
    born = found.get("date_of_birth")
    if born is None:
        return None
    try:
        return date.fromisoformat(born.value)
    except ValueError:
        return None


def _field(value: tuple[str, bool], line: OcrLine, index: int) -> DocumentField:
    text, valid = value
    corrected = bool(line.raw_text) and line.raw_text != line.text
    factor = (1.0 if valid else INVALID_FACTOR) * (
        CORRECTED_FACTOR if corrected else 1.0
    )
    problems = () if valid else ("the value does not have the expected form",)
    return DocumentField(
        text,
        round(line.confidence * factor, 4),
        index,
        corrected,
        line.raw_text,
        problems,
    )


def _value(name: str, original: str, folded: str) -> tuple[str, bool] | None:
    if name == "full_name":
        return _name_value(original)
    if name in ("date_of_birth", "issue_date"):
        return _date_value(folded)
    cleaned = original.strip()
    return (cleaned, True) if cleaned else None


def _name_value(original: str) -> tuple[str, bool] | None:
    words = original.split()
    if words and words[0].lower() in HONORIFICS:
        words = words[1:]
    if not words:
        return None
    lexicon = load_lexicon()
    positions = ["family", *["middle"] * (len(words) - 2), "given"]
    listed = len(words) >= 2 and all(
        any(word.lower() == known.lower() for known in lexicon.names[position])
        or (position == "middle" and lexicon.is_syllable(word))
        for word, position in zip(words, positions, strict=True)
    )
    return " ".join(words), listed


def _check_id_structure(
    found: dict[str, DocumentField], lines: Sequence[OcrLine]
) -> None:
    """Lower the ID number's confidence when its structure disagrees."""
    number, born = found.get("id_number"), found.get("date_of_birth")
    sex = _page_sex(lines)
    if number is None or born is None or sex is None or not number.value.isdigit():
        return
    try:
        birth = date.fromisoformat(born.value)
    except ValueError:
        return
    problems = check_id_number(number.value, birth, sex)
    if problems:
        found["id_number"] = replace(
            number,
            confidence=round(number.confidence * INVALID_FACTOR, 4),
            problems=(*number.problems, *problems),
        )


def _page_sex(lines: Sequence[OcrLine]) -> str | None:
    for line in lines:
        match = SEX_VALUE.search(fold(line.text))
        if match:
            return "female" if match.group(1) == "nu" else "male"
    return None


def _date_value(folded: str) -> tuple[str, bool] | None:
    match = DATE_VALUE.search(folded) or WORDY_DATE.search(folded)
    exact = match is not None
    if match is None:
        # Letters read for digits (0B for 08): a date, but a doubtful one.
        match = LOOSE_DATE.search(folded)
        if match is None:
            return None
    day, month, year = (
        int(part.translate(FOLDED_LOOKALIKES)) for part in match.groups()
    )
    try:
        return date(year, month, day).isoformat(), exact
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
            raw = field.raw if name != "id_number" else ""
            mismatches.append(
                Mismatch(name, _masked(name, field.value), _masked(name, wanted), raw)
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
