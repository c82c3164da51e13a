"""Tests of the vote between three readings of a 12-digit number."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from numpy.typing import NDArray

from models.manifest import Manifest
from models.ocr.documents import DOCUMENT_TYPES
from models.ocr.numbers import GROWTHS, find_number, reread_numbers, vote
from models.ocr.page import PageReader
from models.ocr.recognition import LineRecognizer, LineText
from models.ocr.synthetic import available_fonts, camera_version
from models.ocr.synthetic import render_page as render


def reading(characters: str, sure: float = 0.99, **unsure: float) -> LineText:
    """A reading with ``sure`` for every character except ``unsure`` positions."""
    probabilities = [sure] * len(characters)
    for position, probability in unsure.items():
        probabilities[int(position.lstrip("p"))] = probability
    return LineText(characters, 0.9, characters, tuple(probabilities))


class ScriptedRecognizer:
    """Answers each call to ``read`` with the next prepared readings."""

    def __init__(self, answers: list[list[LineText]]) -> None:
        self.answers = answers
        self.boxes: list[NDArray[np.float32]] = []

    def read(self, grey: NDArray[np.uint8], boxes: NDArray[np.float32]) -> Any:
        self.boxes.append(boxes)
        return self.answers.pop(0)


def test_the_window_with_a_province_code_is_taken() -> None:
    number = find_number(reading("No:1034094104823"))
    assert number is not None
    assert number.digits == "034094104823"
    assert number.positions == tuple(range(4, 16))


def test_letters_read_for_digits_weigh_half() -> None:
    number = find_number(reading("01507183204B"))
    assert number is not None
    assert number.digits == "015071832048"
    assert number.weights[-1] == pytest.approx(0.99 / 2)
    assert find_number(reading("Số 22 Ba Đình")) is None


def test_each_digit_goes_to_the_most_probability() -> None:
    base = find_number(reading("046184479180", p9=0.48))
    taller = find_number(reading("046184479380", p3=0.5, p9=0.95))
    tallest = find_number(reading("046184479180", p9=0.50))
    assert base and taller and tallest
    assert vote([base, taller, tallest]) == "046184479180"  # 0.98 against 0.95
    assert vote([base, taller]) == "046184479380"


def test_reread_replaces_only_the_digits_of_numbered_lines() -> None:
    texts = [
        reading("Họ tên: NGUYỄN VĂN AN"),
        reading("Số/No.: 046184479180", p17=0.3),
    ]
    again = [reading("Số/No.: 046184479380", p17=0.9)]
    recognizer = ScriptedRecognizer([again] * len(GROWTHS))
    boxes = np.array([[10, 10, 200, 30], [10, 40, 200, 60]], dtype=np.float32)
    result = reread_numbers(
        cast(LineRecognizer, recognizer), np.zeros((80, 220), np.uint8), boxes, texts
    )
    assert result[0] is texts[0]
    assert result[1].text == "Số/No.: 046184479380"
    assert result[1].confidence == texts[1].confidence
    # only the numbered line is read again, from taller boxes
    assert [len(b) for b in recognizer.boxes] == [1, 1, 1]
    heights = [float(b[0, 3] - b[0, 1]) for b in recognizer.boxes]
    assert heights == pytest.approx([24.0, 28.0, 32.0])


def test_pages_without_numbers_are_not_read_again() -> None:
    recognizer = ScriptedRecognizer([])
    texts = [reading("Ngày sinh: 12/01/1984")]
    boxes = np.array([[0, 0, 10, 10]], dtype=np.float32)
    result = reread_numbers(
        cast(LineRecognizer, recognizer), np.zeros((20, 20), np.uint8), boxes, texts
    )
    assert result == texts and recognizer.boxes == []


def test_a_misread_serial_digit_is_read_right(
    manifest: Manifest, model_dir: Path
) -> None:
    # Generated camera page 12: one reading gives ...479180 for ...479380.
    reader = PageReader.from_manifest(manifest, model_dir, threads=1)
    fonts = available_fonts()
    page = render(12, fonts[(12 // len(DOCUMENT_TYPES)) % len(fonts)])
    camera = camera_version(page, 12)
    assert page.fields["id_number"] == "046184479380"
    assert "046184479380" in reader.read(camera.image).text


def test_a_slash_inside_the_number_goes_when_it_is_rewritten() -> None:
    texts = [reading("No: 08/9099112658", p16=0.4)]
    again = [reading("No: 089099112650")]
    recognizer = ScriptedRecognizer([again] * len(GROWTHS))
    boxes = np.array([[10, 10, 200, 30]], dtype=np.float32)
    result = reread_numbers(
        cast(LineRecognizer, recognizer), np.zeros((40, 220), np.uint8), boxes, texts
    )
    assert result[0].text == "No: 089099112650"
