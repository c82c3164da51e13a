"""Tests of document classification, field extraction and cross-checks."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from models.id_card import IdCard
from models.manifest import Manifest
from models.ocr.fields import classify, cross_check, extract_fields, fold
from models.ocr.page import OcrLine, PageReader
from models.ocr.synthetic import available_fonts, camera_version, render_page

BOX = (0.0, 0.0, 10.0, 10.0)


def _lines(*texts: str) -> list[OcrLine]:
    return [OcrLine(text, BOX, 0.9) for text in texts]


def _citizen(name: str = "Lê Thị Hương", number: str = "077631706690") -> IdCard:
    return IdCard(
        id_number=number,
        old_id_number=None,
        full_name=name,
        date_of_birth=date(1998, 8, 4),
        sex="female",
        address="Đà Nẵng",
        issue_date=date(2021, 1, 1),
        province="Bà Rịa - Vũng Tàu",
        inconsistencies=(),
    )


def test_fold_keeps_one_character_per_character() -> None:
    assert fold("Họ, CHỮ ĐỆM và Tên") == "ho, chu dem va ten"
    assert len(fold("Nguyễn")) == len("Nguyễn")


def test_fields_are_found_despite_lost_tone_marks() -> None:
    lines = _lines(
        "GIAY XAC NHAN THONG TIN VE CU TRU",
        "Số: 123/GXN",
        "Ho, chu đem va ten: Lê Thị Hương",
        "Ngay, thang, nam sinh: 04/08/1998",
        "Số định danh cá nhân: 077631706690",
        "Cấp ngày 24/04/2024 tại Công an Đà Nẵng",
    )
    fields = extract_fields(lines)
    assert classify(lines) == "residence_confirmation"
    assert fields["full_name"].value == "Lê Thị Hương"
    assert fields["date_of_birth"].value == "1998-08-04"
    assert fields["id_number"].value == "077631706690"
    assert fields["issue_date"].value == "2024-04-24"
    assert fields["document_number"].value == "123/GXN"
    assert all(f.confidence == pytest.approx(0.9) for f in fields.values())


def test_invalid_values_get_low_confidence_not_a_fix() -> None:
    fields = extract_fields(
        _lines("Ngày sinh: 31/02/1998", "Số định danh cá nhân: 003O31706690")
    )
    assert fields["date_of_birth"].value == "1998-02-31"
    assert fields["date_of_birth"].confidence < 0.5
    assert fields["id_number"].value == "003031706690"
    assert fields["id_number"].confidence < 0.5  # 003 is no province


def test_cross_check_flags_differences_and_masks_numbers() -> None:
    fields = extract_fields(
        _lines("Họ và tên: LÊ THỊ HƯƠNG", "Số định danh cá nhân: 077631706691")
    )
    mismatches = cross_check(fields, _citizen())
    assert [m.field for m in mismatches] == ["id_number"]
    assert mismatches[0].read == "077******691"
    tone = cross_check(extract_fields(_lines("Họ và tên: Lê Thị Hướng")), _citizen())
    assert [m.field for m in tone] == ["full_name"]


def test_other_documents_are_classified() -> None:
    assert classify(_lines("GIẤY KHAI SINH")) == "birth_certificate"
    assert classify(_lines("BẰNG TỐT NGHIỆP TRUNG HỌC PHỔ THÔNG")) == "diploma"
    assert classify(_lines("CĂN CƯỚC CÔNG DÂN")) == "citizen_id_card"
    assert classify(_lines("Thông báo")) is None


def test_fields_from_rendered_pages(manifest: Manifest, model_dir: Path) -> None:
    reader = PageReader.from_manifest(manifest, model_dir, threads=1)
    fonts = available_fonts()
    exact, total = 0, 0
    for seed in range(4):
        page = render_page(seed, fonts[(seed + 1) % len(fonts)])
        for image in (page.image, camera_version(page, seed).image):
            lines = reader.read(image).lines
            assert classify(lines) == page.document_type
            fields = extract_fields(lines)
            for name, truth in page.fields.items():
                total += 1
                exact += name in fields and fields[name].value == truth
    assert total >= 30
    assert exact >= total - 1


def test_label_alone_takes_the_next_line_and_honorifics_go() -> None:
    fields = extract_fields(
        _lines("Họ và tên / Full name:", "NGUYỄN VĂN HIẾU", "Cho: Ông Lê Văn An")
    )
    assert fields["full_name"].value == "NGUYỄN VĂN HIẾU"
    assert fields["full_name"].line == 1
    diploma = extract_fields(_lines("Cho: Bà Trần Thị Lan"))
    assert diploma["full_name"].value == "Trần Thị Lan"


def test_mother_is_not_the_holder() -> None:
    fields = extract_fields(_lines("Họ, chữ đệm, tên người mẹ: TRẦN THỊ LAN"))
    assert "full_name" not in fields


def test_id_number_structure_is_checked_against_the_page() -> None:
    lines = _lines(
        "Ngày sinh: 04/08/1998",
        "Giới tính: Nữ",
        "Số định danh cá nhân: 077098706690",
    )
    fields = extract_fields(lines)
    assert fields["id_number"].confidence < 0.5
    assert any("sex" in problem for problem in fields["id_number"].problems)
    good = extract_fields([*lines[:2], _lines("Số định danh: 077198706690")[0]])
    assert good["id_number"].problems == ()


def test_corrected_fields_are_flagged_and_keep_the_reading() -> None:
    line = OcrLine("Họ và tên: LÊ THỊ HIẾU", BOX, 0.9, "Ho và tên: LÊ THI HIÊU")
    field = extract_fields([line])["full_name"]
    assert field.corrected
    assert field.raw == "Ho và tên: LÊ THI HIÊU"
    assert field.confidence < 0.9
    mismatch = cross_check({"full_name": field}, _citizen(name="Lê Thị Hiểu"))
    assert [m.field for m in mismatch] == ["full_name"]
    assert mismatch[0].raw == "Ho và tên: LÊ THI HIÊU"


def test_wordy_issue_dates_are_read() -> None:
    fields = extract_fields(_lines("Nam Định, ngày 3 tháng 7 năm 2024"))
    assert fields["issue_date"].value == "2024-07-03"


def test_letters_read_for_digits_give_a_doubtful_date() -> None:
    fields = extract_fields(_lines("Ngày sinh / Date of birth: 01/0B/1975"))
    assert fields["date_of_birth"].value == "1975-08-01"
    assert fields["date_of_birth"].confidence < 0.5
