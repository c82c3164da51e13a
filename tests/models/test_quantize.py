"""Tests of static int8 quantization of the face and OCR models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from models.cli import quantize_command
from models.errors import VariantRejectedError
from models.manifest import Manifest
from models.ocr.quantize import quantize_recognizer
from models.variants import resolve_variant


@pytest.mark.slow
def test_quantize_reports_size_speed_and_agreement(
    model_dir: Path, lfw_dir: Path, tmp_path: Path
) -> None:
    work = tmp_path / "models"
    work.mkdir()
    for name in (
        "face_detection_yunet_2023mar.onnx",
        "face_recognition_sface_2021dec.onnx",
    ):
        (work / name).symlink_to(model_dir / name)
    args = ["--faces", str(lfw_dir), "--samples", "8", "--model-dir", str(work)]
    result = CliRunner().invoke(quantize_command, [*args, "--json"])
    assert result.exit_code == 0, result.output
    reports = {r["model"]: r for r in map(json.loads, result.output.splitlines())}
    assert set(reports) == {"yunet", "sface"}
    sface = reports["sface"]
    assert sface["int8_bytes"] < sface["float_bytes"] / 3
    assert 0.5 < sface["agreement"] <= 1.0
    assert sface["usable"] == (sface["agreement"] >= sface["agreement_bound"])
    assert Path(sface["path"]).is_file()
    assert not list((work / "int8").glob("*.opset13.onnx"))


@pytest.mark.slow
def test_ocr_recogniser_variant_is_measured_and_recorded(
    manifest: Manifest, model_dir: Path, tmp_path: Path
) -> None:
    for entry in manifest.model:
        if entry.name.startswith("ocr_"):
            (tmp_path / entry.file).symlink_to(model_dir / entry.file)
    report = quantize_recognizer(manifest, tmp_path, calibration_pages=1, test_pages=1)
    assert report["size"] < report["float_bytes"] / 2
    assert 0 <= report["float_cer"] < 0.1
    assert report["test_pages"] == 2
    entry = manifest.get_model("ocr_recognition")
    if report["agreement"] < report["agreement_bound"]:
        with pytest.raises(VariantRejectedError):
            resolve_variant(entry, tmp_path, "int8")
    else:
        assert resolve_variant(entry, tmp_path, "int8")[1] == tmp_path / "int8"


def test_sface_is_prepared_for_quantization(
    manifest: Manifest, model_dir: Path
) -> None:
    import onnx

    from models.quantize import _first_layer, _weights_as_constants

    model = onnx.load(model_dir / manifest.get_model("sface").file)
    assert len(model.graph.input) > 100  # the exporter listed every weight
    _weights_as_constants(model)
    assert [tensor.name for tensor in model.graph.input] == ["data"]
    (first,) = _first_layer(model)
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    assert first == convs[0].name
