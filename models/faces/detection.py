"""Find faces and their five landmarks with YuNet on ONNX Runtime.

The pinned YuNet file has a fixed 640x640 input, so each image is scaled to
fit and padded at the bottom and right; boxes are mapped back afterwards.
The anchor-free decoding (centre offsets and log sizes per stride, score the
geometric mean of class and objectness) follows YuNet's published design.
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

INPUT_SIDE = 640
STRIDES = (8, 16, 32)
# Small portraits are not enlarged: upscaling moved landmarks without helping.
MAX_UPSCALE = 1.0


@dataclass(frozen=True)
class Face:
    """One detected face: box (x, y, w, h), five landmarks and a score."""

    box: tuple[float, float, float, float]
    landmarks: NDArray[np.float32]  # 5x2: eyes, nose tip, mouth corners
    score: float

    @property
    def area(self) -> float:
        """Return the box's area in pixels."""
        return self.box[2] * self.box[3]


class FaceDetector:
    """Detect faces in BGR images with a loaded YuNet model."""

    def __init__(
        self,
        model: InferenceModel,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
    ) -> None:
        self.model = model
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold

    def detect(self, image: BgrImage) -> list[Face]:
        """Return the faces in ``image``, largest first."""
        canvas, scale = letterbox(image)
        blob = canvas.transpose(2, 0, 1)[None].astype(np.float32)
        outputs = dict(
            zip(self.model.output_names, self.model.run({"input": blob}), strict=True)
        )
        faces = self._decode(outputs, scale)
        faces.sort(key=lambda face: face.area, reverse=True)
        logger.debug("found %s faces", len(faces))
        return faces

    def _decode(
        self, outputs: dict[str, NDArray[np.float32]], scale: float
    ) -> list[Face]:
        boxes, points, scores = [], [], []
        for stride in STRIDES:
            cells = INPUT_SIDE // stride
            cls = np.clip(outputs[f"cls_{stride}"][0, :, 0], 0, 1)
            obj = np.clip(outputs[f"obj_{stride}"][0, :, 0], 0, 1)
            score = np.sqrt(cls * obj)
            keep = np.nonzero(score >= self.score_threshold)[0]
            if keep.size == 0:
                continue
            col = (keep % cells).astype(np.float32)
            row = (keep // cells).astype(np.float32)
            bbox = outputs[f"bbox_{stride}"][0, keep]
            cx, cy = (col + bbox[:, 0]) * stride, (row + bbox[:, 1]) * stride
            w, h = np.exp(bbox[:, 2]) * stride, np.exp(bbox[:, 3]) * stride
            boxes.append(np.stack([cx - w / 2, cy - h / 2, w, h], axis=1))
            kps = outputs[f"kps_{stride}"][0, keep].reshape(-1, 5, 2)
            kps = (kps + np.stack([col, row], axis=1)[:, None, :]) * stride
            points.append(kps)
            scores.append(score[keep])
        if not boxes:
            return []
        all_boxes = np.concatenate(boxes) / scale
        all_points = np.concatenate(points) / scale
        all_scores = np.concatenate(scores)
        kept = cv2.dnn.NMSBoxes(
            all_boxes.tolist(),
            all_scores.tolist(),
            self.score_threshold,
            self.nms_threshold,
        )
        return [
            Face(
                box=(
                    float(all_boxes[i, 0]),
                    float(all_boxes[i, 1]),
                    float(all_boxes[i, 2]),
                    float(all_boxes[i, 3]),
                ),
                landmarks=all_points[i].astype(np.float32),
                score=float(all_scores[i]),
            )
            for i in np.asarray(kept, dtype=np.int64).reshape(-1)
        ]


def letterbox(image: BgrImage) -> tuple[BgrImage, float]:
    """Return ``image`` scaled into the model's square input, and the scale."""
    height, width = image.shape[:2]
    scale = min(INPUT_SIDE / width, INPUT_SIDE / height, MAX_UPSCALE)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    canvas = np.zeros((INPUT_SIDE, INPUT_SIDE, 3), dtype=np.uint8)
    canvas[:new_h, :new_w] = resized
    return canvas, scale
