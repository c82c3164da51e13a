"""Logs never carry a full citizen ID number, whatever the caller passed."""

from __future__ import annotations

import io
import json
import logging

import pytest

from kiosk.logs import JsonFormatter, MaskingFilter, MaskingFormatter, mask_id_number


def test_mask_keeps_only_the_ends() -> None:
    assert mask_id_number("số 079190000001 ok") == "số 079******001 ok"
    assert mask_id_number("phone 0912345678") == "phone 0912345678"


@pytest.mark.parametrize("json_lines", [False, True])
def test_records_and_tracebacks_are_masked(json_lines: bool) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskingFilter())
    handler.setFormatter(JsonFormatter() if json_lines else MaskingFormatter())
    logger = logging.getLogger(f"test.masking.{json_lines}")
    logger.addHandler(handler)
    logger.propagate = False

    logger.warning("citizen %s arrived", "001085000123")
    try:
        raise ValueError("bad number 001085000123")
    except ValueError:
        logger.exception("failed")

    text = stream.getvalue()
    assert "001085000123" not in text
    assert "001******123" in text
    if json_lines:
        assert json.loads(text.splitlines()[0])["level"] == "warning"
