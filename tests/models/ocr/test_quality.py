"""Tests of the capture quality checks on generated camera frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.ocr.quality import assess_capture, find_page, rectify
from models.ocr.synthetic import available_fonts, render_page

CORNERS = np.array([[180, 90], [1100, 130], [1080, 860], [160, 820]], np.float32)


@pytest.fixture(scope="module")
def page() -> np.ndarray:
    """A rendered page with paper at the grey a camera sees."""
    image = render_page(1, available_fonts()[0]).image.astype(np.float32)
    return np.asarray(image * 0.85 + 10, np.uint8)


def _frame(page: np.ndarray, corners: np.ndarray = CORNERS) -> np.ndarray:
    h, w = page.shape[:2]
    source = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    matrix = cv2.getPerspectiveTransform(source, corners)
    desk = np.full((960, 1280, 3), 55, np.uint8)
    warped = cv2.warpPerspective(page, matrix, (1280, 960))
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), matrix, (1280, 960))
    desk[mask > 0] = warped[mask > 0]
    return desk


def _codes(frame: np.ndarray, heights: tuple[float, ...] = ()) -> set[str]:
    return {finding.code for finding in assess_capture(frame, heights)}


def test_good_frame_has_no_findings(page: np.ndarray) -> None:
    frame = _frame(page)
    assert _codes(frame, (24.0, 25.0)) == set()
    corners = find_page(frame)
    assert corners is not None
    assert np.abs(corners - CORNERS).max() < 12


def test_rectified_page_keeps_its_shape(page: np.ndarray) -> None:
    frame = _frame(page)
    corners = find_page(frame)
    assert corners is not None
    flat = rectify(frame, corners)
    top, left = CORNERS[1] - CORNERS[0], CORNERS[3] - CORNERS[0]
    expected = float(np.linalg.norm(top) / np.linalg.norm(left))
    assert flat.shape[1] / flat.shape[0] == pytest.approx(expected, rel=0.1)
    assert float(flat.mean()) > 150  # the page, not the desk


def test_blur_is_reported(page: np.ndarray) -> None:
    blurred = cv2.GaussianBlur(_frame(page), (0, 0), 4)
    assert "blurred" in _codes(blurred)


def test_glare_is_reported(page: np.ndarray) -> None:
    frame = _frame(page)
    cv2.ellipse(frame, (600, 450), (90, 60), 0, 0, 360, (255, 255, 255), -1)
    assert "glare" in _codes(frame)


def test_cut_off_page_is_reported(page: np.ndarray) -> None:
    shifted = CORNERS + np.array([350, 0], np.float32)
    codes = _codes(_frame(page, shifted))
    assert codes & {"corner_outside", "no_document"}


def test_empty_desk_has_no_document() -> None:
    assert "no_document" in _codes(np.full((960, 1280, 3), 55, np.uint8))


def test_small_text_is_reported(page: np.ndarray) -> None:
    messages = assess_capture(_frame(page), (9.0, 10.0, 11.0))
    small = [finding for finding in messages if finding.code == "low_resolution"]
    assert small and "closer" in small[0].message
