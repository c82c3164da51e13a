"""``kiosk bench fleet`` at a small scale: it runs and loses nothing."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cloud_bridge.fleet.bench import fleet_bench


@pytest.mark.slow
def test_small_fleet_bench_reports_no_loss() -> None:
    result = CliRunner().invoke(
        fleet_bench,
        [
            "--kiosks",
            "20",
            "--seconds",
            "5",
            "--telemetry-s",
            "2",
            "--events-per-s",
            "100",
            "--workers",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["connected"] == 20
    assert report["events_sent"] >= 300
    assert report["events_lost"] == 0
    assert report["messages_stored"] >= report["events_sent"]
    assert report["lag_p95_ms"] > 0
