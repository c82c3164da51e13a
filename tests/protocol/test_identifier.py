"""Tests for copy identifiers and access codes."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import IdentifierError
from protocol.identifier import (
    ALPHABET,
    check_access_code,
    hash_access_code,
    is_valid_copy_id,
    new_access_code,
    new_copy_id,
    normalize_access_code,
    parse_copy_id,
)

ID_PATTERN = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$")


def compact(copy_id: str) -> str:
    return copy_id.replace("-", "")


@st.composite
def valid_ids(draw: st.DrawFn) -> str:
    """Draw a valid identifier built from hypothesis-chosen data symbols."""
    from protocol.identifier import _check_symbols, _group

    data = draw(st.text(alphabet=ALPHABET, min_size=14, max_size=14))
    return _group(data + _check_symbols(data))


def test_new_copy_id_is_grouped_and_valid() -> None:
    copy_id = new_copy_id()
    assert ID_PATTERN.match(copy_id), copy_id
    assert parse_copy_id(copy_id) == copy_id
    assert is_valid_copy_id(copy_id)


def test_copy_ids_are_unique_over_100k() -> None:
    ids = {new_copy_id() for _ in range(100_000)}
    assert len(ids) == 100_000


@settings(max_examples=200, deadline=None, database=None)
@given(valid_ids(), st.integers(0, 15), st.integers(1, 31))
def test_every_single_substitution_is_rejected(
    copy_id: str, position: int, shift: int
) -> None:
    symbols = list(compact(copy_id))
    symbols[position] = ALPHABET[(ALPHABET.index(symbols[position]) + shift) % 32]
    assert not is_valid_copy_id("".join(symbols))


@settings(max_examples=200, deadline=None, database=None)
@given(valid_ids(), st.integers(0, 14))
def test_every_adjacent_swap_is_rejected(copy_id: str, position: int) -> None:
    symbols = list(compact(copy_id))
    if symbols[position] == symbols[position + 1]:
        return
    symbols[position], symbols[position + 1] = symbols[position + 1], symbols[position]
    assert not is_valid_copy_id("".join(symbols))


def test_exhaustive_single_errors_on_fixed_ids() -> None:
    for _ in range(20):
        symbols = compact(new_copy_id())
        for position in range(16):
            for char in ALPHABET:
                if char != symbols[position]:
                    typo = symbols[:position] + char + symbols[position + 1 :]
                    assert not is_valid_copy_id(typo)
            if position < 15 and symbols[position] != symbols[position + 1]:
                swapped = (
                    symbols[:position]
                    + symbols[position + 1]
                    + symbols[position]
                    + symbols[position + 2 :]
                )
                assert not is_valid_copy_id(swapped)


def test_parse_is_forgiving_about_case_dashes_and_lookalikes() -> None:
    copy_id = new_copy_id()
    typed = compact(copy_id).lower().replace("0", "o").replace("1", "l")
    assert parse_copy_id(f"  {typed} ") == copy_id
    assert parse_copy_id(copy_id.replace("1", "I")) == copy_id


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("K7QF-2M9X", "16 characters, not 8"),
        ("K7QF-2M9X-R4TD-W8U0", "'U' cannot appear"),
        ("K7QF-2M9X-R4TD-W8*0", "'*' cannot appear"),
    ],
)
def test_parse_names_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(IdentifierError, match=re.escape(fragment)):
        parse_copy_id(text)


def test_parse_reports_a_failed_check() -> None:
    symbols = compact(new_copy_id())
    typo = ("1" if symbols[0] != "1" else "2") + symbols[1:]
    with pytest.raises(IdentifierError, match="fails its check"):
        parse_copy_id(typo)


def test_access_code_round_trip() -> None:
    code = new_access_code()
    assert re.match(r"^[0-9A-Z]{4}-[0-9A-Z]{4}$", code)
    assert normalize_access_code(code.replace("-", "").lower()) == code
    salt = b"copy-salt-0123456"
    digest = hash_access_code(code, salt)
    assert digest.startswith("scrypt$")
    assert code.replace("-", "") not in digest
    assert check_access_code(code.lower(), salt, digest)
    assert not check_access_code(code, b"other-salt-012345", digest)
    other = new_access_code()
    assert other == code or not check_access_code(other, salt, digest)
    assert not check_access_code("short", salt, digest)
    assert not check_access_code(code, salt, "md5$1$1$1$00")


def test_access_code_hash_is_fast_enough() -> None:
    code, salt = new_access_code(), b"0123456789abcdef"
    timings = []
    for _ in range(15):
        start = time.perf_counter()
        hash_access_code(code, salt)
        timings.append(time.perf_counter() - start)
    assert sorted(timings)[7] < 0.010
