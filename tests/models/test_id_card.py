"""Tests of citizen ID card QR parsing and number checks."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from models.errors import IdCardError
from models.id_card import PROVINCE_CODES, check_id_number, mask, parse_id_card_qr

TODAY = date(2026, 12, 3)
# Generated numbers: Hà Nội (001), male born 1990 (0, 90), serial 012345.
MALE_1990 = "001090012345"
FEMALE_2003 = "079303998877"


def _qr(*fields: str) -> str:
    return "|".join(fields)


def test_seven_field_qr_is_parsed() -> None:
    text = _qr(
        MALE_1990,
        "012345678",
        "Nguyễn  Văn An",
        "15031990",
        "Nam",
        "Số 1 Tràng Tiền, Phường Hoàn Kiếm, Hà Nội",
        "20082021",
    )
    card = parse_id_card_qr(text, today=TODAY)
    assert card.id_number == MALE_1990
    assert card.old_id_number == "012345678"
    assert card.full_name == "Nguyễn Văn An"
    assert card.date_of_birth == date(1990, 3, 15)
    assert card.sex == "male"
    assert card.issue_date == date(2021, 8, 20)
    assert card.province == "Hà Nội"
    assert card.consistent


def test_six_field_qr_has_no_old_number() -> None:
    text = _qr(FEMALE_2003, "Trần Thị Bích", "01022003", "Nữ", "TP. HCM", "05052022")
    card = parse_id_card_qr(text, today=TODAY)
    assert card.old_id_number is None
    assert card.sex == "female"
    assert card.province == "Hồ Chí Minh"
    assert card.consistent


def test_decomposed_unicode_and_whitespace_are_normalised() -> None:
    text = (
        "\ufeff"
        + _qr(
            FEMALE_2003,
            "",
            "Le\u0302 Thi\u0323 Ha\u0300",
            "01022003",
            "Nư\u0303",
            "Huế",
            "05052022",
        )
        + "\n"
    )
    card = parse_id_card_qr(text, today=TODAY)
    assert card.full_name == "Lê Thị Hà"
    assert card.sex == "female"


def test_sex_digit_disagreeing_with_the_card_is_flagged() -> None:
    text = _qr(MALE_1990, "", "Phạm Thị Lan", "15031990", "Nữ", "Hà Nội", "20082021")
    card = parse_id_card_qr(text, today=TODAY)
    assert not card.consistent
    assert any("sex digit" in problem for problem in card.inconsistencies)
    assert card.sex == "female"  # flagged, never corrected


def test_century_and_year_digits_are_checked() -> None:
    problems = check_id_number(MALE_1990, date(2090, 3, 15), "male")
    assert any("century" in problem for problem in problems)
    problems = check_id_number(MALE_1990, date(1991, 3, 15), "male")
    assert any("birth year" in problem for problem in problems)
    assert check_id_number(MALE_1990, date(1990, 1, 1), "male") == []


def test_unknown_province_is_flagged() -> None:
    assert "003" not in PROVINCE_CODES
    problems = check_id_number("003090012345", date(1990, 1, 1), "male")
    assert problems == ["province code 003 is not on the official list"]
    assert len(PROVINCE_CODES) == 63


def test_impossible_dates_are_flagged() -> None:
    text = _qr(MALE_1990, "", "Ngô Văn Bình", "15031990", "Nam", "Hà Nội", "20081989")
    card = parse_id_card_qr(text, today=TODAY)
    assert "the card was issued before the holder was born" in card.inconsistencies


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello world", "fields"),
        (_qr("1", "2", "3", "4", "5"), "fields"),
        (_qr("00109001234", "", "A", "15031990", "Nam", "x", "20082021"), "12 digits"),
        (_qr(MALE_1990, "1234", "A", "15031990", "Nam", "x", "20082021"), "old ID"),
        (_qr(MALE_1990, "", "", "15031990", "Nam", "x", "20082021"), "full name"),
        (_qr(MALE_1990, "", "A", "1990-03-15", "Nam", "x", "20082021"), "DDMMYYYY"),
        (_qr(MALE_1990, "", "A", "31021990", "Nam", "x", "20082021"), "real date"),
        (_qr(MALE_1990, "", "A", "15031990", "M", "x", "20082021"), "sex"),
        ("|" * 2000, "too long"),
    ],
)
def test_malformed_qr_text_is_refused(text: str, message: str) -> None:
    with pytest.raises(IdCardError, match=message) as caught:
        parse_id_card_qr(text, today=TODAY)
    assert MALE_1990 not in str(caught.value)


def test_full_number_never_reaches_logs_or_repr(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = _qr(MALE_1990, "", "Phạm Thị Lan", "15031990", "Nữ", "Hà Nội", "20082021")
    with caplog.at_level(logging.DEBUG):
        card = parse_id_card_qr(text, today=TODAY)
    assert caplog.records, "an inconsistent card is logged"
    assert MALE_1990 not in caplog.text
    assert MALE_1990 not in repr(card)
    assert card.masked_id_number == "001******345"
    assert mask("123") == "***"
