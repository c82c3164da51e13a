"""``kiosk bench visit`` against the test office, with an officer approving."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cloud_bridge.config import BridgeConfig
from cloud_bridge.copies import Officer
from cloud_bridge.decisions import OutboxDecisionSink
from edge.bench import bench_with, scratch_config, visit_bench, with_face_photos
from edge.config import load_agent_config
from models.manifest import load_manifest
from tests.conftest import free_port
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
    # The visits start once the models are loaded; the loading is timed apart.
    assert summary["models_load_s"] > 0
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


def kiosk_config_file(tmp_path: Path, port: int, screen_port: int) -> Path:
    """A kiosk's configuration with its own data directory and a dead office."""
    path = tmp_path / "agent.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "kiosk"}"\n'
        f"port = {screen_port}\n"
        "[office]\n"
        f"mqtt_port = {port}\n"
        f'https_url = "https://127.0.0.1:{port}"\n'
        f'cert_file = "{tmp_path / "kiosk.crt"}"\n'
        f'key_file = "{tmp_path / "kiosk.key"}"\n'
    )
    return path


def test_the_bench_never_writes_to_the_kiosks_own_outbox(tmp_path: Path) -> None:
    config = kiosk_config_file(tmp_path, free_port(), free_port())

    result = CliRunner().invoke(
        visit_bench, ["--config", str(config), "--visits", "1", "--idle-s", "1"]
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["steps"]["submit"]["n"] == 1
    assert not (tmp_path / "kiosk").exists()


def test_a_screen_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = kiosk_config_file(tmp_path, free_port(), taken.getsockname()[1])
        result = CliRunner().invoke(visit_bench, ["--config", str(config)])

    assert result.exit_code == 1
    assert "could not listen on 127.0.0.1:" in result.output


def test_an_offline_bench_kiosk_has_no_identity_and_an_online_one_keeps_it(
    tmp_path: Path,
) -> None:
    config = load_agent_config(kiosk_config_file(tmp_path, free_port(), free_port()))
    scratch = tmp_path / "scratch"

    offline = scratch_config(config, scratch, online=False)
    online = scratch_config(config, scratch, online=True)

    assert offline.data_dir == online.data_dir == scratch
    assert (offline.office.cert_file, offline.office.key_file) == (None, None)
    assert offline.path(offline.services.identity_dir) == scratch / "identity"
    assert online.office.cert_file == tmp_path / "kiosk.crt"
    kept = online.path(online.services.identity_dir)
    assert kept == (tmp_path / "kiosk" / "identity").absolute()
