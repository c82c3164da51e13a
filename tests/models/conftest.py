"""Fixtures for the models tests: fetched model files and the LFW subset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from models.files import is_intact
from models.manifest import Manifest, load_manifest

ROOT = Path(__file__).resolve().parents[2]
# shared/ lies beside the checkout, here and in CI.
DEFAULT_LFW = Path(__file__).resolve().parents[3] / "shared/data/faces-lfw-a-k"
LFW_DIR = Path(os.environ.get("KIOSK_TEST_LFW", str(DEFAULT_LFW)))


@pytest.fixture(scope="session")
def manifest() -> Manifest:
    """The packaged model manifest."""
    return load_manifest()


@pytest.fixture(scope="session")
def model_dir(manifest: Manifest) -> Path:
    """The directory of fetched model files (setup runs `kiosk models fetch`)."""
    directory = Path(os.environ.get("KIOSK_MODELS_DIR", ROOT / "var" / "models"))
    missing = [e.file for e in manifest.model if not is_intact(e, directory)]
    if missing:
        pytest.fail(
            f"model files {missing} are not in {directory}; run `kiosk models fetch`"
        )
    return directory


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    """The identity-labelled face photos shared outside the project."""
    if not LFW_DIR.is_dir():
        pytest.fail(f"{LFW_DIR} is missing; set KIOSK_TEST_LFW to the LFW A-K set")
    return LFW_DIR
