"""Tests of the runtime interface on the real model files."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from models.errors import ModelHashError, ModelMissingError, RuntimeMissingError
from models.manifest import Manifest
from models.runtime import LiteRtModel, OnnxModel, load_model


def test_onnx_model_loads_and_runs(manifest: Manifest, model_dir: Path) -> None:
    model = load_model(manifest.get_model("sface"), model_dir, threads=1)
    assert isinstance(model, OnnxModel)
    (embedding,) = model.run({"data": np.zeros((1, 3, 112, 112), np.float32)})
    assert embedding.shape == (1, 128)


def test_litert_model_loads_and_runs(manifest: Manifest, model_dir: Path) -> None:
    model = load_model(manifest.get_model("blazeface_short"), model_dir, threads=1)
    assert isinstance(model, LiteRtModel)
    outputs = model.run({"input": np.zeros((1, 128, 128, 3), np.float32)})
    assert sorted(o.shape for o in outputs) == [(1, 896, 1), (1, 896, 16)]


def test_every_model_warms_up(manifest: Manifest, model_dir: Path) -> None:
    for entry in manifest.model:
        if entry.runtime == "none":
            continue
        model = load_model(entry, model_dir, warm_up=False)
        assert model.warm_up() > 0


def test_tampered_file_is_refused_on_load(
    manifest: Manifest, model_dir: Path, tmp_path: Path
) -> None:
    entry = manifest.get_model("yunet")
    copy = tmp_path / entry.file
    shutil.copy(model_dir / entry.file, copy)
    data = bytearray(copy.read_bytes())
    data[1000] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(ModelHashError, match="kiosk models fetch"):
        load_model(entry, tmp_path)


def test_missing_file_says_to_fetch(manifest: Manifest, tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError, match="kiosk models fetch"):
        load_model(manifest.get_model("yunet"), tmp_path)


def test_missing_onnx_runtime_names_the_package(
    manifest: Manifest, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(RuntimeMissingError, match="pip install onnxruntime"):
        load_model(manifest.get_model("yunet"), model_dir)


def test_missing_litert_names_the_package(
    manifest: Manifest, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ai_edge_litert", "ai_edge_litert.interpreter", "tflite_runtime"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(RuntimeMissingError, match="ai-edge-litert"):
        load_model(manifest.get_model("face_landmark"), model_dir)


def test_weights_listed_as_inputs_are_constants(
    manifest: Manifest, model_dir: Path
) -> None:
    # The SFace file lists its weights among its inputs; only the image is fed.
    model = load_model(manifest.get_model("sface"), model_dir, threads=1)
    assert [spec.name for spec in model.inputs] == ["data"]
