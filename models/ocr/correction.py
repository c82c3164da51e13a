"""Correct recognised lines using what Vietnamese documents always do.

Corrections only ever act where the domain leaves one answer:

- layout: a colon or comma is followed by a space, and a slash between
  words (the bilingual labels of the ID card) has a space on each side,
  except between digits (a time such as 10:30, a decimal 1,5, 12/03/2024);
- the form's own text: a heading, or a label before a colon, that matches
  a line of ``models/data/form_text.txt`` within a small edit distance is
  replaced by its canonical spelling (it is never citizen data);
- phrases: a run of words whose unmarked form equals a province, place or
  recurring phrase gets that phrase's tone and vowel marks back;
- names: after a name label, each part of the name is matched against the
  lists of family, middle and given names (by its letters, marks ignored)
  and the most common name with those letters restores the marks trueocr
  drops on upper-case text.

Words that are not in these closed sets are left as read: a general word
list of this size would change correct words. Field values corrected here
are flagged as such by :mod:`models.ocr.fields`, and the cross-check still
compares them with the citizen's data, so a name that truly differs in a
tone mark is shown to the officer.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from models.id_card import PROVINCE_CODES
from models.ocr.lexicon import Lexicon, folded, load_lexicon, read_list

logger = logging.getLogger(__name__)

COLON_WITHOUT_SPACE = re.compile(r"(?<!\d):(?=[^\s\d])|(?<=[^\d\s]):(?=\d)")
COMMA_WITHOUT_SPACE = re.compile(r"(?<=[^\W\d]),(?=[^\W\d])")
SLASH_BETWEEN_WORDS = re.compile(r"(?<=[^\W\d])\s*/\s*(?=[^\W\d])")
WORD = re.compile(r"[^\W\d_]+")
NAME_LABELS = ("ho chu dem va ten", "ho chu dem ten", "ho va ten", "ho ten", "cho")
NAME_TAIL = re.compile(r"^(nguoi me|nguoi cha|full name)?$")
HONORIFICS = ("Ông", "Bà", "Anh", "Chị")
MAX_PHRASE_WORDS = 4
MIN_FUZZY_KEY = 5
KEY_ERRORS_PER_CHAR = 0.2
SEX_WORDS = {"nam": "Nam", "nu": "Nữ"}
DIGIT_AS_LETTER = str.maketrans("01568", "olsob")
WORDY_DATE = re.compile(
    r"\bng\w{1,2}y\s*(\d{1,2})\s*th\w{1,2}ng\s*(\d{1,2})\s*n\w{1,2}m\s*(\d{4})"
)


@dataclass(frozen=True)
class FormText:
    """Canonical form lines and labels, keyed by their letters and digits."""

    lines: dict[str, str]
    labels: dict[str, str]
    phrases: dict[tuple[str, ...], str]


def key(text: str) -> str:
    """Return the letters and digits of ``text``, unmarked and lower-case."""
    return "".join(char for char in folded(text) if char.isalnum())


def label_key(text: str) -> str:
    """Return :func:`key` with digits read as the letters they resemble."""
    return key(text).translate(DIGIT_AS_LETTER)


@functools.cache
def load_form_text() -> FormText:
    """Return the form text and phrase index built from the data files."""
    entries = read_list("form_text.txt")
    lines = {key(entry): entry for entry in entries}
    labels = {
        label_key(entry[:-1]): entry[:-1] for entry in entries if entry.endswith(":")
    }
    phrases: dict[tuple[str, ...], str] = {}
    sources = [*read_list("phrases.txt"), *read_list("place_names.txt")]
    sources += list(PROVINCE_CODES.values())
    for phrase in sources:
        words = tuple(folded(word) for word in WORD.findall(phrase))
        if 1 < len(words) <= MAX_PHRASE_WORDS:
            phrases.setdefault(words, phrase)
    return FormText(lines, labels, phrases)


def correct_line(text: str) -> str:
    """Return ``text`` with layout, form-text and phrase corrections applied."""
    spaced = _layout(text)
    form = load_form_text()
    label, colon, value = spaced.partition(":")
    if colon:
        known = _closest(label_key(label), form.labels)
        if known is not None:
            value = _phrases(value.strip(), form)
            if known.startswith("Giới tính"):
                value = _sex_value(value)
            return f"{known}: {value}" if value else f"{known}:"
    canonical = _closest(key(spaced), form.lines)
    if canonical is not None:
        return canonical
    return _phrases(_wordy_dates(spaced), form)


def _sex_value(value: str) -> str:
    """Respell the first word after a sex label: it can only be Nam or Nữ."""
    first, _, rest = value.partition(" ")
    spelled = SEX_WORDS.get(folded(first))
    if spelled is None:
        return value
    return f"{spelled} {rest}" if rest else spelled


def _wordy_dates(text: str) -> str:
    """Respell "ngày D tháng M năm YYYY" whose words lost or changed marks."""
    plain = folded(text)
    pieces, cursor = [], 0
    for match in WORDY_DATE.finditer(plain):
        day, month, year = match.groups()
        pieces += [text[cursor : match.start()], f"ngày {day} tháng {month} năm {year}"]
        cursor = match.end()
    pieces.append(text[cursor:])
    return "".join(pieces)


def correct_lines(texts: Sequence[str]) -> list[str]:
    """Return the lines of a page corrected, names restored after name labels."""
    corrected = [correct_line(text) for text in texts]
    lexicon = load_lexicon()
    female = _says_female(corrected)
    for index, text in enumerate(corrected):
        label, colon, value = text.partition(":")
        if not colon or not _is_name_label(label):
            continue
        own = female if not _is_parent_label(label) else None
        if value.strip():
            name = restore_name(value, lexicon, own)[0]
            corrected[index] = f"{label}: {name}"
        elif index + 1 < len(corrected):
            name = restore_name(corrected[index + 1], lexicon, own)[0]
            corrected[index + 1] = name
    return corrected


def restore_name(
    text: str, lexicon: Lexicon | None = None, female: bool | None = None
) -> tuple[str, bool]:
    """Return a personal name with its marks restored, and whether it changed.

    Each part is looked up by its letters in the list for its position
    (family first, given last, middle between); a part already spelled as a
    listed name is kept. Where the letters fit several names, the most
    common one of the person's sex (``female``, or guessed from a middle
    name only women bear, such as Thị) is taken. The reading's case is kept.
    """
    lexicon = lexicon or load_lexicon()
    words = text.split()
    honorific = words[:1] if words[:1] and words[0] in HONORIFICS else []
    parts = words[len(honorific) :]
    if len(parts) == 1:
        parts = _split_glued(parts[0], lexicon) or parts
    stated = female is not None
    if female is None:
        female = _female_middle(parts[1:-1], lexicon) or (
            honorific == ["Bà"] or honorific == ["Chị"]
        )
    restored = [
        _restore_part(part, _name_position(i, len(parts)), lexicon, female, stated)
        for i, part in enumerate(parts)
    ]
    upper = sum(part.isupper() for part in parts) * 2 > len(parts)
    if upper:
        restored = [part.upper() for part in restored]
    result = " ".join([*honorific, *restored])
    return result, result != " ".join(words)


def _split_glued(word: str, lexicon: Lexicon) -> list[str] | None:
    """Split a name read without spaces into listed family, middle, given parts."""
    plain = folded(word)
    families = {folded(name) for name in lexicon.names["family"]}
    middles = {folded(name) for name in lexicon.names["middle"]}
    givens = {folded(name) for name in lexicon.names["given"]}
    for first in range(1, len(plain) - 1):
        if plain[:first] not in families:
            continue
        for second in range(first + 1, len(plain)):
            if plain[first:second] in middles and plain[second:] in givens:
                return [word[:first], word[first:second], word[second:]]
    return None


def _layout(text: str) -> str:
    spaced = COLON_WITHOUT_SPACE.sub(": ", text)
    spaced = COMMA_WITHOUT_SPACE.sub(", ", spaced)
    return SLASH_BETWEEN_WORDS.sub(" / ", spaced)


def _says_female(lines: Sequence[str]) -> bool | None:
    """Return the sex a page states (Giới tính), None when it states none."""
    for line in lines:
        match = re.search(r"gioi tinh[^:]*:\s*(\w+)", folded(line))
        if match:
            return match.group(1) == "nu"
    return None


def _female_middle(middle: Sequence[str], lexicon: Lexicon) -> bool:
    women = {folded(name) for name in read_list("middle_names_female.txt")}
    men = {folded(name) for name in read_list("middle_names_male.txt")}
    return any(folded(part) in women - men for part in middle)


def _is_parent_label(label: str) -> bool:
    return "nguoi" in folded(label)


def _is_name_label(label: str) -> bool:
    words = folded(label).replace(",", " ").replace("/", " ").split()
    joined = " ".join(words)
    for name_label in NAME_LABELS:
        if joined.startswith(name_label):
            tail = joined[len(name_label) :].strip()
            return bool(NAME_TAIL.match(tail))
    return False


def _name_position(index: int, count: int) -> str:
    if index == 0 and count > 1:
        return "family"
    return "given" if index == count - 1 else "middle"


def _restore_part(
    part: str, position: str, lexicon: Lexicon, female: bool, stated: bool
) -> str:
    listed: Sequence[str] = lexicon.names[position]
    if stated and position == "given":
        # The page states the sex: a man's name read on a woman's page is a
        # misread tone mark when a woman's name has the same letters.
        listed = read_list(f"given_names_{'female' if female else 'male'}.txt")
    if not part.isalpha() or any(part.lower() == name.lower() for name in listed):
        return part
    candidates = lexicon.candidates(part, position, loose=True)
    if not candidates and position == "middle":
        candidates = lexicon.candidates(part, "given", loose=True)
    if not candidates:
        return part
    chosen = _by_sex(candidates, female) if position != "family" else candidates[0]
    return chosen.upper() if part.isupper() else chosen


def _by_sex(candidates: tuple[str, ...], female: bool) -> str:
    """Prefer a candidate from the female lists when the middle name is Thị."""
    if not female:
        return candidates[0]
    women = set(read_list("given_names_female.txt"))
    women |= set(read_list("middle_names_female.txt"))
    return next((name for name in candidates if name in women), candidates[0])


def _phrases(text: str, form: FormText) -> str:
    matches = list(WORD.finditer(text))
    pieces, cursor, index = [], 0, 0
    while index < len(matches):
        found = _phrase_at(matches, index, form)
        if found is None:
            index += 1
            continue
        count, phrase = found
        first, last = matches[index], matches[index + count - 1]
        span = text[first.start() : last.end()]
        pieces += [text[cursor : first.start()], _cased(phrase, span)]
        cursor, index = last.end(), index + count
    pieces.append(text[cursor:])
    return "".join(pieces)


def _phrase_at(
    matches: list[re.Match[str]], index: int, form: FormText
) -> tuple[int, str] | None:
    for count in range(min(MAX_PHRASE_WORDS, len(matches) - index), 1, -1):
        words = tuple(folded(m.group()) for m in matches[index : index + count])
        phrase = form.phrases.get(words)
        if phrase is not None:
            return count, phrase
    return None


def _cased(phrase: str, span: str) -> str:
    """Return ``phrase`` with each word in the case it was read in."""
    read = WORD.findall(span)
    pieces, cursor = [], 0
    for word, seen in zip(WORD.finditer(phrase), read, strict=True):
        text = word.group()
        if seen.isupper() and len(seen) > 1:
            text = text.upper()
        elif seen[0].islower():
            text = text[0].lower() + text[1:]
        pieces += [phrase[cursor : word.start()], text]
        cursor = word.end()
    pieces.append(phrase[cursor:])
    return "".join(pieces)


def _closest(text_key: str, table: dict[str, str]) -> str | None:
    exact = table.get(text_key)
    if exact is not None or len(text_key) < MIN_FUZZY_KEY:
        return exact
    budget = int(len(text_key) * KEY_ERRORS_PER_CHAR)
    best: tuple[int, str] | None = None
    for candidate, canonical in table.items():
        if abs(len(candidate) - len(text_key)) > budget:
            continue
        distance = bounded_distance(text_key, candidate, budget)
        if distance <= budget and (best is None or distance < best[0]):
            best = (distance, canonical)
    return None if best is None else best[1]


def bounded_distance(first: str, second: str, bound: int) -> int:
    """Return the edit distance of two strings, or ``bound + 1`` beyond it."""
    previous = list(range(len(second) + 1))
    for i, char in enumerate(first, start=1):
        current = [i] + [0] * len(second)
        for j, other in enumerate(second, start=1):
            current[j] = min(
                previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other)
            )
        if min(current) > bound:
            return bound + 1
        previous = current
    return previous[-1]
