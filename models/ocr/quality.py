"""Judge a document camera frame and tell the citizen what to fix.

Checks: a page is found and all four corners are inside the frame (the
largest four-sided contour), sharpness (variance of the Laplacian of the
page scaled to a fixed width), glare (a blob of saturated pixels on a page
that is not itself white), and effective resolution (the median height of
the text lines in frame pixels, when the line detector has run).
:func:`rectify` corrects the perspective from the corners found. The
thresholds were set on generated pages, not on real camera frames; they
are configuration, not constants of nature. Orientation (upside-down
pages) is not checked here yet.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from models.images import BgrImage

logger = logging.getLogger(__name__)

WORK_WIDTH = 1000


@dataclass(frozen=True)
class QualityLimits:
    """Thresholds of the capture checks."""

    min_page_share: float = 0.2
    edge_margin: float = 0.01
    min_sharpness: float = 60.0
    glare_level: int = 250
    max_glare_share: float = 0.004
    min_line_height: float = 16.0


@dataclass(frozen=True)
class QualityFinding:
    """A problem with the frame: a code, a message for the citizen, a value."""

    code: str
    message: str
    value: float


def find_page(
    image: BgrImage, limits: QualityLimits | None = None
) -> NDArray[np.float32] | None:
    """Return the page's four corners (clockwise from top left), or None."""
    limits = limits or QualityLimits()
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    edges = cv2.Canny(cv2.GaussianBlur(grey, (5, 5), 0), 30, 90)
    edges = cv2.dilate(edges, np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(edges, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    frame_area = image.shape[0] * image.shape[1]
    for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:5]:
        if cv2.contourArea(contour) < limits.min_page_share * frame_area:
            break
        approx = cv2.approxPolyDP(contour, 0.02 * cv2.arcLength(contour, True), True)
        if len(approx) == 4 and cv2.isContourConvex(approx):
            return _clockwise(approx.reshape(4, 2).astype(np.float32))
    return None


def rectify(image: BgrImage, corners: NDArray[np.float32]) -> BgrImage:
    """Return the page seen straight on, from its four corners."""
    top = np.linalg.norm(corners[1] - corners[0])
    bottom = np.linalg.norm(corners[2] - corners[3])
    left = np.linalg.norm(corners[3] - corners[0])
    right = np.linalg.norm(corners[2] - corners[1])
    width, height = int(max(top, bottom)), int(max(left, right))
    target = np.array(
        [[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float32
    )
    matrix = cv2.getPerspectiveTransform(corners, target)
    return np.asarray(cv2.warpPerspective(image, matrix, (width, height)), np.uint8)


def assess_capture(
    image: BgrImage,
    line_heights: Sequence[float] = (),
    limits: QualityLimits | None = None,
) -> list[QualityFinding]:
    """Return what is wrong with a document frame (empty when it is good)."""
    limits = limits or QualityLimits()
    findings = []
    corners = find_page(image, limits)
    if corners is None:
        findings.append(
            QualityFinding(
                "no_document",
                "No page was found: lay the whole page flat inside the frame.",
                0.0,
            )
        )
        page = image
    else:
        findings += _corner_findings(image, corners, limits)
        page = rectify(image, corners)
    findings += _sharpness_findings(page, limits)
    findings += _glare_findings(page, limits)
    if line_heights:
        height = float(np.median(line_heights))
        if height < limits.min_line_height:
            findings.append(
                QualityFinding(
                    "low_resolution",
                    "The text is too small: bring the page closer to the camera.",
                    round(height, 1),
                )
            )
    logger.debug("capture findings: %s", [finding.code for finding in findings])
    return findings


def _corner_findings(
    image: BgrImage, corners: NDArray[np.float32], limits: QualityLimits
) -> list[QualityFinding]:
    height, width = image.shape[:2]
    margin = limits.edge_margin * max(height, width)
    inside = (
        (corners[:, 0] > margin)
        & (corners[:, 0] < width - margin)
        & (corners[:, 1] > margin)
        & (corners[:, 1] < height - margin)
    )
    if inside.all():
        return []
    return [
        QualityFinding(
            "corner_outside",
            "Part of the page is cut off: move it so all four corners show.",
            float((~inside).sum()),
        )
    ]


def _sharpness_findings(page: BgrImage, limits: QualityLimits) -> list[QualityFinding]:
    grey = cv2.cvtColor(page, cv2.COLOR_BGR2GRAY)
    scale = WORK_WIDTH / max(1, grey.shape[1])
    resized = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    sharpness = float(cv2.Laplacian(resized, cv2.CV_64F).var())
    if sharpness >= limits.min_sharpness:
        return []
    return [
        QualityFinding(
            "blurred",
            "The photo is blurred: hold the page still and wait for focus.",
            round(sharpness, 1),
        )
    ]


def _glare_findings(page: BgrImage, limits: QualityLimits) -> list[QualityFinding]:
    grey = cv2.cvtColor(page, cv2.COLOR_BGR2GRAY)
    if float(np.median(grey)) >= limits.glare_level - 10:
        # Paper already at white (a scan): a reflection cannot stand out.
        return []
    saturated = (grey >= limits.glare_level).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(saturated)
    largest = int(stats[1:, cv2.CC_STAT_AREA].max()) if count > 1 else 0
    share = largest / grey.size
    if share <= limits.max_glare_share:
        return []
    return [
        QualityFinding(
            "glare",
            "Light reflects on the page: tilt it slightly or shade it.",
            round(share, 4),
        )
    ]


def _clockwise(points: NDArray[np.float32]) -> NDArray[np.float32]:
    sums, diffs = points.sum(axis=1), np.diff(points, axis=1).reshape(-1)
    return np.array(
        [
            points[np.argmin(sums)],
            points[np.argmin(diffs)],
            points[np.argmax(sums)],
            points[np.argmax(diffs)],
        ],
        dtype=np.float32,
    )
