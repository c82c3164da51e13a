"""Find the 12-digit ID number in recognised lines, using its structure.

A camera reading of a small ID card can glue the label's punctuation to
the number ("No-1025..." for "No.: 025..."), read a digit as a look-alike
letter (B or R for 8, O for 0) or see a slash between two digits ("08/909...",
the label's own slash seen again). Each run of digit-like characters, single
slashes inside it dropped, is turned into digits and every 12-digit window
of it is scored against the structure of
the number (Circular 07/2016/TT-BCA): a known province code, a sex and
century digit that agrees with the page's sex and date of birth, and the
two birth-year digits. The best-scoring window wins; a tie goes to the
rightmost window, since the label comes before the number. Nothing else is
guessed: a digit read as another digit in the serial part cannot be seen
from the structure and is left as read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date

from models.id_card import PROVINCE_CODES

ID_LENGTH = 12
MIN_TRUE_DIGITS = 9
DIGIT_LIKE = re.compile(r"[0-9OoDIlBSR](?:/?[0-9OoDIlBSR]){11,}")
LOOKALIKES = str.maketrans(
    {"O": "0", "o": "0", "D": "0", "I": "1", "l": "1", "B": "8", "S": "5", "R": "8"}
)


@dataclass(frozen=True)
class IdNumberReading:
    """A 12-digit number found in a line, and how it was obtained."""

    value: str
    line: int
    structure_score: int  # 0-3: province, sex and century, birth year
    adjusted: bool  # letters turned into digits or extra characters dropped


def structure_score(number: str, birth: date | None, sex: str | None) -> int:
    """Return how many structural parts of ``number`` agree (0 to 3).

    Without a birth date and sex only the province code can be checked.
    """
    score = int(number[:3] in PROVINCE_CODES)
    if birth is None or sex is None:
        return score
    digit = int(number[3])
    century = 1900 + 100 * (digit // 2)
    same_sex = ("female" if digit % 2 else "male") == sex
    score += int(same_sex and century <= birth.year < century + 100)
    score += int(number[4:6] == f"{birth.year % 100:02d}")
    return score


def digit_windows(text: str) -> Iterator[tuple[tuple[int, ...], str, str]]:
    """Yield every 12-character window of ``text``'s digit-like runs.

    Each comes as the positions of its characters in ``text``, its digits
    (look-alike letters turned into digits) and the whole run as read.
    Runs with fewer than :data:`MIN_TRUE_DIGITS` real digits are skipped.
    """
    for run in DIGIT_LIKE.finditer(text):
        raw = run.group(0)
        if sum(char.isdigit() for char in raw) < MIN_TRUE_DIGITS:
            continue
        positions = [run.start() + i for i, char in enumerate(raw) if char != "/"]
        digits = "".join(text[i] for i in positions).translate(LOOKALIKES)
        for offset in range(len(positions) - ID_LENGTH + 1):
            end = offset + ID_LENGTH
            yield tuple(positions[offset:end]), digits[offset:end], raw


def read_id_number(
    text: str, line: int, birth: date | None = None, sex: str | None = None
) -> IdNumberReading | None:
    """Return the best 12-digit window of ``text``'s digit-like runs, if any."""
    best: IdNumberReading | None = None
    for _, window, raw in digit_windows(text):
        reading = IdNumberReading(
            window,
            line,
            structure_score(window, birth, sex),
            adjusted=raw.translate(LOOKALIKES) != raw or len(raw) != ID_LENGTH,
        )
        if best is None or reading.structure_score >= best.structure_score:
            best = reading
    return best


def find_id_number(
    texts: Sequence[str],
    labelled: Sequence[int],
    birth: date | None = None,
    sex: str | None = None,
) -> IdNumberReading | None:
    """Return the ID number of a page from its lines' texts.

    ``labelled`` are the indices of lines that carry (or follow) an ID
    number label; they are searched first. When none of them holds a
    number, every line is searched, so that a label the recogniser mangled
    ("S6/No-" for "Số / No.:") does not lose the number.
    """
    for candidates in (labelled, range(len(texts))):
        readings = [
            reading
            for index in candidates
            if (reading := read_id_number(texts[index], index, birth, sex))
        ]
        if readings:
            return max(readings, key=lambda reading: reading.structure_score)
    return None
