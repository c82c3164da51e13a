"""``kiosk bench visit`` against the test office, with an officer approving."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cloud_bridge.config import BridgeConfig
from cloud_bridge.copies import Officer
from cloud_bridge.decisions import OutboxDecisionSink
from edge.bench import bench_with, with_face_photos
from models.manifest import load_manifest
from tests.edge.stack import Office
from tests.models.conftest import LFW_DIR

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
    assert 0 < summary["rss_mb"] <= summary["peak_rss_mb"]


def test_bench_runs_the_face_models_on_real_photos(
    tmp_path: Path, bridge_config: BridgeConfig, trust_services: object
) -> None:
    office = Office(tmp_path, bridge_config)
    try:
        people = LFW_DIR / "Colin_Powell"
        config = with_face_photos(office.kiosk_config(tmp_path), people)
        result = bench_with(config, 1, None, idle_s=1.0)
        deadline = time.monotonic() + 30
        while not office.bridge.store.list_requests() and time.monotonic() < deadline:
            time.sleep(0.1)
        stored = office.bridge.store.list_requests()
        details = [office.consumer.service.details(r.request_id) for r in stored]
    finally:
        office.close()
    summary = result.summary()
    # The photos are the card's person but never blink: three tries, then staff.
    assert summary["steps"]["check_face"]["n"] == 3
    assert summary["steps"]["staff_checked"]["n"] == 1
    assert summary["steps"]["submit"]["n"] == 1
    assert len(stored) == 1 and details[0] is not None
    face = details[0]["face"]
    assert face["matched"] is True and face["staff_checked"] is True
    assert face["score"] >= load_manifest().face_verification.threshold
    assert details[0]["liveness"]["passed"] is False
    assert details[0]["fields"]["full_name"] == "NGUYỄN VĂN AN"
