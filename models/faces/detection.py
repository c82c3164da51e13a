"""Find faces and their five landmarks with YuNet on ONNX Runtime.

The pinned YuNet file declares a fixed 640x640 input, so each image is
scaled to fit and padded at the bottom and right; boxes are mapped back
afterwards. The graph itself is fully convolutional: loaded with free
spatial dimensions (``load_model(..., free_spatial_dims=True)``) it takes
any size that is a multiple of 32, and a camera frame is then detected at
``max_side`` pixels (320 by default, a quarter of the work of 640x640; a
kiosk face fills a good part of the frame).
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
DYNAMIC_MAX_SIDE = 320
SIDE_MULTIPLE = 32
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
        max_side: int = DYNAMIC_MAX_SIDE,
    ) -> None:
        self.model = model
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        shape = model.inputs[0].shape if model.inputs else ()
        self.dynamic = len(shape) == 4 and shape[2] is None
        self.max_side = max_side

    def detect(self, image: BgrImage, max_side: int | None = None) -> list[Face]:
        """Return the faces in ``image``, largest first.

        ``max_side`` overrides the detection size of a dynamic-input model
        (at most 640 is meaningful; the anchors were trained at that size).
        """
        if self.dynamic:
            canvas, scale = fit_to_stride(image, max_side or self.max_side)
        else:
            canvas, scale = letterbox(image)
        blob = canvas.transpose(2, 0, 1)[None].astype(np.float32)
        outputs = dict(
            zip(self.model.output_names, self.model.run({"input": blob}), strict=True)
        )
        faces = self._decode(outputs, scale, canvas.shape[1])
        faces.sort(key=lambda face: face.area, reverse=True)
        logger.debug("found %s faces", len(faces))
        return faces

    def _decode(
        self, outputs: dict[str, NDArray[np.float32]], scale: float, width: int
    ) -> list[Face]:
        boxes, points, scores = [], [], []
        for stride in STRIDES:
            cells = width // stride
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


def fit_to_stride(image: BgrImage, max_side: int) -> tuple[BgrImage, float]:
    """Return ``image`` scaled to at most ``max_side``, padded to multiples of 32."""
    height, width = image.shape[:2]
    scale = min(max_side / max(height, width), MAX_UPSCALE)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    padded_h = -(-new_h // SIDE_MULTIPLE) * SIDE_MULTIPLE
    padded_w = -(-new_w // SIDE_MULTIPLE) * SIDE_MULTIPLE
    canvas = np.zeros((padded_h, padded_w, 3), dtype=np.uint8)
    canvas[:new_h, :new_w] = resized
    return canvas, scale
