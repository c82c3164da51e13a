"""``kiosk bench sign`` at a small scale: every copy made, every figure there."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cloud_bridge.bench import sign_bench


@pytest.mark.slow
def test_short_sign_bench_makes_copies_without_errors() -> None:
    result = CliRunner().invoke(
        sign_bench,
        [
            "--seconds",
            "2",
            "--pages",
            "1",
            "--workers",
            "1",
            "--threads",
            "2",
            "--json",
        ],
    )

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    (run,) = report["runs"]
    assert report["threads"] == 2
    assert run["copies"] >= 2 and run["errors"] == 0
    assert run["p50_ms"] <= run["p95_ms"]
    assert set(run["phase_median_ms"]) >= {"reserve", "render", "sign", "archive"}
    assert 0 < run["worker_cpu_ms_per_copy"] < 10_000
    assert 0 < run["worker_peak_rss_mb"] < 2_000
    assert run["intake"]["copies"] >= 1 and run["intake"]["errors"] == 0
    assert "pages" in run["intake"]["phase_median_ms"]
    assert report["reference"]["pades_b_t_ms"] > 0
