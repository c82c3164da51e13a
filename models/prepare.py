"""Adjust an ONNX graph for ONNX Runtime in a child process.

Weights that an old exporter also listed as graph inputs (SFace lists all
174 of them) are made constants again: ONNX Runtime will not fold a batch
norm into its convolution while the weights could be fed from outside,
which cost SFace about a fifth of its time. With ``free_spatial_dims`` the
4-D inputs' height and width become dynamic, for graphs such as YuNet's
that are fully convolutional but were exported at one size.

The work runs in a short-lived child (``python -m models.prepare``) that
writes the adjusted graph to a private temporary file, which the caller
opens by path and deletes. Parsing a 38 MB graph with the ``onnx`` package
leaves the parsing process about 75 MB larger for good, which a kiosk with
every model loaded cannot spare; the child takes that with it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import logging
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from models.errors import InferenceError, ModelHashError, RuntimeMissingError

logger = logging.getLogger(__name__)

PREPARE_TIMEOUT_S = 120.0
# Exit code of the child when the file is not the one that was checked.
HASH_MISMATCH = 3


def onnx_available() -> bool:
    """Tell whether the ``onnx`` package is installed (without importing it)."""
    return importlib.util.find_spec("onnx") is not None


@contextmanager
def prepared_copy(path: Path, sha256: str, free_spatial_dims: bool) -> Iterator[Path]:
    """Yield the path of an adjusted copy of the model at ``path``.

    The copy lives in a private temporary directory removed on exit.

    Raises:
        RuntimeMissingError: the ``onnx`` package is not installed.
        ModelHashError: the file changed after it was checked.
        InferenceError: the child failed.
    """
    if not onnx_available():
        raise RuntimeMissingError(
            f"{path.name} needs the `onnx` package to be adjusted for ONNX "
            "Runtime; install it with `pip install onnx`"
        )
    with tempfile.TemporaryDirectory(prefix="kiosk-model-") as work:
        target = Path(work) / path.name
        command = [sys.executable, "-m", "models.prepare", str(path), str(target)]
        command += ["--sha256", sha256]
        if free_spatial_dims:
            command.append("--free-spatial-dims")
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=PREPARE_TIMEOUT_S
            )
        except subprocess.TimeoutExpired as exc:
            raise InferenceError(
                f"adjusting {path.name} took over {PREPARE_TIMEOUT_S:.0f} s"
            ) from exc
        if done.returncode == HASH_MISMATCH:
            raise ModelHashError(done.stderr.strip())
        if done.returncode != 0 or not target.is_file():
            raise InferenceError(
                f"cannot adjust {path.name} for ONNX Runtime: "
                f"{done.stderr.strip()[-500:] or 'the child wrote nothing'}"
            )
        yield target


def adjust(data: bytes, free_spatial_dims: bool) -> bytes:
    """Return the serialized graph with weights as constants (and free dims)."""
    onnx = importlib.import_module("onnx")
    model = onnx.load_from_string(data)
    graph = model.graph
    weights = {tensor.name for tensor in graph.initializer}
    fed = [tensor for tensor in graph.input if tensor.name not in weights]
    if len(fed) != len(graph.input):
        del graph.input[:]
        graph.input.extend(fed)
    if free_spatial_dims:
        for tensor in graph.input:
            dims = tensor.type.tensor_type.shape.dim
            if len(dims) == 4:
                dims[2].dim_param, dims[3].dim_param = "height", "width"
        del graph.value_info[:]
    return bytes(model.SerializeToString())


def main(argv: list[str] | None = None) -> int:
    """Read, check, adjust and write one model; the exit code tells the result."""
    parser = argparse.ArgumentParser(prog="python -m models.prepare")
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--sha256", required=True)
    parser.add_argument("--free-spatial-dims", action="store_true")
    args = parser.parse_args(argv)
    data = args.source.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != args.sha256:
        print(
            f"model file {args.source} changed after it was checked (SHA-256 "
            f"{actual[:16]}...); run `kiosk models fetch` again",
            file=sys.stderr,
        )
        return HASH_MISMATCH
    args.target.write_bytes(adjust(data, args.free_spatial_dims))
    return 0


if __name__ == "__main__":
    sys.exit(main())
