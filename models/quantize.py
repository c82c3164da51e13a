"""Make static int8 variants of the face models and measure what they cost.

Static quantization (ONNX Runtime, QDQ format, per-channel weights)
calibrates activation ranges on sample inputs: face photos letterboxed for
YuNet, and faces aligned by the float model for SFace. The variants are
written next to the fetched files, under ``int8/``, and are not in the
manifest: they are derived locally and their use is a per-platform choice.
Each report gives size, speed on one thread and agreement with the float
model on held-out photos; :data:`BOUNDS` says what a variant must keep to
be usable. Before quantizing, weights that the exporter listed as graph
inputs are made constants and ONNX Runtime's pre-processing folds each
batch norm into its convolution; the first weighted layer
(:func:`_first_layer`) stays in float. Figures: see models/README.md. The
OCR recogniser's variant is made by :mod:`models.ocr.quantize`; every
variant's figures go to ``int8/variants.json`` (:mod:`models.variants`).
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import InferenceError, RuntimeMissingError
from models.faces.alignment import align_face
from models.faces.detection import FaceDetector, letterbox
from models.faces.embedding import FaceEmbedder
from models.files import file_sha256
from models.images import BgrImage
from models.manifest import Manifest, ModelEntry
from models.runtime import InferenceModel, OnnxModel, load_model
from models.variants import record_variant

logger = logging.getLogger(__name__)

# A variant is usable only if it keeps these (float model as the reference).
BOUNDS = {"yunet": 0.98, "sface": 0.98}  # face agreement; mean cosine


@dataclass(frozen=True)
class VariantReport:
    """Size, speed and agreement of one int8 variant."""

    model: str
    path: Path
    sha256: str
    float_bytes: int
    int8_bytes: int
    float_ms: float
    int8_ms: float
    agreement: float
    agreement_bound: float

    @property
    def usable(self) -> bool:
        """Tell whether the variant keeps its accuracy bound."""
        return self.agreement >= self.agreement_bound


class _Samples:
    """Feed calibration samples to ONNX Runtime's quantizer."""

    def __init__(self, name: str, tensors: list[Any]) -> None:
        self._items: Iterator[dict[str, Any]] = iter({name: t} for t in tensors)

    def get_next(self) -> dict[str, Any] | None:
        return next(self._items, None)


def record_usable(model_dir: Path, reports: list[VariantReport]) -> None:
    """Record every variant's figures, so configuration can only pick good ones."""
    for report in reports:
        record_variant(
            model_dir,
            {
                "model": report.model,
                "path": report.path,
                "sha256": report.sha256,
                "size": report.int8_bytes,
                "agreement": report.agreement,
                "agreement_bound": report.agreement_bound,
            },
        )


def quantize_faces(
    manifest: Manifest,
    model_dir: Path,
    calibration_images: list[BgrImage],
    test_images: list[BgrImage],
) -> list[VariantReport]:
    """Quantize YuNet and SFace, then compare them with the float models."""
    yunet_entry, sface_entry = manifest.get_model("yunet"), manifest.get_model("sface")
    detector = FaceDetector(load_model(yunet_entry, model_dir))
    embedder = FaceEmbedder(load_model(sface_entry, model_dir))
    yunet_inputs = [
        letterbox(image)[0].transpose(2, 0, 1)[None].astype(np.float32)
        for image in calibration_images
    ]
    aligned = _aligned_faces(detector, calibration_images)
    sface_inputs = [
        face[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) for face in aligned
    ]
    out_dir = model_dir / "int8"
    yunet_int8 = _quantize(yunet_entry, model_dir, out_dir, "input", yunet_inputs)
    sface_int8 = _quantize(sface_entry, model_dir, out_dir, "data", sface_inputs)
    return [
        _yunet_report(detector, yunet_int8, test_images),
        _sface_report(detector, embedder, sface_int8, test_images),
    ]


def _aligned_faces(detector: FaceDetector, images: list[BgrImage]) -> list[BgrImage]:
    faces = []
    for image in images:
        found = detector.detect(image)
        if found:
            faces.append(align_face(image, found[0].landmarks))
    return faces


