"""Tests of the domain correction of recognised lines."""

from __future__ import annotations

from models.ocr.correction import (
    bounded_distance,
    correct_line,
    correct_lines,
    restore_name,
)


def test_form_headings_and_labels_get_their_spelling() -> None:
    assert correct_line("CÔNG HÒA XÃ HÔI CHÚ NGHĨA VIỆT NAM") == (
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
    )
    assert correct_line("Độclập - Tựdo - Hạnh phúc") == "Độc lập - Tự do - Hạnh phúc"
    assert correct_line("S6/No.:092192475938") == "Số / No.: 092192475938"
    assert correct_line("Ho và tên /Full name") == "Họ và tên / Full name:"
    assert correct_line("Giớitính: Nù") == "Giới tính: Nữ"


def test_values_keep_digits_and_unknown_words() -> None:
    assert correct_line("Quề quán: 12 Lũc Khoa") == "Quê quán: 12 Lũc Khoa"
    assert correct_line("lúc 10:30") == "lúc 10:30"
    assert correct_line("Số định danh cá nhân: 036302908301") == (
        "Số định danh cá nhân: 036302908301"
    )


def test_places_and_phrases_get_their_marks() -> None:
    assert correct_line("Nơi sinh: Bệnh viện Phụ sản Quẩng Tri") == (
        "Nơi sinh: Bệnh viện Phụ sản Quảng Trị"
    )
    assert correct_line("Uy ban nhân dân Cấn Thơ") == "Ủy ban nhân dân Cần Thơ"
    assert correct_line("TRƯỜNG ĐẠI HỌC CÃN THƠ") == "TRƯỜNG ĐẠI HỌC CẦN THƠ"


def test_wordy_dates_are_respelled() -> None:
    assert correct_line("Tuyên Quang, ngầy 16 tháng 12 nắm 2023") == (
        "Tuyên Quang, ngày 16 tháng 12 năm 2023"
    )


def test_upper_case_names_get_their_tone_marks_back() -> None:
    assert restore_name("NGUYÊN VĂN HIÊU") == ("NGUYỄN VĂN HIẾU", True)
    assert restore_name("Lê Thị Hương") == ("Lê Thị Hương", False)
    assert restore_name("Bà Trân Thi Lan")[0] == "Bà Trần Thị Lan"
    # A name that is not on the lists is left as read.
    assert restore_name("XYZ ABC")[0] == "XYZ ABC"


def test_names_follow_their_labels_and_the_stated_sex() -> None:
    lines = correct_lines(
        [
            "Ho và tên /Full name:",
            "BÙI HOÀI HIÊN",
            "Giới tính / Sex: Nữ",
            "Họ, chữ đệm, tên người mẹ: PHẬM THI LAN",
        ]
    )
    assert lines[1] == "BÙI HOÀI HIỀN"
    assert lines[3] == "Họ, chữ đệm, tên người mẹ: PHẠM THỊ LAN"
    male = correct_lines(["Họ và tên: BÙI HOÀI HIÊN", "Giới tính: Nam"])
    assert male[0] == "Họ và tên: BÙI HOÀI HIỂN"


def test_bounded_distance_stops_early() -> None:
    assert bounded_distance("kitten", "sitting", 5) == 3
    assert bounded_distance("aaaaaa", "bbbbbb", 2) == 3


def test_glued_and_mixed_case_names_are_made_whole() -> None:
    assert restore_name("LÊHÔNGLAN") == ("LÊ HỒNG LAN", True)
    assert restore_name("Đổ LAN ANH")[0] == "ĐỖ LAN ANH"
    assert correct_line("Số heu: E101539") == "Số hiệu: E101539"
