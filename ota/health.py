"""Check a freshly installed slot before the kiosk switches to it.

:class:`ModelHealthCheck` loads every model of the slot through the model
runtime (which checks each file's SHA-256), runs each once and compares the
time with a budget, reads a built-in synthetic Vietnamese page with the OCR
models and bounds its character error rate and time, runs the face detector
on a blank frame (no face may be found) and the embedder on a synthetic crop
(its score against itself must be near 1), and bounds a new face threshold.

What it does not check yet, and says so in its report: face-match scores on
real face pairs (the project ships no face photos to test with), and
liveness accuracy (the liveness models are only loaded and run on zeros).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from models.errors import ModelError
from models.files import checked_path
from models.manifest import ModelEntry
from models.runtime import InferenceModel, load_model
from ota.bundle import MODELS_DIR, BundleManifest
from ota.config import OtaClientSection

logger = logging.getLogger(__name__)

OCR_MODELS = ("ocr_detection", "ocr_recognition", "ocr_charset")
FACE_MODELS = ("yunet", "sface")


@dataclass(frozen=True)
class CheckResult:
    """One check: its name, whether it passed, and the measured figure."""

    name: str
    passed: bool
    detail: str


@dataclass
class HealthReport:
    """Every check run on a slot, what was not checked, and the time taken."""

    results: list[CheckResult] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """Tell whether every check passed (an empty report does not pass)."""
        return bool(self.results) and all(r.passed for r in self.results)

    def failures(self) -> str:
        """Describe the failed checks in one line."""
        failed = [f"{r.name}: {r.detail}" for r in self.results if not r.passed]
        return "; ".join(failed) or "no check ran"

    def add(self, name: str, passed: bool, detail: str) -> None:
        """Record one check's outcome."""
        self.results.append(CheckResult(name, passed, detail))


class HealthCheck(Protocol):
    """Something that judges an unpacked slot before the switch."""

    def __call__(self, slot: Path, manifest: BundleManifest) -> HealthReport:
        """Check ``slot`` and return the report."""
        ...


class ModelHealthCheck:
    """Load and exercise a slot's models against accuracy and latency bounds."""

    def __init__(self, settings: OtaClientSection, threads: int = 1) -> None:
        self.settings = settings
        self.threads = threads

    def __call__(self, slot: Path, manifest: BundleManifest) -> HealthReport:
        """Check every model in ``slot`` and return the report."""
        start = time.perf_counter()
        report = HealthReport()
        model_dir = slot / MODELS_DIR
        loaded = self._load_models(manifest.model, model_dir, report)
        self._check_threshold(manifest, report)
        names = {entry.name: entry for entry in manifest.model}
        if all(name in names for name in OCR_MODELS) and all(
            name in loaded for name in OCR_MODELS[:2]
        ):
            self._check_ocr(names["ocr_charset"], loaded, model_dir, report)
        elif any(name in names for name in OCR_MODELS):
            report.add("ocr", False, "the bundle has only part of the OCR models")
        if all(name in loaded for name in FACE_MODELS):
            self._check_faces(loaded, report)
        report.not_checked.append(
            "face-match scores on real face pairs (no face photos are built in)"
        )
        report.not_checked.append("liveness accuracy (models only run on zeros)")
        report.seconds = time.perf_counter() - start
        logger.info("health check %s in %.1f s", report.passed, report.seconds)
        return report

    def _load_models(
        self, entries: Sequence[ModelEntry], model_dir: Path, report: HealthReport
    ) -> dict[str, InferenceModel]:
        loaded: dict[str, InferenceModel] = {}
        budget = self.settings.model_latency_ms
        for entry in entries:
            try:
                if entry.runtime == "none":
                    checked_path(entry, model_dir)
                    report.add(f"file {entry.name}", True, "SHA-256 matches")
                    continue
                model = load_model(entry, model_dir, self.threads, warm_up=True)
                elapsed_ms = model.warm_up() * 1000
            except ModelError as exc:
                report.add(f"load {entry.name}", False, str(exc))
                continue
            loaded[entry.name] = model
            report.add(
                f"latency {entry.name}",
                elapsed_ms <= budget,
                f"{elapsed_ms:.0f} ms (budget {budget:.0f} ms)",
            )
        return loaded

    def _check_threshold(self, manifest: BundleManifest, report: HealthReport) -> None:
        threshold = manifest.config.face_threshold
        if threshold is None:
            return
        low, high = self.settings.face_threshold_bounds
        report.add(
            "face threshold",
            low <= threshold <= high,
            f"{threshold} (bounds {low}..{high})",
        )

    def _check_ocr(
        self,
        charset: ModelEntry,
        loaded: dict[str, InferenceModel],
        model_dir: Path,
        report: HealthReport,
    ) -> None:
        from models.ocr.charset import load_constants
        from models.ocr.detection import LineDetector
        from models.ocr.evaluation import character_error_rate
        from models.ocr.page import PageReader
        from models.ocr.recognition import LineRecognizer
        from models.ocr.synthetic import available_fonts, render_page

        try:
            constants = load_constants(charset, model_dir)
            reader = PageReader(
                LineDetector(loaded["ocr_detection"], constants.det_long_side),
                LineRecognizer(loaded["ocr_recognition"], constants),
            )
            page = render_page(7, available_fonts()[0])
            start = time.perf_counter()
            text = reader.read(page.image).text
            elapsed_ms = (time.perf_counter() - start) * 1000
        except (ModelError, IndexError, OSError) as exc:
            report.add("ocr sample page", False, f"could not read it: {exc}")
            return
        cer = character_error_rate(text, "\n".join(page.lines))
        report.add(
            "ocr accuracy",
            cer <= self.settings.max_cer,
            f"CER {cer:.3f} (bound {self.settings.max_cer})",
        )
        report.add(
            "ocr latency",
            elapsed_ms <= self.settings.page_latency_ms,
            f"{elapsed_ms:.0f} ms (budget {self.settings.page_latency_ms:.0f} ms)",
        )

    def _check_faces(
        self, loaded: dict[str, InferenceModel], report: HealthReport
    ) -> None:
        from models.faces.detection import FaceDetector
        from models.faces.embedding import FaceEmbedder, cosine_score

        try:
            blank = np.full((480, 640, 3), 128, dtype=np.uint8)
            faces = FaceDetector(loaded["yunet"]).detect(blank)
            rng = np.random.default_rng(7)
            crop = rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)
            embedder = FaceEmbedder(loaded["sface"])
            score = cosine_score(embedder.embed(crop), embedder.embed(crop.copy()))
        except ModelError as exc:
            report.add("face models", False, f"could not run: {exc}")
            return
        report.add("face detector", not faces, f"{len(faces)} faces on a blank frame")
        report.add(
            "face embedder",
            score >= self.settings.min_face_self_score,
            f"self score {score:.4f} (bound {self.settings.min_face_self_score})",
        )
