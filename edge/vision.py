"""The vision package's models behind the visit's face check and page reading.

:class:`VisionModels` loads the models once, on first use or in the
background at start (``warm_up``): YuNet and SFace for the face, BlazeFace
and the face mesh for liveness, trueocr's detection and recognition for the
pages. :class:`ModelFaceChecker` is the :class:`edge.face.FaceChecker` on
real cameras; :func:`build_face_checker` picks it or the simulated checker
from ``[vision] face_checker``.

Only scores and results leave this module: embeddings live in the
:class:`edge.face.FaceReference` in memory, frames are dropped after use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from drivers.camera import Frame, Pixels
from drivers.config import DevicesConfig
from edge.config import VisionSection
from edge.errors import VisionError
from edge.face import FaceChecker, FaceOutcome, FaceReference, SimulatedFaceChecker
from kiosk.memory import give_back_free_memory
from models.errors import FaceNotFoundError, ModelError
from models.faces.liveness import (
    Challenge,
    LivenessSensor,
    LivenessSession,
)
from models.faces.tracking import FaceMesher, QuickFaceDetector
from models.faces.verification import FaceVerifier
from models.manifest import Manifest, load_manifest
from models.ocr.page import PageReader
from models.runtime import load_model

logger = logging.getLogger(__name__)

T = TypeVar("T")
EMBED_FRAMES = 3  # frames whose mean embedding is compared with the portrait
EMBED_EVERY = 4  # embed every fourth frame that shows one face


class VisionModels:
    """Load the kiosk's vision models once, thread-safely, when first needed."""

    def __init__(self, section: VisionSection, manifest: Manifest | None = None):
        self.section = section
        self._manifest = manifest
        self._lock = threading.Lock()
        self._verifier: FaceVerifier | None = None
        self._sensor: LivenessSensor | None = None
        self._reader: PageReader | None = None

    @property
    def model_dir(self) -> Path:
        """Where the fetched model files are."""
        return self.section.model_dir

    def manifest(self) -> Manifest:
        """Return the model manifest (loaded once)."""
        if self._manifest is None:
            self._manifest = load_manifest()
        return self._manifest

    def verifier(self) -> FaceVerifier:
        """Return YuNet and SFace with the calibrated threshold."""
        with self._lock:
            if self._verifier is None:
                section = self.section
                self._verifier = self._load(
                    "face verification",
                    lambda: FaceVerifier.from_manifest(
                        self.manifest(),
                        self.model_dir,
                        section.threads,
                        section.face_threshold,
                    ),
                )
            return self._verifier

    def sensor(self) -> LivenessSensor:
        """Return BlazeFace and the face mesh for the liveness loop."""
        with self._lock:
            if self._sensor is None:
                manifest, threads = self.manifest(), self.section.threads
                self._sensor = self._load(
                    "liveness",
                    lambda: LivenessSensor(
                        QuickFaceDetector(
                            load_model(
                                manifest.get_model("blazeface_short"),
                                self.model_dir,
                                threads,
                            )
                        ),
                        FaceMesher(
                            load_model(
                                manifest.get_model("face_landmark"),
                                self.model_dir,
                                threads,
                            )
                        ),
                    ),
                )
            return self._sensor

    def page_reader(self) -> PageReader:
        """Return the OCR models."""
        with self._lock:
            if self._reader is None:
                self._reader = self._load(
                    "page reading",
                    lambda: PageReader.from_manifest(
                        self.manifest(), self.model_dir, self.section.threads
                    ),
                )
            return self._reader

    def warm_up(self, faces: bool, ocr: bool) -> None:
        """Load the models the configuration uses; log, never raise."""
        try:
            if faces:
                self.verifier()
                self.sensor()
            if ocr:
                self.page_reader()
        except VisionError as exc:
            logger.error("%s", exc)
        give_back_free_memory()

    def _load(self, what: str, load: Callable[[], T]) -> T:
        try:
            loaded = load()
        except ModelError as exc:
            raise VisionError(
                f"the {what} models cannot be loaded from {self.model_dir}: {exc}; "
                "run `kiosk models fetch`"
            ) from exc
        logger.info("loaded the %s models", what)
        return loaded


