"""Run trueocr as shipped, from its downloaded wheel, as a reference engine.

The bench compares our reading with trueocr's own pre- and post-processing
(orientation, deskew, detection, recognition, reading order) in the same
run. The pinned wheel is unpacked into a scratch directory and imported
from there for the duration of the bench; it is never installed into the
project's environment, and nothing of it is used outside the bench.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from models.errors import InferenceError
from models.images import BgrImage

logger = logging.getLogger(__name__)

PACKAGE = "trueocr"


@contextlib.contextmanager
def shipped_trueocr(
    wheel: Path, threads: int = 1
) -> Iterator[Callable[[BgrImage], str]]:
    """Yield a function that reads a page with trueocr as shipped in ``wheel``.

    Raises:
        InferenceError: the wheel cannot be opened or trueocr fails to load.
    """
    with tempfile.TemporaryDirectory(prefix="kiosk-trueocr-") as scratch:
        try:
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(scratch)
        except (OSError, zipfile.BadZipFile) as exc:
            raise InferenceError(
                f"cannot unpack {wheel}: {exc}; download trueocr==0.1.1 with "
                "`pip download --no-deps trueocr==0.1.1`"
            ) from exc
        sys.path.insert(0, scratch)
        try:
            engine = _load(threads)
            yield lambda image: _read(engine, image)
        finally:
            sys.path.remove(scratch)
            for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
                del sys.modules[name]


def _load(threads: int) -> Any:
    try:
        module = importlib.import_module(PACKAGE)
        config = module.OCRConfig(threads=threads, save_outputs=False)
        return module.TrueOCR(config)
    except Exception as exc:
        raise InferenceError(f"trueocr from its wheel failed to load: {exc}") from exc


def _read(engine: Any, image: BgrImage) -> str:
    rgb = Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))
    return str(engine.predict(rgb, save=False).text)
