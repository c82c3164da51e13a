"""Tests of the vision bench command."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from models.bench import verdicts, vision_bench


def test_bench_reports_face_speed_and_memory(
    model_dir: Path, lfw_dir: Path, tmp_path: Path
) -> None:
    args = [
        "--faces",
        str(lfw_dir),
        "--frames",
        "5",
        "--pages",
        "1",
        "--id-pages",
        "3",
        "--model-dir",
        str(model_dir),
    ]
    args += ["--cache-dir", str(tmp_path), "--json"]
    result = CliRunner().invoke(vision_bench, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["frames"] == 5
    assert 0 < report["face_detect_embed"]["median_ms"] < 1000
    assert report["liveness_fps"] > 1
    assert 0 < report["models_mb"] < 300
    assert report["face_verification"].startswith("not measured")
    camera = report["ocr"]["camera"]
    assert camera["ours"]["pages"] == 1
    assert 0 <= camera["ours"]["cer"] < 0.2
    assert 0 <= camera["ours"]["uncorrected_cer"] < 0.3
    assert 0 <= camera["tesseract_vie"]["cer"] < 0.5
    assert "trueocr_shipped" not in camera  # no wheel given
    assert set(report["met"]) == set(report["targets"])
    assert report["met"]["face_tar_at_far_1e-4"] is None
    assert isinstance(report["met"]["ocr_cer_clean"], bool)
    numbers = report["ocr_id_numbers"]
    assert numbers["pages"] == 3 and numbers["first_seed"] == 5000
    assert 0 <= numbers["exact"] <= 1
    assert isinstance(report["met"]["ocr_id_number_exact"], bool)


def test_id_number_verdict_uses_the_larger_count() -> None:
    side = {"cer": 0.0, "full_name_exact": 1.0, "page_p95_s": 0.1}
    ocr = {
        "clean": {"ours": {**side, "id_number_exact": 1.0}},
        "camera": {"ours": {**side, "id_number_exact": 0.967}},
    }
    assert verdicts({"ocr": ocr})["ocr_id_number_exact"] is False
    numbers = {"pages": 400, "exact": 0.9925}
    report = {"ocr": ocr, "ocr_id_numbers": numbers}
    assert verdicts(report)["ocr_id_number_exact"] is True
    report["ocr_id_numbers"] = {"pages": 400, "exact": 0.985}
    assert verdicts(report)["ocr_id_number_exact"] is False
