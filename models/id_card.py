"""Parse the QR code text of a Vietnamese citizen ID card and check its number.

The QR holds pipe-separated fields: the 12-digit ID number, the old 9- or
12-digit number (empty when there was none; cards of some series leave the
field out, giving six fields), the full name, the date of birth (DDMMYYYY),
the sex (``Nam`` or ``Nữ``), the permanent address and the issue date.

The 12-digit number is structured (Circular 07/2016/TT-BCA): three digits
for the province where the birth was registered, one digit for sex and
century of birth (0/1 male/female born 1900-1999, 2/3 born 2000-2099, and
so on up to 8/9), two digits for the year of birth, then six serial
digits. :func:`check_id_number` compares that structure with the other
fields. Province codes are the 63 of the Circular; the 2025 merger of
provinces does not renumber existing cards, so the list stays valid for
reading them. Numbers of citizens whose birth was registered abroad are not
covered by this list and are reported as an unknown province.

A full ID number is never put into a log line, an error message or a repr.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import date

from models.errors import IdCardError

logger = logging.getLogger(__name__)

PROVINCE_CODES: dict[str, str] = {
    "001": "Hà Nội",
    "002": "Hà Giang",
    "004": "Cao Bằng",
    "006": "Bắc Kạn",
    "008": "Tuyên Quang",
    "010": "Lào Cai",
    "011": "Điện Biên",
    "012": "Lai Châu",
    "014": "Sơn La",
    "015": "Yên Bái",
    "017": "Hòa Bình",
    "019": "Thái Nguyên",
    "020": "Lạng Sơn",
    "022": "Quảng Ninh",
    "024": "Bắc Giang",
    "025": "Phú Thọ",
    "026": "Vĩnh Phúc",
    "027": "Bắc Ninh",
    "030": "Hải Dương",
    "031": "Hải Phòng",
    "033": "Hưng Yên",
    "034": "Thái Bình",
    "035": "Hà Nam",
    "036": "Nam Định",
    "037": "Ninh Bình",
    "038": "Thanh Hóa",
    "040": "Nghệ An",
    "042": "Hà Tĩnh",
    "044": "Quảng Bình",
    "045": "Quảng Trị",
    "046": "Thừa Thiên Huế",
    "048": "Đà Nẵng",
    "049": "Quảng Nam",
    "051": "Quảng Ngãi",
    "052": "Bình Định",
    "054": "Phú Yên",
    "056": "Khánh Hòa",
    "058": "Ninh Thuận",
    "060": "Bình Thuận",
    "062": "Kon Tum",
    "064": "Gia Lai",
    "066": "Đắk Lắk",
    "067": "Đắk Nông",
    "068": "Lâm Đồng",
    "070": "Bình Phước",
    "072": "Tây Ninh",
    "074": "Bình Dương",
    "075": "Đồng Nai",
    "077": "Bà Rịa - Vũng Tàu",
    "079": "Hồ Chí Minh",
    "080": "Long An",
    "082": "Tiền Giang",
    "083": "Bến Tre",
    "084": "Trà Vinh",
    "086": "Vĩnh Long",
    "087": "Đồng Tháp",
    "089": "An Giang",
    "091": "Kiên Giang",
    "092": "Cần Thơ",
    "093": "Hậu Giang",
    "094": "Sóc Trăng",
    "095": "Bạc Liêu",
    "096": "Cà Mau",
}

SEXES = {"nam": "male", "nữ": "female"}
ID_NUMBER = re.compile(r"^\d{12}$")
OLD_ID_NUMBER = re.compile(r"^(\d{9}|\d{12})?$")
DATE = re.compile(r"^(\d{2})(\d{2})(\d{4})$")
MAX_QR_TEXT = 1000


def mask(number: str) -> str:
    """Return ``number`` with all but its first three and last three digits hidden."""
    if len(number) <= 6:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 6) + number[-3:]


@dataclass(frozen=True)
class IdCard:
    """The fields of a citizen ID card's QR code, and what did not add up."""

    id_number: str = field(repr=False)
    old_id_number: str | None = field(repr=False)
    full_name: str
    date_of_birth: date
    sex: str  # "male" or "female"
    address: str
    issue_date: date
    province: str | None
    inconsistencies: tuple[str, ...]

    @property
    def masked_id_number(self) -> str:
        """Return the ID number with its middle digits hidden, for logs."""
        return mask(self.id_number)

    @property
    def consistent(self) -> bool:
        """Tell whether the number's structure agrees with the other fields."""
        return not self.inconsistencies


