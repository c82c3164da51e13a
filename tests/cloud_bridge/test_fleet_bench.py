"""``kiosk bench fleet`` at a small scale, on SQLite and PostgreSQL.

It runs, loses nothing, the simulated kiosks' hand-written messages are all
valid and acknowledged, and the CPU figures are filled in.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cloud_bridge.fleet.bench import fleet_bench


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_small_fleet_bench_reports_no_loss(
    engine: str, request: pytest.FixtureRequest
) -> None:
    database = []
    if engine == "postgresql":
        database = ["--database", request.getfixturevalue("postgres_url")]
    result = CliRunner().invoke(
        fleet_bench,
        [
            *database,
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
    sent = report["events_sent"] + report["health_sent"]
    assert report["broker_acked"] == sent
    assert report["broker_refused"] == 0
    assert report["offered_per_s"] > 0
    assert report["messages_stored"] >= report["events_sent"]
    assert report["lag_p95_ms"] > 0
    assert report["dropped"] == 0, "the simulated kiosks sent invalid messages"
    assert report["kiosks_cpu_s"] > 0
    assert report["bridges_cpu_s"] > 0
    assert report["database"] == engine
    if engine == "postgresql":
        assert report["database_cpu_s"] > 0
    else:
        assert report["database_cpu_s"] is None
