"""Decode QR codes from photos and scans with pyzbar (libzbar0).

The first pass reads the image as given (in greyscale). When it finds
nothing, the image is tried at a few scales (as is, or upscaled to at least
600 pixels on its short side; then 1.5 times larger, since zbar needs about
three pixels per module; then, for large photos, downscaled to 1600 pixels),
and at each scale through a fixed sequence of preparations until one yields
a code: an adaptive threshold of a sharpened image (which also cancels uneven
lighting), the plain image, a closed threshold, contrast equalisation (CLAHE)
with an unsharp mask against blur, and an Otsu threshold. The sequence is
deterministic, so a given image always gives the same answer.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError
from pyzbar import pyzbar

from models.errors import ImageError

logger = logging.getLogger(__name__)

Grey = npt.NDArray[np.uint8]
ImageInput = bytes | bytearray | npt.NDArray[np.generic] | Image.Image

SMALL_SIDE = 600
UPSCALE = 1.5
MAX_WORKING_SIDE = 4200
DOWNSCALE_ABOVE = 2400
DOWNSCALE_TO = 1600
MAX_INPUT_PIXELS = 80_000_000


def decode_qr_codes(image: ImageInput) -> list[str]:
    """Return the text of every QR code found in ``image`` (maybe none).

    Args:
        image: Encoded bytes (JPEG, PNG, ...), a numpy array (grey, BGR or
            BGRA, as OpenCV gives), or a PIL image.

    Raises:
        ImageError: the bytes are not a decodable image, or the array has a
            shape that is not an image.
    """
    grey = _to_grey(image)
    for name, prepared in _attempts(grey):
        found = _scan(prepared)
        if found:
            logger.debug("QR decoded after preparation %s", name)
            return found
    logger.debug("no QR code found in a %sx%s image", grey.shape[1], grey.shape[0])
    return []


def _scan(grey: Grey) -> list[str]:
    results = pyzbar.decode(grey, symbols=[pyzbar.ZBarSymbol.QRCODE])
    texts: list[str] = []
    for result in results:
        text = _text(result.data)
        if text not in texts:
            texts.append(text)
    return texts


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _attempts(grey: Grey) -> Iterator[tuple[str, Grey]]:
    yield "none", grey
    for scale in _scales(grey.shape[0], grey.shape[1]):
        resized = _resize(grey, scale)
        for name, prepare in PREPARATIONS:
            yield f"x{scale:.2f}/{name}", prepare(resized)


def _scales(height: int, width: int) -> list[float]:
    long_side, short_side = max(height, width), min(height, width)
    base = max(1.0, SMALL_SIDE / short_side)
    scales = [base]
    if long_side * base * UPSCALE <= MAX_WORKING_SIDE:
        scales.append(base * UPSCALE)
    if long_side > DOWNSCALE_ABOVE:
        scales.append(DOWNSCALE_TO / long_side)
    return scales


def _resize(grey: Grey, scale: float) -> Grey:
    if scale == 1.0:
        return grey
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=interpolation)
    return np.asarray(resized, np.uint8)


def _plain(grey: Grey) -> Grey:
    return grey


def _equalise(grey: Grey) -> Grey:
    clahe = cv2.createCLAHE(clipLimit=2.5, tileGridSize=(8, 8))
    return np.asarray(clahe.apply(grey), np.uint8)


def _sharpen(grey: Grey) -> Grey:
    blurred = cv2.GaussianBlur(grey, (0, 0), 2.0)
    return np.asarray(cv2.addWeighted(grey, 1.8, blurred, -0.8, 0), np.uint8)


def _otsu(grey: Grey) -> Grey:
    smooth = cv2.GaussianBlur(_equalise(grey), (3, 3), 0)
    _, binary = cv2.threshold(smooth, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return np.asarray(binary, np.uint8)


def _adaptive(grey: Grey) -> Grey:
    block = max(15, (min(grey.shape) // 40) | 1)
    binary = cv2.adaptiveThreshold(
        _sharpen(grey),
        255,
        cv2.ADAPTIVE_THRESH_GAUSSIAN_C,
        cv2.THRESH_BINARY,
        block,
        7,
    )
    return np.asarray(binary, np.uint8)


def _closed(grey: Grey) -> Grey:
    kernel = np.ones((2, 2), np.uint8)
    return np.asarray(cv2.morphologyEx(_adaptive(grey), cv2.MORPH_CLOSE, kernel))


# Ordered by how often each one rescued a simulated phone photo of a copy.
PREPARATIONS: tuple[tuple[str, Callable[[Grey], Grey]], ...] = (
    ("adaptive", _adaptive),
    ("plain", _plain),
    ("closed", _closed),
    ("sharpened", lambda grey: _sharpen(_equalise(grey))),
    ("otsu", _otsu),
)


def _to_grey(image: ImageInput) -> Grey:
    if isinstance(image, bytes | bytearray):
        return _decode_bytes(bytes(image))
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("L"), np.uint8)
    if isinstance(image, np.ndarray):
        return _array_to_grey(image)
    raise ImageError(
        f"cannot read a QR code from a {type(image).__name__}; pass image "
        "bytes, a numpy array or a PIL image"
    )


def _decode_bytes(data: bytes) -> Grey:
    if not data:
        raise ImageError("the image is empty; take the photo again")
    buffer = np.frombuffer(data, np.uint8)
    grey = cv2.imdecode(buffer, cv2.IMREAD_GRAYSCALE)
    if grey is not None:
        return np.asarray(grey, np.uint8)
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_INPUT_PIXELS:
                raise ImageError("the image is too large to search for a QR code")
            return np.asarray(opened.convert("L"), np.uint8)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ImageError(
            "the image cannot be decoded (corrupt or not an image); take the "
            "photo again"
        ) from exc


def _array_to_grey(array: npt.NDArray[np.generic]) -> Grey:
    if array.size == 0:
        raise ImageError("the image array is empty")
    pixels: Grey = np.ascontiguousarray(
        array if array.dtype == np.uint8 else np.clip(array, 0, 255), np.uint8
    )
    if pixels.ndim == 2:
        return pixels
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        code = cv2.COLOR_BGR2GRAY if pixels.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
        return np.asarray(cv2.cvtColor(pixels, code), np.uint8)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        return np.ascontiguousarray(pixels[:, :, 0])
    raise ImageError(f"an image array of shape {array.shape} is not an image")
