"""Invent the content of the four document types, with its ground truth.

Each document is a list of text lines (in reading order) and the fields a
reader must extract from it. Names are drawn from the lists of common
names in ``models/data`` (names on ID cards and birth certificates are in
upper case, with their tone marks); ID numbers have a valid structure
(province code, century and sex digit, birth year); dates use the
Vietnamese forms (DD/MM/YYYY, or "ngày D tháng M năm YYYY"). Every person
is invented.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from models.id_card import PROVINCE_CODES
from models.ocr.lexicon import read_list

DOCUMENT_TYPES = (
    "citizen_id_card",
    "birth_certificate",
    "diploma",
    "residence_confirmation",
)
HEADER = ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc")
UNIVERSITIES = (
    "ĐẠI HỌC BÁCH KHOA HÀ NỘI",
    "ĐẠI HỌC KINH TẾ QUỐC DÂN",
    "ĐẠI HỌC CẦN THƠ",
    "ĐẠI HỌC SƯ PHẠM HÀ NỘI",
    "ĐẠI HỌC ĐÀ NẴNG",
)
MAJORS = (
    "Công nghệ thông tin",
    "Kế toán",
    "Quản trị kinh doanh",
    "Luật",
    "Kỹ thuật xây dựng",
    "Ngôn ngữ Anh",
    "Tài chính - Ngân hàng",
)
RANKS = ("Xuất sắc", "Giỏi", "Khá", "Trung bình")
ETHNIC_GROUPS = ("Kinh", "Kinh", "Kinh", "Tày", "Thái", "Mường", "Khmer", "Nùng")
RELATIONS = ("Chủ hộ", "Con đẻ", "Vợ", "Chồng")


@dataclass(frozen=True)
class Person:
    """An invented citizen."""

    full_name: str
    sex: str  # "male" or "female"
    date_of_birth: date
    id_number: str
    province: str


@dataclass(frozen=True)
class Document:
    """The lines of one invented document and its true fields."""

    document_type: str
    lines: list[str]
    fields: dict[str, str]
    upper_name: bool


def invent_person(
    rng: random.Random, first_year: int = 1950, sex: str | None = None
) -> Person:
    """Return an invented citizen with a structurally valid ID number."""
    sex = sex or rng.choice(("male", "female"))
    suffix = "male" if sex == "male" else "female"
    family = _common(rng, read_list("family_names.txt"))
    middle = _common(rng, read_list(f"middle_names_{suffix}.txt"))
    given = _common(rng, read_list(f"given_names_{suffix}.txt"))
    born = date(rng.randint(first_year, 2006), rng.randint(1, 12), rng.randint(1, 28))
    code = rng.choice(sorted(PROVINCE_CODES))
    century_digit = 2 * ((born.year - 1900) // 100) + (sex == "female")
    tail = "".join(str(rng.randint(0, 9)) for _ in range(6))
    number = f"{code}{century_digit}{born.year % 100:02d}{tail}"
    return Person(f"{family} {middle} {given}", sex, born, number, PROVINCE_CODES[code])


def invent_document(rng: random.Random, document_type: str) -> Document:
    """Return one invented document of ``document_type``."""
    builders = {
        "citizen_id_card": _id_card,
        "birth_certificate": _birth_certificate,
        "diploma": _diploma,
        "residence_confirmation": _residence_confirmation,
    }
    return builders[document_type](rng)


def _common(rng: random.Random, items: list[str]) -> str:
    """Pick from a most-common-first list, favouring its head."""
    return items[min(len(items) - 1, int(rng.expovariate(1 / 8)))]


def _slash(day: date) -> str:
    return f"{day.day:02d}/{day.month:02d}/{day.year}"


def _wordy(place: str, day: date) -> str:
    return f"{place}, ngày {day.day} tháng {day.month} năm {day.year}"


def _address(rng: random.Random, province: str) -> str:
    places = read_list("place_names.txt")
    street, ward = rng.sample(places, 2)
    kind = rng.choice(("Phường", "Xã"))
    return f"Số {rng.randint(1, 300)} {street}, {kind} {ward}, {province}"


def _after(rng: random.Random, born: date, years: int) -> date:
    year = min(2025, born.year + years + rng.randint(0, 3))
    return date(year, rng.randint(1, 12), rng.randint(1, 28))


def _id_card(rng: random.Random) -> Document:
    person = invent_person(rng, 1960)
    expiry = date(person.date_of_birth.year + 60, 12, 31)
    sex = "Nam" if person.sex == "male" else "Nữ"
    lines = [
        *HEADER,
        "CĂN CƯỚC CÔNG DÂN",
        f"Số / No.: {person.id_number}",
        "Họ và tên / Full name:",
        person.full_name.upper(),
        f"Ngày sinh / Date of birth: {_slash(person.date_of_birth)}",
        f"Giới tính / Sex: {sex}",
        "Quốc tịch / Nationality: Việt Nam",
        "Quê quán / Place of origin:",
        person.province,
        "Nơi thường trú / Place of residence:",
        _address(rng, person.province),
        f"Có giá trị đến: {_slash(expiry)}",
    ]
    fields = {
        "full_name": person.full_name.upper(),
        "date_of_birth": person.date_of_birth.isoformat(),
        "id_number": person.id_number,
    }
    return Document("citizen_id_card", lines, fields, True)


def _birth_certificate(rng: random.Random) -> Document:
    person = invent_person(rng, 1990)
    mother = invent_person(rng, 1960, "female")
    registered = _after(rng, person.date_of_birth, 0)
    number = f"{rng.randint(1, 999)}/{registered.year}"
    sex = "Nam" if person.sex == "male" else "Nữ"
    lines = [
        *HEADER,
        "GIẤY KHAI SINH",
        f"Số: {number}",
        f"Họ, chữ đệm, tên: {person.full_name.upper()}",
        f"Ngày, tháng, năm sinh: {_slash(person.date_of_birth)}",
        f"Giới tính: {sex} Dân tộc: {rng.choice(ETHNIC_GROUPS)}",
        "Quốc tịch: Việt Nam",
        f"Nơi sinh: Bệnh viện Phụ sản {person.province}",
        f"Quê quán: {person.province}",
        f"Số định danh cá nhân: {person.id_number}",
        f"Họ, chữ đệm, tên người mẹ: {mother.full_name.upper()}",
        f"Nơi đăng ký khai sinh: Ủy ban nhân dân {person.province}",
        f"Ngày, tháng, năm đăng ký: {_slash(registered)}",
    ]
    fields = {
        "full_name": person.full_name.upper(),
        "date_of_birth": person.date_of_birth.isoformat(),
        "id_number": person.id_number,
        "document_number": number,
        "issue_date": registered.isoformat(),
    }
    return Document("birth_certificate", lines, fields, True)


def _diploma(rng: random.Random) -> Document:
    person = invent_person(rng, 1970)
    issued = _after(rng, person.date_of_birth, 22)
    title = "Ông" if person.sex == "male" else "Bà"
    serial = f"{rng.choice('ABCDEK')}{rng.randint(100000, 999999)}"
    lines = [
        *HEADER,
        f"HIỆU TRƯỞNG TRƯỜNG {rng.choice(UNIVERSITIES)}",
        "cấp",
        "BẰNG CỬ NHÂN",
        f"Ngành: {rng.choice(MAJORS)}",
        f"Cho: {title} {person.full_name}",
        f"Ngày sinh: {_slash(person.date_of_birth)}",
        f"Xếp loại tốt nghiệp: {rng.choice(RANKS)}",
        "Hình thức đào tạo: Chính quy",
        _wordy("Hà Nội", issued),
        f"Số hiệu: {serial}",
        f"Số vào sổ cấp bằng: {rng.randint(100, 9999)}/{issued.year}",
    ]
    fields = {
        "full_name": person.full_name,
        "date_of_birth": person.date_of_birth.isoformat(),
        "document_number": serial,
        "issue_date": issued.isoformat(),
    }
    return Document("diploma", lines, fields, False)


def _residence_confirmation(rng: random.Random) -> Document:
    person = invent_person(rng)
    issued = date(rng.randint(2023, 2025), rng.randint(1, 12), rng.randint(1, 28))
    number = f"{rng.randint(1, 9999)}/XN"
    sex = "Nam" if person.sex == "male" else "Nữ"
    lines = [
        f"CÔNG AN {person.province.upper()}",
        *HEADER,
        f"Số: {number}",
        "GIẤY XÁC NHẬN THÔNG TIN VỀ CƯ TRÚ",
        f"Họ, chữ đệm và tên: {person.full_name}",
        f"Ngày, tháng, năm sinh: {_slash(person.date_of_birth)}",
        f"Giới tính: {sex}",
        f"Số định danh cá nhân: {person.id_number}",
        f"Nơi thường trú: {_address(rng, person.province)}",
        f"Quan hệ với chủ hộ: {rng.choice(RELATIONS)}",
        _wordy(person.province, issued),
    ]
    fields = {
        "full_name": person.full_name,
        "date_of_birth": person.date_of_birth.isoformat(),
        "id_number": person.id_number,
        "document_number": number,
        "issue_date": issued.isoformat(),
    }
    return Document("residence_confirmation", lines, fields, False)
