"""Fast per-frame face finding (BlazeFace) and face mesh (468 points) on LiteRT.

These run in the liveness loop, where YuNet's 50 ms per frame would hold it
under 15 frames per second. BlazeFace's anchors are the short-range SSD
layout: a 16x16 grid with 2 anchors and an 8x8 grid with 6, all of unit
size, 896 in all; box and keypoint offsets are in input pixels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from models.images import BgrImage
from models.runtime import InferenceModel

logger = logging.getLogger(__name__)

BLAZE_SIDE = 128
MESH_SIDE = 192
MESH_CROP_SCALE = 1.5


def _anchors() -> NDArray[np.float32]:
    centres = []
    for grid, per_cell in ((16, 2), (8, 6)):
        for row in range(grid):
            for col in range(grid):
                centres += [((col + 0.5) / grid, (row + 0.5) / grid)] * per_cell
    return np.array(centres, dtype=np.float32)


ANCHORS = _anchors()


@dataclass(frozen=True)
class QuickFace:
    """A face found by BlazeFace: box (x, y, w, h) in frame pixels and a score."""

    box: tuple[float, float, float, float]
    score: float


@dataclass(frozen=True)
class Mesh:
    """468 face points in frame pixels (x, y, relative z) and presence score."""

    points: NDArray[np.float32]
    presence: float


class QuickFaceDetector:
    """Find faces with BlazeFace short-range (about 2 ms per frame)."""

    def __init__(
        self, model: InferenceModel, score_threshold: float = 0.6, nms: float = 0.3
    ) -> None:
        self.model = model
        self.score_threshold = score_threshold
        self.nms = nms

    def detect(self, frame: BgrImage) -> list[QuickFace]:
        """Return the faces in ``frame``, largest first."""
        side = max(frame.shape[:2])
        square = np.zeros((side, side, 3), dtype=np.uint8)
        square[: frame.shape[0], : frame.shape[1]] = frame
        small = cv2.resize(
            square, (BLAZE_SIDE, BLAZE_SIDE), interpolation=cv2.INTER_AREA
        )
        tensor = (small[:, :, ::-1].astype(np.float32) / 127.5 - 1.0)[None]
        outputs = dict(
            zip(self.model.output_names, self.model.run({"input": tensor}), strict=True)
        )
        regress = outputs["regressors"][0]
        logits = np.clip(outputs["classificators"][0, :, 0].astype(np.float64), -80, 80)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = np.nonzero(scores >= self.score_threshold)[0]
        centre = regress[keep, :2] / BLAZE_SIDE + ANCHORS[keep]
        size = regress[keep, 2:4] / BLAZE_SIDE
        boxes = np.concatenate([centre - size / 2, size], axis=1) * side
        kept = cv2.dnn.NMSBoxes(
            boxes.tolist(), scores[keep].tolist(), self.score_threshold, self.nms
        )
        faces = [
            QuickFace(
                (
                    float(boxes[i, 0]),
                    float(boxes[i, 1]),
                    float(boxes[i, 2]),
                    float(boxes[i, 3]),
                ),
                float(scores[keep][i]),
            )
            for i in np.asarray(kept, dtype=np.int64).reshape(-1)
        ]
        faces.sort(key=lambda face: face.box[2] * face.box[3], reverse=True)
        return faces


class FaceMesher:
    """Fit MediaPipe's 468-point face mesh inside a face box."""

    def __init__(self, model: InferenceModel) -> None:
        self.model = model

    def fit(self, frame: BgrImage, box: tuple[float, float, float, float]) -> Mesh:
        """Return the mesh of the face in ``box`` of ``frame``."""
        x, y, w, h = box
        side = max(w, h) * MESH_CROP_SCALE
        left, top = x + w / 2 - side / 2, y + h / 2 - side / 2
        scale = MESH_SIDE / side
        matrix = np.array([[scale, 0, -left * scale], [0, scale, -top * scale]])
        crop = cv2.warpAffine(
            frame, matrix, (MESH_SIDE, MESH_SIDE), borderMode=cv2.BORDER_REPLICATE
        )
        tensor = (crop[:, :, ::-1].astype(np.float32) / 255.0)[None]
        outputs = dict(
            zip(
                self.model.output_names,
                self.model.run({"input_1": tensor}),
                strict=True,
            )
        )
        raw_points, raw_presence = outputs["conv2d_21"], outputs["conv2d_31"]
        points = raw_points.reshape(468, 3).astype(np.float32)
        points[:, :2] = points[:, :2] / scale + [left, top]
        points[:, 2] /= scale
        presence = float(1.0 / (1.0 + np.exp(-float(raw_presence.reshape(-1)[0]))))
        return Mesh(points, presence)
