"""``kiosk bench visit`` against the test office, with an officer approving."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_bridge.config import BridgeConfig
from cloud_bridge.copies import Officer
from cloud_bridge.decisions import OutboxDecisionSink
from edge.bench import bench_with
from tests.edge.stack import Office

pytestmark = [pytest.mark.broker, pytest.mark.hsm]


def test_bench_measures_steps_and_submit_to_print(
    tmp_path: Path, bridge_config: BridgeConfig, trust_services: object
) -> None:
    office = Office(tmp_path, bridge_config)
    sink = OutboxDecisionSink(office.bridge.store.engine)

    def approve() -> None:
        for record in office.bridge.store.list_requests(state="pending"):
            issued = office.bridge.copies.certify(record.request_id, Officer("A", "B"))
            sink.approved(record, issued)

    try:
        result = bench_with(office.kiosk_config(tmp_path), 3, approve, idle_s=2.0)
    finally:
        office.close()
    summary = result.summary()
    print(summary)
    assert summary["steps"]["submit"]["n"] == 3
    assert summary["submit_to_print"]["n"] == 3
    assert 0 < summary["submit_to_print"]["p95_ms"] < 10_000
    assert summary["rss_mb"] > 0
