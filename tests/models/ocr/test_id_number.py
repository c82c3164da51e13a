"""Tests of reading the ID number with its structure, and of line ends."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from models.manifest import Manifest
from models.ocr.detection import extend_to_ink
from models.ocr.fields import extract_fields
from models.ocr.id_number import find_id_number, read_id_number, structure_score
from models.ocr.page import OcrLine, PageReader
from models.ocr.synthetic import available_fonts, camera_version, render_page

BOX = (0.0, 0.0, 10.0, 10.0)
BORN = date(1962, 2, 5)


def _lines(*texts: str) -> list[OcrLine]:
    return [OcrLine(text, BOX, 0.9) for text in texts]


def test_structure_score_counts_agreeing_parts() -> None:
    assert structure_score("025062836077", BORN, "male") == 3
    assert structure_score("025162836077", BORN, "male") == 2  # sex digit
    assert structure_score("025063836077", BORN, "male") == 2  # year digits
    assert structure_score("102506283607", BORN, "male") == 0
    assert structure_score("025062836077", None, None) == 1


def test_glued_label_character_is_dropped_by_structure() -> None:
    reading = read_id_number("S6/No-1025062836077", 3, BORN, "male")
    assert reading is not None
    assert reading.value == "025062836077"
    assert reading.adjusted and reading.line == 3


def test_lookalike_letters_become_digits() -> None:
    reading = read_id_number("S6/No-02209822837B", 0, date(1998, 1, 28), "male")
    assert reading is not None and reading.value == "022098228378"
    assert read_id_number("Số 22 Ba Đình, Sơn La", 0) is None


def test_labelled_lines_are_searched_first() -> None:
    texts = ["Điện thoại 001099123456", "Số định danh: 079199000123"]
    reading = find_id_number(texts, [1], date(1999, 1, 1), "male")
    assert reading is not None and reading.line == 1


def test_mangled_label_still_gives_the_number_as_corrected() -> None:
    fields = extract_fields(
        _lines(
            "CĂN CƯỚC CÔNG DÂN",
            "S6/No-1014068833908",
            "Ngày sinh / Date of birth: 14/01/1968",
            "Giới tính / Sex: Nam",
        )
    )
    number = fields["id_number"]
    assert number.value == "014068833908"
    assert number.problems == ()
    clean = extract_fields(
        _lines("Số / No.: 014068833908", "Ngày sinh: 14/01/1968", "Giới tính: Nam")
    )
    assert number.corrected and not clean["id_number"].corrected
    assert number.confidence < clean["id_number"].confidence


def test_a_changed_serial_digit_is_not_guessed() -> None:
    fields = extract_fields(
        _lines("Số / No.: 046184479180", "Ngày sinh: 12/01/1984", "Giới tính: Nữ")
    )
    assert fields["id_number"].value == "046184479180"


def test_line_end_follows_the_ink_to_a_word_gap() -> None:
    grey = np.full((40, 300), 250, dtype=np.uint8)
    grey[12:28, 10:60] = 30  # what the detector found
    grey[12:28, 66:120] = 30  # the rest of the line, after a letter gap
    grey[12:28, 200:240] = 30  # something far away: not the same line
    boxes = np.array([[8.0, 10.0, 62.0, 30.0, 0.9]], dtype=np.float32)
    right = float(extend_to_ink(grey, boxes)[0, 2])
    assert 120 <= right < 200


def test_line_end_stops_at_the_next_box() -> None:
    grey = np.full((40, 300), 250, dtype=np.uint8)
    grey[12:28, 10:200] = 30
    boxes = np.array(
        [[8.0, 10.0, 62.0, 30.0, 0.9], [100.0, 10.0, 200.0, 30.0, 0.9]],
        dtype=np.float32,
    )
    extended = extend_to_ink(grey, boxes)
    assert float(extended[0, 2]) <= 100
    assert float(extended[1, 2]) <= 300


def test_camera_id_cards_that_lost_their_number_now_give_it(
    manifest: Manifest, model_dir: Path
) -> None:
    # Calibration pages (not the bench's seeds 0-39) whose number was lost
    # to a mangled label (1044, 1092, 1188) or a line cut short (1100).
    reader = PageReader.from_manifest(manifest, model_dir, threads=1)
    fonts = available_fonts()
    for seed in (1044, 1092, 1100, 1188):
        page = render_page(seed, fonts[(seed // 4) % len(fonts)])
        assert page.document_type == "citizen_id_card"
        lines = reader.read(camera_version(page, seed).image).lines
        number = extract_fields(lines)["id_number"]
        assert number.value == page.fields["id_number"], seed


def test_a_slash_seen_inside_the_number_is_dropped() -> None:
    reading = read_id_number("S6/No:08/9099112650", 0, date(1999, 12, 28), "male")
    assert reading is not None
    assert reading.value == "089099112650"
    assert reading.structure_score == 3 and reading.adjusted
    assert read_id_number("Ngày sinh: 28/12/1999", 0) is None
