"""Tests of the graph adjustment that runs in a child process."""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import onnx
import pytest

from models import prepare
from models.errors import InferenceError, ModelHashError, RuntimeMissingError
from models.manifest import Manifest
from models.runtime import load_model


def test_copy_has_free_dims_and_is_removed_after(
    manifest: Manifest, model_dir: Path
) -> None:
    entry = manifest.get_model("yunet")
    with prepare.prepared_copy(model_dir / entry.file, entry.sha256, True) as copy:
        dims = onnx.load(str(copy)).graph.input[0].type.tensor_type.shape.dim
        assert [d.dim_param for d in dims[2:]] == ["height", "width"]
    assert not copy.exists()
    assert not copy.parent.exists()


def test_weights_leave_the_inputs(manifest: Manifest, model_dir: Path) -> None:
    entry = manifest.get_model("sface")
    with prepare.prepared_copy(model_dir / entry.file, entry.sha256, False) as copy:
        graph = onnx.load(str(copy)).graph
    assert [tensor.name for tensor in graph.input] == ["data"]
    assert len(graph.initializer) > 100


def test_a_file_changed_after_its_check_is_refused(
    manifest: Manifest, model_dir: Path
) -> None:
    entry = manifest.get_model("yunet")
    with (
        pytest.raises(ModelHashError, match="kiosk models fetch"),
        prepare.prepared_copy(model_dir / entry.file, "0" * 64, True),
    ):
        pass


def test_a_file_that_is_not_onnx_is_reported(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"\xff" * 64)
    digest = hashlib.sha256(bogus.read_bytes()).hexdigest()
    with (
        pytest.raises(InferenceError, match=r"cannot adjust bogus\.onnx"),
        prepare.prepared_copy(bogus, digest, True),
    ):
        pass


def test_without_onnx_sface_loads_as_it_is(
    manifest: Manifest,
    model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr("models.runtime.onnx_available", lambda: False)
    monkeypatch.setattr("models.prepare.onnx_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="models.runtime"):
        model = load_model(manifest.get_model("sface"), model_dir, warm_up=False)
    assert model.output_names == ["fc1"]
    assert "pip install onnx" in caplog.text
    with pytest.raises(RuntimeMissingError, match="pip install onnx"):
        load_model(manifest.get_model("yunet"), model_dir, free_spatial_dims=True)


def test_loading_never_imports_onnx_in_the_process(model_dir: Path) -> None:
    # the onnx package's parsed graphs would stay in the agent's memory
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from models.manifest import load_manifest
        from models.runtime import load_model
        manifest = load_manifest()
        load_model(manifest.get_model("sface"), Path({str(model_dir)!r}))
        load_model(
            manifest.get_model("yunet"),
            Path({str(model_dir)!r}),
            free_spatial_dims=True,
        )
        print("onnx" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"