class ModelFaceChecker:
    """The face check on real cameras: SFace against the portrait, liveness."""

    def __init__(self, models: VisionModels, max_seconds: float = 6.0) -> None:
        self.models = models
        self.max_seconds = max_seconds

    def reference(self, portrait: Pixels) -> FaceReference | None:
        """Return the portrait's embedding, or None when it shows no face."""
        verifier = self.models.verifier()
        try:
            found = verifier.embed_reference(_bgr(portrait))
        except FaceNotFoundError:
            return None
        except ModelError as exc:
            logger.warning("the portrait could not be embedded: %s", exc)
            return None
        signature = np.asarray(found.embedding, dtype=np.float64)
        return FaceReference(signature, found.face_count)

    def check(
        self, reference: FaceReference, frames: Iterable[Frame], challenge: str
    ) -> FaceOutcome:
        """Compare a few frames with the portrait while judging the challenge."""
        verifier, sensor = self.models.verifier(), self.models.sensor()
        session = LivenessSession(_challenges(challenge))
        wanted = reference.signature.astype(np.float32)
        probes: list[NDArray[np.float32]] = []
        seen = 0
        start: float | None = None
        for frame in frames:
            start = frame.timestamp if start is None else start
            image = _bgr(frame.image)
            signals = sensor.measure(image, frame.timestamp - start)
            session.observe(signals)
            if signals.faces == 1:
                seen += 1
                if len(probes) < EMBED_FRAMES and (seen - 1) % EMBED_EVERY == 0:
                    probes.extend(self._embed(verifier, image))
            done = session.finished and len(probes) >= EMBED_FRAMES
            if done or frame.timestamp - start >= self.max_seconds:
                break
        if not probes and seen == 0:
            return FaceOutcome(False, False, False, 0.0, "face_none")
        score = fused_score(wanted, probes)
        matched = score >= verifier.threshold
        live = session.result().passed
        logger.info("face check: matched %s, live %s", matched, live)
        reason = "" if matched and live else _reason(matched, live)
        return FaceOutcome(True, matched, live, round(score, 3), reason)

    def _embed(
        self, verifier: FaceVerifier, image: Pixels
    ) -> list[NDArray[np.float32]]:
        try:
            return [verifier.embed(image).embedding]
        except ModelError:
            return []


def fused_score(
    reference: NDArray[np.float32], probes: list[NDArray[np.float32]]
) -> float:
    """Return the cosine of the reference with the mean of the probe frames.

    The threshold is calibrated for one probe image. The best of several
    frames gives an impostor a chance with every frame, their mean less so:
    on LFW, with three different photos standing in for three frames, the
    false accept rate at the threshold rose from 1.0e-4 to 2.7e-4 with the
    best and to 2.0e-4 with the mean. A session's frames differ far less
    than three photos, so the rise at the kiosk is smaller.
    """
    if not probes:
        return 0.0
    mean = np.mean(probes, axis=0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-12:
        return 0.0
    return float(np.clip(np.dot(reference, mean / norm), -1.0, 1.0))


def build_face_checker(
    section: VisionSection, devices: DevicesConfig, models: VisionModels
) -> FaceChecker:
    """Return the checker ``[vision] face_checker`` asks for."""
    if uses_face_models(section, devices):
        return ModelFaceChecker(models, section.face_seconds)
    logger.warning(
        "the face check is simulated: it judges drawn faces and cannot tell "
        'people apart; set [vision] face_checker = "models" on a real kiosk'
    )
    return SimulatedFaceChecker()


def uses_face_models(section: VisionSection, devices: DevicesConfig) -> bool:
    """Tell whether the face models run (auto: when the face camera is real)."""
    if section.face_checker == "auto":
        camera = devices.cameras.get("face")
        return camera is not None and camera.backend != "simulated"
    return section.face_checker == "models"


def _bgr(image: Pixels) -> Pixels:
    return np.ascontiguousarray(image[:, :, ::-1])


def _challenges(challenge: str) -> list[Challenge] | None:
    try:
        return [Challenge(challenge)]
    except ValueError:
        return None  # an unknown name: a random order of all three


def _reason(matched: bool, live: bool) -> str:
    if not matched:
        return "face_failed"
    return "face_not_live"
