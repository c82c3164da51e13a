"""Tests of static int8 quantization of the face models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from models.cli import quantize_command


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
