"""The models section of the kiosk's configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from kiosk.settings import Section

DEFAULT_MODEL_DIR = Path("var/models")


class ModelsSection(Section):
    """Where model files live and how inference runs."""

    model_dir: Path = Field(
        DEFAULT_MODEL_DIR,
        description="Directory the model files are fetched into (outside git).",
    )
    threads: int = Field(
        1, ge=1, le=16, description="Threads per inference session (intra-op)."
    )
    warm_up: bool = Field(
        True, description="Run each model once on zeros when it is loaded."
    )
    face_threshold: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description="Cosine threshold for face verification; None: the manifest's.",
    )
    max_image_bytes: int = Field(
        20_000_000, ge=10_000, le=200_000_000, description="Largest image file."
    )
    max_image_pixels: int = Field(
        40_000_000,
        ge=100_000,
        le=200_000_000,
        description="Most pixels in one image; larger is refused as a bomb.",
    )
    min_image_side: int = Field(
        32, ge=8, le=1024, description="Smallest acceptable image side in pixels."
    )
    variants: dict[str, Literal["fp32", "int8"]] = Field(
        default_factory=dict,
        max_length=32,
        description=(
            "Precision per model name (fp32 when absent); an int8 variant is "
            "used only if `kiosk models quantize` recorded it within its bound."
        ),
    )
