"""Tests for QR decoding, down to a phone photo of a printed copy."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import segno
from PIL import Image

from cloud_bridge.render import render_copy
from models.errors import ImageError
from models.qr import decode_qr_codes
from protocol.seal import TrustList, verify_qr_payload
from tests.cloud_bridge.copies import ISSUE_DATE, OFFICE_CODE, sealed_copy
from tests.cloud_bridge.samples import jpeg_bytes, scan_page
from tests.protocol.seal_keys import make_seal_certificate

PAYLOAD = "HTTPS://CHUNGTHUC.EXAMPLE.VN/C/ABCD VC1:6BF+70790T9WJWG.FKY*4GO0"


def qr_image(text: str, scale: int = 6) -> Image.Image:
    out = io.BytesIO()
    segno.make(text, error="q", micro=False).save(out, kind="png", scale=scale)
    return Image.open(io.BytesIO(out.getvalue())).convert("L")


def test_decodes_bytes_arrays_and_pil_images() -> None:
    image = qr_image(PAYLOAD)
    png = io.BytesIO()
    image.save(png, "PNG")
    bgr = cv2.cvtColor(np.asarray(image), cv2.COLOR_GRAY2BGR)
    assert decode_qr_codes(png.getvalue()) == [PAYLOAD]
    assert decode_qr_codes(image) == [PAYLOAD]
    assert decode_qr_codes(np.asarray(image)) == [PAYLOAD]
    assert decode_qr_codes(bgr) == [PAYLOAD]


def test_image_without_code_gives_empty_list() -> None:
    assert decode_qr_codes(scan_page((400, 560))) == []


def test_small_low_contrast_code_needs_preparation() -> None:
    image = np.asarray(qr_image(PAYLOAD, scale=2), np.float32)
    faded = (110 + image * (60 / 255)).astype(np.uint8)
    assert decode_qr_codes(faded) == [PAYLOAD]


@pytest.mark.parametrize("data", [b"", b"\x89PNG\r\n\x1a\nbroken", b"not an image"])
def test_corrupt_bytes_raise_image_error(data: bytes) -> None:
    with pytest.raises(ImageError):
        decode_qr_codes(data)


def test_bad_array_shape_raises_image_error() -> None:
    with pytest.raises(ImageError, match="not an image"):
        decode_qr_codes(np.zeros((4, 4, 7), np.uint8))


def phone_photo(page: npt.NDArray[np.uint8], seed: int) -> bytes:
    """Return a JPEG (quality 60) that looks like a phone photo of ``page``."""
    rng = np.random.default_rng(seed)
    height, width = page.shape[:2]
    canvas_w, canvas_h = int(width * 1.35), int(height * 1.3)
    angle = np.deg2rad(rng.uniform(10, 20) * rng.choice([-1, 1]))
    centre = np.array([canvas_w / 2, canvas_h / 2])
    corners = np.array(
        [[0, 0], [width, 0], [width, height], [0, height]], np.float32
    ) - np.array([width / 2, height / 2])
    rotation = np.array(
        [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    )
    target = corners @ rotation.T * 0.82
    tilt = rng.uniform(0.06, 0.1) * width
    target[0] += [tilt, tilt * 0.5]
    target[1] += [-tilt, tilt * 0.5]
    target += centre
    matrix = cv2.getPerspectiveTransform(
        (corners + np.array([width / 2, height / 2])).astype(np.float32),
        target.astype(np.float32),
    )
    photo = cv2.warpPerspective(
        page, matrix, (canvas_w, canvas_h), borderValue=(70, 80, 95)
    ).astype(np.float32)
    ys, xs = np.mgrid[0:canvas_h, 0:canvas_w].astype(np.float32)
    light = 0.55 + 0.5 * (xs / canvas_w) * (1 - 0.4 * ys / canvas_h)
    photo *= light[:, :, None]
    blurred = cv2.GaussianBlur(photo, (0, 0), 1.1)
    noisy = blurred + rng.normal(0, 3, (canvas_h, canvas_w, 1)).astype(np.float32)
    final = np.clip(noisy, 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", final, [cv2.IMWRITE_JPEG_QUALITY, 60])
    assert ok
    return bytes(encoded)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_phone_photo_of_printed_copy_verifies_offline(
    seed: int, tmp_path: Path
) -> None:
    key, certificate = make_seal_certificate("Seal PHUONG-MAU")
    trust_list = TrustList.from_certificates(
        [(certificate, OFFICE_CODE, "UBND Phường Mẫu")]
    )
    scans = [jpeg_bytes(scan_page((1240, 1754), seed=n)) for n in range(2)]
    copy = sealed_copy(scans, key, certificate)
    pdf_path = tmp_path / "copy.pdf"
    pdf_path.write_bytes(render_copy(copy, validate=False))
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            "150",
            "-f",
            "2",
            "-l",
            "2",
            "-singlefile",
            str(pdf_path),
            str(tmp_path / "last"),
        ],
        check=True,
    )
    page = cv2.imread(str(tmp_path / "last.ppm"), cv2.IMREAD_COLOR)
    photo = phone_photo(np.asarray(page, np.uint8), seed)
    (tmp_path / "photo.jpg").write_bytes(photo)

    texts = decode_qr_codes(photo)

    assert texts == [copy.qr_payload]
    claims = verify_qr_payload(texts[0], trust_list, today=ISSUE_DATE)
    assert claims.copy_id == copy.copy_id
    assert claims.page_count == 2
