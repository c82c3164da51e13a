"""The closed set of Vietnamese syllables and names the OCR corrects against.

The set is built from the data files beside this package (``models/data``):
common family, middle and given names (most common first), place names,
and the vocabulary of the documents a kiosk certifies. These are facts of
the language and of the forms, written for this project.

Two keys index each syllable: its *toneless* form (tone marks removed, the
vowel marks â ă ê ô ơ ư and đ kept), which is what trueocr returns for
upper-case text, and its *folded* form (every mark removed), for readers
that lose the vowel marks too. A reading matches a syllable only through
these keys, so a correction can restore marks but never change letters.
"""

from __future__ import annotations

import functools
import logging
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path

from models.id_card import PROVINCE_CODES

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
TONE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323")
NAME_FILES = {
    "family": ("family_names.txt",),
    "middle": ("middle_names_male.txt", "middle_names_female.txt"),
    "given": ("given_names_male.txt", "given_names_female.txt"),
}
OTHER_FILES = ("place_names.txt", "vocabulary.txt")


def toneless(text: str) -> str:
    """Return lower-case ``text`` without tone marks, vowel marks kept."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    kept = "".join(char for char in decomposed if char not in TONE_MARKS)
    return unicodedata.normalize("NFC", kept)


def folded(text: str) -> str:
    """Return lower-case ``text`` without any mark (đ becomes d)."""
    decomposed = unicodedata.normalize("NFD", text.lower().replace("đ", "d"))
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def read_list(name: str) -> list[str]:
    """Return the entries of one data file, comments and blanks skipped."""
    return list(_read_entries(name))


@functools.cache
def _read_entries(name: str) -> tuple[str, ...]:
    path = DATA_DIR / name
    entries = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = unicodedata.normalize("NFC", raw.strip())
        if line and not line.startswith("#"):
            entries.append(line)
    return tuple(entries)


class Lexicon:
    """Syllables and name parts, each ordered most common first."""

    def __init__(
        self, syllables: tuple[str, ...], names: dict[str, tuple[str, ...]]
    ) -> None:
        self.syllables = syllables
        self.names = names
        self._known = frozenset(syllables)
        self._by_toneless = _index(syllables, toneless)
        self._by_folded = _index(syllables, folded)
        self._names = {
            part: (_index(items, toneless), _index(items, folded))
            for part, items in names.items()
        }

    def is_syllable(self, word: str) -> bool:
        """Tell whether ``word`` (any case) is a known syllable."""
        return word.lower() in self._known

    def candidates(
        self, word: str, part: str | None = None, loose: bool = False
    ) -> tuple[str, ...]:
        """Return the known syllables (or name parts) ``word`` may be.

        Matches on the toneless form first, then on the folded form when the
        reading carries no vowel marks at all (a reader that lost them), or
        always when ``loose`` (a vowel mark misread, in a closed name list).
        """
        if part is None:
            by_toneless, by_folded = self._by_toneless, self._by_folded
        else:
            by_toneless, by_folded = self._names[part]
        found = by_toneless.get(toneless(word), ())
        if not found and (loose or folded(word) == word.lower()):
            found = by_folded.get(folded(word), ())
        return found


def _index(
    items: Iterable[str], key: Callable[[str], str]
) -> dict[str, tuple[str, ...]]:
    keyed: dict[str, list[str]] = {}
    for item in items:
        keyed.setdefault(key(item), []).append(item)
    return {k: tuple(v) for k, v in keyed.items()}


@functools.cache
def load_lexicon() -> Lexicon:
    """Return the lexicon built from the data files (read once)."""
    names = {
        part: tuple(dict.fromkeys(item for name in files for item in read_list(name)))
        for part, files in NAME_FILES.items()
    }
    words: list[str] = []
    for part in ("family", "middle", "given"):
        words += [item.lower() for item in names[part]]
    for name in OTHER_FILES:
        words += [w.lower() for line in read_list(name) for w in line.split()]
    words += [w.lower() for place in PROVINCE_CODES.values() for w in place.split()]
    syllables = tuple(dict.fromkeys(w for w in words if w.isalpha()))
    logger.debug("lexicon of %s syllables", len(syllables))
    return Lexicon(syllables, names)
