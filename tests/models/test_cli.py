"""Tests of the models, face and ocr commands."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
from click.testing import CliRunner

from models.cli import (
    calibrate_command,
    check_command,
    embed_command,
    ocr_command,
    verify_command,
)
from models.ocr.synthetic import available_fonts, render_page


def test_verify_prints_one_json_line_per_probe(
    model_dir: Path, lfw_dir: Path, tmp_path: Path
) -> None:
    person = lfw_dir / "Colin_Powell"
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    args = [
        str(person / "Colin_Powell_0001.jpg"),
        str(person / "Colin_Powell_0002.jpg"),
        str(lfw_dir / "Hugo_Chavez" / "Hugo_Chavez_0001.jpg"),
        str(empty),
        "--model-dir",
        str(model_dir),
        "--json",
    ]
    result = CliRunner().invoke(verify_command, args)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["decision"] for line in lines] == ["match", "no-match", "error"]
    assert lines[0]["score"] > lines[1]["score"]
    assert "empty" in lines[2]["error"]


def test_embed_prints_a_unit_vector(model_dir: Path, lfw_dir: Path) -> None:
    photo = lfw_dir / "Hugo_Chavez" / "Hugo_Chavez_0001.jpg"
    args = [str(photo), "--model-dir", str(model_dir), "--json"]
    result = CliRunner().invoke(embed_command, args)
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    vector = record["embedding"]
    assert len(vector) == 128
    assert abs(sum(v * v for v in vector) - 1.0) < 1e-3
    assert record["faces"] == 1


def test_check_reports_missing_files(model_dir: Path, tmp_path: Path) -> None:
    good = CliRunner().invoke(check_command, ["--model-dir", str(model_dir), "--json"])
    assert good.exit_code == 0
    assert {json.loads(x)["status"] for x in good.output.splitlines()} == {"ok"}
    bad = CliRunner().invoke(check_command, ["--model-dir", str(tmp_path)])
    assert bad.exit_code != 0
    assert "kiosk models fetch" in bad.output


def test_ocr_prints_lines_per_image(model_dir: Path, tmp_path: Path) -> None:
    page = render_page(3, available_fonts()[0])
    path = tmp_path / "page.png"
    cv2.imwrite(str(path), page.image)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"not an image")
    args = [str(path), str(corrupt), "--model-dir", str(model_dir), "--json"]
    result = CliRunner().invoke(ocr_command, args)
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.output.splitlines())
    number = page.fields["id_number"]
    assert len(first["lines"]) == len(page.lines)
    assert any(number in line["text"] for line in first["lines"])
    assert first["timings_ms"]["detect_ms"] > 0
    assert first["document_type"] == page.document_type
    assert first["fields"]["id_number"]["value"] == number
    assert {item["code"] for item in first["quality"]} == {"no_document"}
    assert "not a readable image" in second["error"]


def test_calibrate_reports_how_it_measured(
    model_dir: Path, lfw_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "faces"
    data.mkdir()
    for person in ("Colin_Powell", "Hugo_Chavez", "Ariel_Sharon"):
        (data / person).mkdir()
        for photo in sorted((lfw_dir / person).iterdir())[:3]:
            (data / person / photo.name).symlink_to(photo)
    args = ["--data", str(data), "--cache-dir", str(tmp_path / "cache")]
    args += ["--model-dir", str(model_dir), "--far", "0.1", "--json"]
    result = CliRunner().invoke(calibrate_command, args)
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["genuine_pairs"] == 9
    assert record["impostor_pairs"] == 54
    assert record["photos"] == 9 and record["people"] == 3
    assert record["reference_scale"] == 0.75
    assert record["cross_fold_tar"] is None  # too few people to split
    assert "impostor" in record["method"]
    assert len(list((tmp_path / "cache").iterdir())) == 2
