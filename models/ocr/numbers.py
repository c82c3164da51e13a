"""Read 12-digit numbers again from taller crops and let the readings vote.

A digit the recogniser misreads as another digit (3 as 1, 8 as 0) cannot
be caught by the ID number's structure when it falls in the serial part.
The crop's height changes how much of the lines above and below the model
sees, and a misread digit in one crop is often read right, and with more
confidence, in another. So every line holding a 12-digit run is read three
times more, its box grown by 10%, 20% and 30% of its height above and below, and
each of its 12 digits becomes the one with the most probability summed
over the four readings. Letters read in place of digits (O for 0, B for 8)
count with half their probability. Tuned on the generated camera pages
with an ID number among seeds 0-599 and 1000-1539 (855 pages): exact ID
numbers rose from 840 to 850 (98.2% to 99.4%), together with R taken as a
look-alike of 8 and slashes inside the number dropped (see
:mod:`models.ocr.id_number`). ``kiosk bench vision --id-pages`` measures
it on pages from seed 5000 on, which took no part in the tuning.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.id_card import PROVINCE_CODES
from models.ocr.id_number import ID_LENGTH, digit_windows
from models.ocr.recognition import LineRecognizer, LineText, normalized

logger = logging.getLogger(__name__)

GROWTHS = (0.1, 0.2, 0.3)  # of the box's height, added above and below
LOOKALIKE_WEIGHT = 0.5


@dataclass(frozen=True)
class NumberReading:
    """Twelve digits found in one reading of a line, with their weights."""

    positions: tuple[int, ...]  # of the digits in the reading's characters
    digits: str
    weights: tuple[float, ...]


def find_number(reading: LineText) -> NumberReading | None:
    """Return the 12-digit window of ``reading`` most like an ID number.

    A window whose first three digits are a province code is preferred;
    among equals the rightmost wins, since a label comes before its number.
    """
    best: tuple[bool, NumberReading] | None = None
    characters = reading.characters
    for positions, window, _ in digit_windows(characters):
        weights = tuple(
            reading.probabilities[i]
            * (1.0 if characters[i].isdigit() else LOOKALIKE_WEIGHT)
            for i in positions
        )
        known = window[:3] in PROVINCE_CODES
        if best is None or known >= best[0]:
            best = (known, NumberReading(positions, window, weights))
    return None if best is None else best[1]


def vote(readings: Sequence[NumberReading]) -> str:
    """Return, per position, the digit with the most summed weight."""
    tallies: list[dict[str, float]] = [defaultdict(float) for _ in range(ID_LENGTH)]
    for reading in readings:
        for position, (digit, weight) in enumerate(
            zip(reading.digits, reading.weights, strict=True)
        ):
            tallies[position][digit] += weight
    return "".join(max(tally, key=lambda d: tally[d]) for tally in tallies)


def reread_numbers(
    recognizer: LineRecognizer,
    grey: NDArray[np.uint8],
    boxes: NDArray[np.float32],
    texts: list[LineText],
) -> list[LineText]:
    """Return ``texts`` with each 12-digit number decided by four readings."""
    found = [
        (i, number) for i, text in enumerate(texts) if (number := find_number(text))
    ]
    if not found:
        return texts
    indices = [i for i, _ in found]
    others = [
        recognizer.read(grey, _grown(boxes[indices], growth)) for growth in GROWTHS
    ]
    result = list(texts)
    for row, (index, number) in enumerate(found):
        again = [n for reading in others if (n := find_number(reading[row]))]
        digits = vote([number, *again])
        if digits != number.digits:
            logger.debug("a 12-digit number changed on a second reading")
            result[index] = _with_digits(texts[index], number, digits)
    return result


def _grown(boxes: NDArray[np.float32], growth: float) -> NDArray[np.float32]:
    grown = boxes.copy()
    extra = growth * (grown[:, 3] - grown[:, 1])
    grown[:, 1] -= extra
    grown[:, 3] += extra
    return grown


def _with_digits(text: LineText, number: NumberReading, digits: str) -> LineText:
    start, end = number.positions[0], number.positions[-1] + 1
    characters = text.characters[:start] + digits + text.characters[end:]
    return LineText(
        normalized(characters), text.confidence, characters, text.probabilities
    )