def parse_id_card_qr(text: str, today: date | None = None) -> IdCard:
    """Parse a citizen ID card's QR text and check the number against it.

    Inconsistencies (a number whose sex, century or birth year disagrees
    with the fields, an unknown province, an issue date before birth) are
    listed in ``inconsistencies`` for the officer, never corrected.

    Raises:
        IdCardError: the text does not have the card's structure.
    """
    fields = _split(text)
    if len(fields) == 6:
        fields.insert(1, "")
    id_number, old_number, name, born, sex, address, issued = fields
    if not ID_NUMBER.match(id_number):
        raise IdCardError(
            "the QR's ID number is not 12 digits; this is not a citizen ID card QR"
        )
    if not OLD_ID_NUMBER.match(old_number):
        raise IdCardError("the QR's old ID number is neither empty, 9 nor 12 digits")
    if not name:
        raise IdCardError("the QR has no full name")
    if sex.lower() not in SEXES:
        raise IdCardError(f"the QR's sex field {sex!r} is neither 'Nam' nor 'Nữ'")
    card = IdCard(
        id_number=id_number,
        old_id_number=old_number or None,
        full_name=" ".join(name.split()),
        date_of_birth=_parse_date(born, "date of birth"),
        sex=SEXES[sex.lower()],
        address=" ".join(address.split()),
        issue_date=_parse_date(issued, "issue date"),
        province=PROVINCE_CODES.get(id_number[:3]),
        inconsistencies=(),
    )
    problems = check_id_number(id_number, card.date_of_birth, card.sex)
    problems += _check_dates(card, today or date.today())
    if problems:
        logger.warning(
            "ID card %s QR is inconsistent: %s", card.masked_id_number, problems
        )
    return replace(card, inconsistencies=tuple(problems))


def check_id_number(number: str, date_of_birth: date, sex: str) -> list[str]:
    """Return how a 12-digit number's structure disagrees with birth and sex."""
    problems = []
    if number[:3] not in PROVINCE_CODES:
        problems.append(f"province code {number[:3]} is not on the official list")
    digit = int(number[3])
    century = 1900 + 100 * (digit // 2)
    expected_sex = "female" if digit % 2 else "male"
    if expected_sex != sex:
        problems.append(f"the number's sex digit says {expected_sex}, the card {sex}")
    if not century <= date_of_birth.year < century + 100:
        problems.append(
            f"the number's century digit says born {century}-{century + 99}, "
            f"the card says {date_of_birth.year}"
        )
    if number[4:6] != f"{date_of_birth.year % 100:02d}":
        problems.append(
            f"the number's birth year digits are {number[4:6]}, the card says "
            f"{date_of_birth.year}"
        )
    return problems


def _split(text: str) -> list[str]:
    if len(text) > MAX_QR_TEXT:
        raise IdCardError("the QR text is too long to be a citizen ID card")
    cleaned = unicodedata.normalize("NFC", text.strip().lstrip("\ufeff"))
    fields = [part.strip() for part in cleaned.split("|")]
    if len(fields) not in (6, 7):
        raise IdCardError(
            f"the QR has {len(fields)} fields, a citizen ID card has 6 or 7; "
            "scan the QR on the front of the card"
        )
    return fields


def _parse_date(value: str, what: str) -> date:
    found = DATE.match(value)
    if not found:
        raise IdCardError(f"the QR's {what} {value!r} is not DDMMYYYY")
    day, month, year = (int(part) for part in found.groups())
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise IdCardError(f"the QR's {what} {value!r} is not a real date") from exc


def _check_dates(card: IdCard, today: date) -> list[str]:
    problems = []
    if card.date_of_birth > today:
        problems.append("the date of birth is in the future")
    if card.issue_date > today:
        problems.append("the issue date is in the future")
    if card.issue_date < card.date_of_birth:
        problems.append("the card was issued before the holder was born")
    return problems
