"""Correct recognised lines using what Vietnamese documents always do.

Only rules that cannot change a correct reading are applied: a colon or a
comma is followed by a space in printed Vietnamese (the recogniser often
drops it), except between digits (a time such as 10:30, a decimal 1,5). Corrections that
need the closed set of Vietnamese syllables, name lists or place names are
not built yet.
"""

from __future__ import annotations

import re

COLON_WITHOUT_SPACE = re.compile(r"(?<!\d):(?=[^\s\d])|(?<=[^\W\d]):(?=\d)")
COMMA_WITHOUT_SPACE = re.compile(r"(?<=[^\W\d]),(?=[^\W\d])")


def correct_line(text: str) -> str:
    """Return ``text`` with the safe layout corrections applied."""
    spaced = COLON_WITHOUT_SPACE.sub(": ", text)
    return COMMA_WITHOUT_SPACE.sub(", ", spaced)
