"""Read the model manifest: which files exist, where from, and what they expect."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.errors import ManifestError

logger = logging.getLogger(__name__)

MANIFEST_PATH = Path(__file__).with_name("manifest.toml")
SHA256_PATTERN = r"^[0-9a-f]{64}$"

RuntimeName = Literal["onnxruntime", "litert", "none"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PackageEntry(_Strict):
    """One pinned PyPI package whose wheel holds model files."""

    name: str = Field(min_length=1, description="Distribution name on PyPI.")
    version: str = Field(min_length=1, description="Exact pinned version.")
    wheel: str = Field(pattern=r"\.whl$", description="Expected wheel file name.")
    wheel_sha256: str = Field(pattern=SHA256_PATTERN, description="Wheel SHA-256.")
    platform: str | None = Field(None, description="pip --platform, if binary.")
    python_version: str | None = Field(None, description="pip --python-version.")
    licence: str = Field(min_length=1, description="The package's licence.")

    @property
    def requirement(self) -> str:
        """Return the pip requirement that pins this package."""
        return f"{self.name}=={self.version}"


class ModelEntry(_Strict):
    """One model file: identity, provenance, runtime and I/O contract."""

    name: str = Field(pattern=r"^[a-z0-9_]+$", description="Name used in code.")
    version: str = Field(min_length=1, description="Model version.")
    task: str = Field(min_length=1, description="What the model does.")
    runtime: RuntimeName = Field(description="Runtime that executes the file.")
    file: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$", description="File name.")
    sha256: str = Field(pattern=SHA256_PATTERN, description="File SHA-256.")
    size: int = Field(gt=0, le=500_000_000, description="File size in bytes.")
    package: str = Field(min_length=1, description="Source package name.")
    member: str = Field(min_length=1, description="Path inside the wheel.")
    licence: str = Field(min_length=1, description="The model's licence.")
    inputs: list[str] = Field(description="Input tensors: name, type, meaning.")
    outputs: list[str] = Field(description="Output tensors: name, type, meaning.")
    weights_as_inputs: bool = Field(
        False,
        description=(
            "The exporter also listed the weights as graph inputs; they are "
            "made constants again when the model is loaded."
        ),
    )


class FaceVerificationEntry(_Strict):
    """The calibrated decision threshold for face verification."""

    threshold: float = Field(ge=-1.0, le=1.0, description="Cosine threshold.")
    far_target: float = Field(gt=0, lt=1, description="Target false accept rate.")
    method: str = Field(min_length=1, description="How it was measured.")
    reference_scale: float = Field(
        0.45, gt=0, le=1, description="Card-portrait shrink used in calibration."
    )
    mirror_reference: bool = Field(
        False,
        description="Embed the card portrait as the mean of it and its mirror image.",
    )
    tar: float | None = Field(None, ge=0, le=1, description="TAR at the target.")
    genuine_pairs: int | None = Field(None, ge=0, description="Genuine pairs.")
    impostor_pairs: int | None = Field(None, ge=0, description="Impostor pairs.")


class Manifest(_Strict):
    """The whole manifest: packages, models and calibrated settings."""

    manifest_version: Literal[1]
    package: list[PackageEntry] = Field(min_length=1)
    model: list[ModelEntry] = Field(min_length=1)
    face_verification: FaceVerificationEntry

    def get_model(self, name: str) -> ModelEntry:
        """Return the model called ``name``.

        Raises:
            ManifestError: no model of that name is listed.
        """
        for entry in self.model:
            if entry.name == name:
                return entry
        known = ", ".join(entry.name for entry in self.model)
        raise ManifestError(f"the manifest lists no model {name!r}; known: {known}")

    def get_package(self, name: str) -> PackageEntry:
        """Return the package called ``name``.

        Raises:
            ManifestError: no package of that name is listed.
        """
        for entry in self.package:
            if entry.name == name:
                return entry
        raise ManifestError(f"the manifest lists no package {name!r}")

    def models_from(self, package: str) -> list[ModelEntry]:
        """Return the models unpacked from ``package``."""
        return [entry for entry in self.model if entry.package == package]


def load_manifest(path: Path | None = None) -> Manifest:
    """Read and validate the manifest (the packaged one by default).

    Raises:
        ManifestError: the file is missing, not TOML, or fails validation.
    """
    source = path or MANIFEST_PATH
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"cannot read the model manifest {source}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"model manifest {source} is not TOML: {exc}") from exc
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(f"model manifest {source} is invalid: {exc}") from exc
    _check_references(manifest, source)
    logger.debug("manifest %s lists %s models", source, len(manifest.model))
    return manifest


def _check_references(manifest: Manifest, source: Path) -> None:
    names = [entry.name for entry in manifest.model]
    files = [entry.file for entry in manifest.model]
    if len(set(names)) != len(names) or len(set(files)) != len(files):
        raise ManifestError(f"model manifest {source} repeats a model name or file")
    packages = {entry.name for entry in manifest.package}
    for entry in manifest.model:
        if entry.package not in packages:
            raise ManifestError(
                f"model {entry.name!r} in {source} names package {entry.package!r}, "
                "which the manifest does not pin"
            )
