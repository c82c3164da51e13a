"""Run models on ONNX Runtime or LiteRT behind one small interface.

:func:`load_model` checks the file's SHA-256 against the manifest, opens it
with the runtime the manifest names, limits it to a given number of threads
and runs it once on zeros (warm-up), so the first citizen does not pay for
lazy initialisation. A missing runtime is reported with the package to
install; nothing is imported until a model needs it.
"""

from __future__ import annotations

import importlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.errors import InferenceError, ModelError, RuntimeMissingError
from models.files import checked_path
from models.manifest import ModelEntry
from models.prepare import onnx_available, prepared_copy

logger = logging.getLogger(__name__)

Array = NDArray[Any]

# Size used for a dynamic dimension when warming a model up on zeros.
WARM_UP_DIM = 32

_ONNX_DTYPES: dict[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape (``None`` for a dynamic dimension) and dtype of a tensor."""

    name: str
    shape: tuple[int | None, ...]
    dtype: type[np.generic]

    def zeros(self) -> Array:
        """Return a zero tensor of this spec, dynamic dimensions filled in."""
        batch_first = [1 if i == 0 else WARM_UP_DIM for i in range(len(self.shape))]
        dims = [
            d if d is not None else batch_first[i] for i, d in enumerate(self.shape)
        ]
        if self.dtype is np.int64 and len(dims) == 1:
            return np.full(dims, WARM_UP_DIM, dtype=np.int64)
        return np.zeros(dims, dtype=self.dtype)


class InferenceModel(ABC):
    """A loaded model: named inputs in, outputs in the model's order out."""

    def __init__(self, entry: ModelEntry, path: Path) -> None:
        self.entry = entry
        self.path = path

    @property
    @abstractmethod
    def inputs(self) -> Sequence[TensorSpec]:
        """Describe the model's inputs."""

    @property
    @abstractmethod
    def output_names(self) -> Sequence[str]:
        """Name the model's outputs, in the order :meth:`run` returns them."""

    @abstractmethod
    def _run(self, feeds: Mapping[str, Array]) -> list[Array]:
        """Run the runtime itself."""

    def run(self, feeds: Mapping[str, Array]) -> list[Array]:
        """Run the model on ``feeds`` and return its outputs.

        Raises:
            InferenceError: the runtime rejected the inputs or failed.
        """
        try:
            return self._run(feeds)
        except ModelError:
            raise
        except Exception as exc:  # runtimes raise their own unrelated types
            raise InferenceError(
                f"model {self.entry.name} failed on its inputs: {exc}"
            ) from exc

    def warm_up(self, feeds: Mapping[str, Array] | None = None) -> float:
        """Run once (on zeros unless ``feeds`` is given); return the seconds."""
        start = time.perf_counter()
        self.run(feeds or {spec.name: spec.zeros() for spec in self.inputs})
        elapsed = time.perf_counter() - start
        logger.debug("warmed up %s in %.1f ms", self.entry.name, elapsed * 1000)
        return elapsed


class OnnxModel(InferenceModel):
    """A model run by ONNX Runtime on the CPU."""

    def __init__(
        self,
        entry: ModelEntry,
        path: Path,
        threads: int,
        free_spatial_dims: bool = False,
    ) -> None:
        super().__init__(entry, path)
        ort = _import_runtime("onnxruntime", "onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # The arena keeps the largest buffers any input ever needed, and the
        # memory pattern one plan per input shape: with pages of every size
        # that held 120 MB or more for good on a kiosk with little memory.
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = False
        # Spinning threads would steal the cores other kiosk processes share.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            with _onnx_source(entry, path, free_spatial_dims) as source:
                self._session = ort.InferenceSession(
                    str(source), options, providers=["CPUExecutionProvider"]
                )
        except ModelError:
            raise
        except Exception as exc:
            raise InferenceError(
                f"ONNX Runtime cannot load {path} ({entry.name}): {exc}"
            ) from exc
        self._inputs = [
            TensorSpec(
                item.name,
                tuple(d if isinstance(d, int) else None for d in item.shape),
                _ONNX_DTYPES.get(item.type, np.float32),
            )
            for item in self._session.get_inputs()
        ]
        self._outputs = [item.name for item in self._session.get_outputs()]

    @property
    def inputs(self) -> Sequence[TensorSpec]:
        """Describe the model's inputs."""
        return self._inputs

    @property
    def output_names(self) -> Sequence[str]:
        """Name the model's outputs."""
        return self._outputs

    def _run(self, feeds: Mapping[str, Array]) -> list[Array]:
        return list(self._session.run(self._outputs, dict(feeds)))


class LiteRtModel(InferenceModel):
    """A TFLite model run by LiteRT (or tflite-runtime where numpy 1 is used)."""

    def __init__(self, entry: ModelEntry, path: Path, threads: int) -> None:
        super().__init__(entry, path)
        interpreter_class = _litert_interpreter()
        try:
            self._interpreter = interpreter_class(
                model_path=str(path), num_threads=threads
            )
            self._interpreter.allocate_tensors()
        except Exception as exc:
            raise InferenceError(
                f"LiteRT cannot load {path} ({entry.name}): {exc}"
            ) from exc
        details = self._interpreter.get_input_details()
        self._input_index = {item["name"]: item["index"] for item in details}
        self._inputs = [
            TensorSpec(
                item["name"], tuple(int(d) for d in item["shape"]), item["dtype"]
            )
            for item in details
        ]
        outputs = self._interpreter.get_output_details()
        self._output_index = [item["index"] for item in outputs]
        self._outputs = [item["name"] for item in outputs]

    @property
    def inputs(self) -> Sequence[TensorSpec]:
        """Describe the model's inputs."""
        return self._inputs

    @property
    def output_names(self) -> Sequence[str]:
        """Name the model's outputs."""
        return self._outputs

    def _run(self, feeds: Mapping[str, Array]) -> list[Array]:
        for name, value in feeds.items():
            if name not in self._input_index:
                raise InferenceError(f"model {self.entry.name} has no input {name!r}")
            self._interpreter.set_tensor(self._input_index[name], value)
        self._interpreter.invoke()
        return [self._interpreter.get_tensor(i).copy() for i in self._output_index]


def load_model(
    entry: ModelEntry,
    model_dir: Path,
    threads: int = 1,
    warm_up: bool = True,
    free_spatial_dims: bool = False,
) -> InferenceModel:
    """Check ``entry``'s file, open it with its runtime, and warm it up.

    ``free_spatial_dims`` makes the height and width of an ONNX model's image
    inputs dynamic (in memory; the file is unchanged), for graphs such as
    YuNet's that are fully convolutional but were exported at one size.

    Raises:
        ModelMissingError: the file has not been fetched.
        ModelHashError: the file's SHA-256 differs from the manifest's.
        RuntimeMissingError: the runtime is not installed.
        InferenceError: the runtime cannot load or run the file.
    """
    path = checked_path(entry, model_dir)
    model: InferenceModel
    if entry.runtime == "onnxruntime":
        model = OnnxModel(entry, path, threads, free_spatial_dims)
    elif entry.runtime == "litert":
        model = LiteRtModel(entry, path, threads)
    else:
        raise InferenceError(f"{entry.name} is a data file, not a runnable model")
    if warm_up:
        model.warm_up()
    logger.info("loaded model %s (%s, %s threads)", entry.name, entry.runtime, threads)
    return model


@contextmanager
def _onnx_source(
    entry: ModelEntry, path: Path, free_spatial_dims: bool
) -> Iterator[Path]:
    """Yield the file ONNX Runtime should open for ``entry``.

    That is the model's own file, or an adjusted copy (see
    :mod:`models.prepare`) when its weights are listed as inputs or its
    spatial dimensions are to be freed. Without the ``onnx`` package a model
    whose only flaw is its listed weights is opened as it is, slower.
    """
    adjust = free_spatial_dims or entry.weights_as_inputs
    if adjust and not free_spatial_dims and not onnx_available():
        logger.warning(
            "%s runs slower without the `onnx` package (pip install onnx)",
            entry.name,
        )
        adjust = False
    if not adjust:
        yield path
        return
    with prepared_copy(path, entry.sha256, free_spatial_dims) as copy:
        yield copy


def _import_runtime(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise RuntimeMissingError(
            f"the inference runtime {module!r} is not installed; "
            f"install it with `pip install {package}`"
        ) from exc


def _litert_interpreter() -> Any:
    try:
        return importlib.import_module("ai_edge_litert.interpreter").Interpreter
    except ImportError as exc:
        try:
            return importlib.import_module("tflite_runtime.interpreter").Interpreter
        except ImportError:
            raise RuntimeMissingError(
                "the inference runtime LiteRT is not installed; install it with "
                "`pip install ai-edge-litert` (or tflite-runtime where numpy 1 is "
                "installed)"
            ) from exc
