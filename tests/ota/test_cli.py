"""Tests of the ``kiosk ota`` commands through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ota.bench import run_bench
from ota.bundle import build_bundle
from ota.cli import ota_group
from tests.ota.conftest import model_files

ROOT = Path(__file__).resolve().parents[2]


def test_init_publish_and_status(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(f'data_dir = "{tmp_path / "bridge"}"\n', encoding="utf-8")
    bundle = tmp_path / "b.tar"
    build_bundle(bundle, tmp_path / "src", model_files(tmp_path / "src", "2.0"), "2.0")
    runner = CliRunner()

    init = runner.invoke(ota_group, ["init", "--config", str(config)])
    again = runner.invoke(ota_group, ["init", "--config", str(config)])
    published = runner.invoke(
        ota_group,
        [
            "publish",
            str(bundle),
            "--channel",
            "stable",
            "--cohort",
            "25",
            "--config",
            str(config),
        ],
    )
    status = runner.invoke(ota_group, ["status", "--json", "--config", str(config)])

    assert init.exit_code == 0, init.output
    assert "offline media" in init.output
    assert again.exit_code != 0 and "already exists" in again.output
    assert published.exit_code == 0, published.output
    assert "models-2.0-r1.tar" in published.output and "25%" in published.output
    data = json.loads(status.output)
    assert data["releases"][0]["stages"] == [25, 50, 100]
    assert data["releases"][0]["state"] == "rolling"


def test_publish_refuses_a_corrupt_bundle(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(f'data_dir = "{tmp_path / "bridge"}"\n', encoding="utf-8")
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"junk" * 1000)
    runner = CliRunner()
    runner.invoke(ota_group, ["init", "--config", str(config)])

    result = runner.invoke(ota_group, ["publish", str(bad), "--config", str(config)])

    assert result.exit_code != 0 and "corrupt" in result.output


@pytest.mark.slow
def test_bench_installs_the_current_models_within_the_targets(tmp_path: Path) -> None:
    result = run_bench(ROOT / "var" / "models", tmp_path)

    assert result["outcome"] == "installed", result["error"]
    assert result["within_targets"], result["phases_s"]
    assert result["serving"]["failed"] == 0 and result["serving"]["answered"] > 10
    assert result["health"]["checks"] and all(
        check["passed"] for check in result["health"]["checks"]
    )
