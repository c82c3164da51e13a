"""Decode image files and arrays into BGR pixels, refusing bad input clearly."""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from models.errors import ImageError

logger = logging.getLogger(__name__)

BgrImage = NDArray[np.uint8]

MAX_IMAGE_BYTES = 20_000_000
MAX_IMAGE_PIXELS = 40_000_000
MIN_IMAGE_SIDE = 32


def read_image(
    path: Path,
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
    min_side: int = MIN_IMAGE_SIDE,
) -> BgrImage:
    """Read an image file into an upright BGR array.

    Raises:
        ImageError: the file is missing, empty, corrupt, too large or too small.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageError(f"cannot read image {path}: {exc}") from exc
    if size > max_bytes:
        raise ImageError(
            f"image {path} is {size} bytes, more than the {max_bytes} allowed; "
            "send a smaller photo"
        )
    return decode_image(path.read_bytes(), max_pixels, min_side, name=str(path))


def decode_image(
    data: bytes,
    max_pixels: int = MAX_IMAGE_PIXELS,
    min_side: int = MIN_IMAGE_SIDE,
    name: str = "image",
) -> BgrImage:
    """Decode encoded image bytes (JPEG, PNG, ...) into an upright BGR array.

    Raises:
        ImageError: the bytes are empty, not an image, or of a refused size.
    """
    if not data:
        raise ImageError(f"{name} is empty; take the photo again")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                _check_size(opened.size, max_pixels, min_side, name)
                upright = ImageOps.exif_transpose(opened)
                rgb = np.asarray(upright.convert("RGB"), dtype=np.uint8)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(
            f"{name} is not a readable image (unknown or damaged format); "
            "send a JPEG or PNG photo"
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"{name} is not a readable image: {exc}") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{name} is too large to decode safely") from exc
    return np.ascontiguousarray(rgb[:, :, ::-1])


def as_bgr(image: NDArray[Any], min_side: int = MIN_IMAGE_SIDE) -> BgrImage:
    """Return a camera frame as 3-channel uint8 BGR (grey and BGRA accepted).

    Raises:
        ImageError: the array has an unsupported shape, type or size.
    """
    if image.dtype != np.uint8:
        raise ImageError(f"image pixels are {image.dtype}, expected uint8")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ImageError(
            f"image has shape {image.shape}; expected HxW, HxWx3 (BGR) or HxWx4"
        )
    _check_size((image.shape[1], image.shape[0]), MAX_IMAGE_PIXELS, min_side, "image")
    return np.ascontiguousarray(image[:, :, :3])


def _check_size(
    size: tuple[int, int], max_pixels: int, min_side: int, name: str
) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageError(
            f"{name} is {width}x{height} pixels, more than {max_pixels} allowed"
        )
    if min(width, height) < min_side:
        raise ImageError(
            f"{name} is {width}x{height} pixels, too small (under {min_side}); "
            "move closer or use a sharper photo"
        )
