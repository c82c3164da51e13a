"""Load the recognition charset and pre-processing constants of the OCR models."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from models.errors import InferenceError
from models.files import checked_path
from models.manifest import ModelEntry


@dataclass(frozen=True)
class OcrConstants:
    """The charset (CTC index 1 onwards) and the crop and scale constants."""

    charset: tuple[str, ...]
    max_width: int
    pad_y: float
    pad_x: float
    det_long_side: int


def load_constants(entry: ModelEntry, model_dir: Path) -> OcrConstants:
    """Read the hash-checked ``meta.json`` of the OCR models.

    Raises:
        ModelMissingError, ModelHashError: the file is absent or damaged.
        InferenceError: the file lacks a needed key.
    """
    path = checked_path(entry, model_dir)
    data = json.loads(path.read_text(encoding="utf-8"))
    try:
        return OcrConstants(
            charset=tuple(data["charset"]),
            max_width=int(data["max_width"]),
            pad_y=float(data["pad_y"]),
            pad_x=float(data["pad_x"]),
            det_long_side=int(data["det_long_side"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InferenceError(f"{path} lacks an OCR constant: {exc}") from exc