def _quantize(
    entry: ModelEntry,
    model_dir: Path,
    out_dir: Path,
    input_name: str,
    tensors: list[Any],
) -> OnnxModel:
    try:
        onnx = importlib.import_module("onnx")
        converter = importlib.import_module("onnx.version_converter")
        quantization = importlib.import_module("onnxruntime.quantization")
    except ImportError as exc:
        raise RuntimeMissingError(
            "static quantization needs the `onnx` package; pip install onnx"
        ) from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / entry.file.replace(".onnx", ".int8.onnx")
    # Per-channel weights need opset 13; the pinned files are opset 11.
    upgraded = out_dir / entry.file.replace(".onnx", ".opset13.onnx")
    prepared = out_dir / entry.file.replace(".onnx", ".prepared.onnx")
    model = onnx.load(model_dir / entry.file)
    _weights_as_constants(model)
    onnx.save(converter.convert_version(model, 13), upgraded)
    started = time.perf_counter()
    try:
        # Folds each batch norm into its convolution before ranges are taken.
        importlib.import_module(
            "onnxruntime.quantization.shape_inference"
        ).quant_pre_process(str(upgraded), str(prepared), skip_symbolic_shape=True)
        quantization.quantize_static(
            str(prepared),
            str(target),
            _Samples(input_name, tensors),
            quant_format=quantization.QuantFormat.QDQ,
            per_channel=True,
            activation_type=quantization.QuantType.QUInt8,
            weight_type=quantization.QuantType.QInt8,
            nodes_to_exclude=_first_layer(onnx.load(prepared)),
        )
    except Exception as exc:  # the quantizer raises many unrelated types
        raise InferenceError(f"could not quantize {entry.name}: {exc}") from exc
    finally:
        upgraded.unlink(missing_ok=True)
        prepared.unlink(missing_ok=True)
    logger.info("quantized %s in %.1f s", entry.name, time.perf_counter() - started)
    derived = entry.model_copy(
        update={"file": target.name, "sha256": file_sha256(target)}
    )
    return OnnxModel(derived, target, threads=1)


def _weights_as_constants(model: Any) -> None:
    """Drop from the graph's inputs the weights an old exporter listed there."""
    graph = model.graph
    weights = {tensor.name for tensor in graph.initializer}
    fed = [tensor for tensor in graph.input if tensor.name not in weights]
    del graph.input[:]
    graph.input.extend(fed)


def _first_layer(model: Any) -> list[str]:
    """Return the first weighted layer, which stays in float.

    It sees raw pixels; quantized, it cost SFace most of its agreement
    (mean cosine 0.93 against 0.99 with it in float). Keeping the last
    layer in float as well gained nothing and tripled the file.
    """
    weighted = [
        node.name for node in model.graph.node if node.op_type in ("Conv", "Gemm")
    ]
    return weighted[:1]


def _median_ms(model: InferenceModel, feeds: list[dict[str, Any]]) -> float:
    times = []
    for feed in feeds:
        start = time.perf_counter()
        model.run(feed)
        times.append((time.perf_counter() - start) * 1000)
    return round(float(np.median(times)), 1)


def _report(
    name: str,
    float_model: InferenceModel,
    int8: OnnxModel,
    feeds: list[dict[str, Any]],
    agreement: float,
) -> VariantReport:
    return VariantReport(
        model=name,
        path=int8.path,
        sha256=int8.entry.sha256,
        float_bytes=float_model.path.stat().st_size,
        int8_bytes=int8.path.stat().st_size,
        float_ms=_median_ms(float_model, feeds),
        int8_ms=_median_ms(int8, feeds),
        agreement=round(agreement, 4),
        agreement_bound=BOUNDS[name],
    )


def _yunet_report(
    detector: FaceDetector, int8: OnnxModel, images: list[BgrImage]
) -> VariantReport:
    quantized = FaceDetector(int8, detector.score_threshold, detector.nms_threshold)
    agree = 0
    for image in images:
        ours, theirs = detector.detect(image), quantized.detect(image)
        if not ours or not theirs:
            agree += not ours and not theirs
            continue
        agree += _iou(ours[0].box, theirs[0].box) >= 0.7
    feeds = [
        {"input": letterbox(i)[0].transpose(2, 0, 1)[None].astype(np.float32)}
        for i in images
    ]
    return _report("yunet", detector.model, int8, feeds, agree / max(1, len(images)))


def _sface_report(
    detector: FaceDetector,
    embedder: FaceEmbedder,
    int8: OnnxModel,
    images: list[BgrImage],
) -> VariantReport:
    quantized = FaceEmbedder(int8)
    faces = _aligned_faces(detector, images)
    cosines = [float(embedder.embed(face) @ quantized.embed(face)) for face in faces]
    feeds = [
        {"data": f[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32)}
        for f in faces
    ]
    mean = float(np.mean(cosines)) if cosines else 0.0
    return _report("sface", embedder.model, int8, feeds, mean)


def _iou(first: tuple[float, ...], second: tuple[float, ...]) -> float:
    ax, ay, aw, ah = first
    bx, by, bw, bh = second
    width = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    height = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = width * height
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0
