"""``kiosk ota publish`` notifies kiosks; their reports steer the rollout.

Against a private Mosquitto with TLS and the fleet ACL: the notices go out
through the bridge's certificate to ``office/<id>/updates``, and the
kiosks' install reports come back on ``kiosk/<id>/events`` through the fleet
consumer that ``kiosk fleet ingest`` runs.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from cryptography import x509

from cloud_bridge.config import BridgeConfig, load_bridge_config
from cloud_bridge.fleet.ca import KioskCa
from cloud_bridge.fleet.cli import _ingestor
from cloud_bridge.fleet.service import Fleet
from ota.bundle import build_bundle
from ota.cli import ota_group
from ota.director import Director
from ota.notices import record_update_report
from protocol.envelope import new_message, parse_message
from protocol.updates import InstallReport, UpdateNotice, notice_topic, report_topic
from tests.broker import RunningBroker, client_identity, connect, start_broker
from tests.ota.conftest import model_files

pytestmark = pytest.mark.broker

# By the stable hash of their ids, the first kiosk is in the 50% cohort and
# the second (bucket 60.29) is not.
KIOSKS = ("kiosk-ota-a", "kiosk-ota-1")


@dataclass
class Site:
    """A bridge configuration, its broker and two enrolled kiosks online."""

    config_file: Path
    config: BridgeConfig
    broker: RunningBroker
    kiosks: dict[str, mqtt.Client]
    notices: dict[str, queue.Queue[UpdateNotice]]
    work: Path

    def ota(self, *args: str) -> str:
        """Run ``kiosk ota ARGS`` with this site's configuration."""
        result = CliRunner().invoke(
            ota_group, [*args, "--config", str(self.config_file)]
        )
        assert result.exit_code == 0, result.output
        return result.output

    def bundle(self, version: str) -> Path:
        """Build a bundle of test models of ``version``."""
        source = self.work / f"src-{version}"
        out = self.work / f"bundle-{version}.tar"
        build_bundle(out, source, model_files(source, version), version)
        return out

    def report(self, kiosk_id: str, target: str, state: str) -> None:
        """Publish an install report as the kiosk does, through its certificate."""
        report = new_message(
            InstallReport,
            kiosk_id=kiosk_id,
            target=target,
            state=state,
            running_version="1.0" if state != "installed" else "2.0",
            phase="" if state == "installed" else "health",
            error="" if state == "installed" else "sample page unreadable",
        )
        info = self.kiosks[kiosk_id].publish(
            report_topic(kiosk_id), report.to_bytes(), qos=1
        )
        info.wait_for_publish(5)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """A bridge with its OTA repository, a broker and two kiosks listening."""
    broker = start_broker(tmp_path / "mqtt")
    config_file = tmp_path / "bridge.toml"
    config_file.write_text(
        f'data_dir = "{tmp_path / "bridge"}"\n'
        "[ota]\nmin_reports = 2\nfailure_threshold = 0.4\n"
        "rollout_stages = [50, 100]\n"
        f'[fleet]\nca_dir = "{broker.ca_dir}"\nbroker_port = {broker.port}\n',
        encoding="utf-8",
    )
    config = load_bridge_config(config_file)
    config.data_dir.mkdir(parents=True)
    fleet = Fleet(config)
    ca = KioskCa(broker.ca_dir)
    clients: dict[str, mqtt.Client] = {}
    notices: dict[str, queue.Queue[UpdateNotice]] = {}
    for kiosk_id in KIOSKS:
        identity = client_identity(ca, tmp_path / "ids", kiosk_id)
        cert = x509.load_pem_x509_certificate(identity.certificate.read_bytes())
        fleet.registry.record_certificate(kiosk_id, cert)
        client = connect(broker, identity)
        notices[kiosk_id] = queue.Queue()
        client.on_message = _collect(notices[kiosk_id])
        client.subscribe(notice_topic(kiosk_id), qos=1)
        clients[kiosk_id] = client
    fleet.close()
    time.sleep(0.3)
    made = Site(config_file, config, broker, clients, notices, tmp_path)
    made.ota("init")
    yield made
    for client in clients.values():
        client.disconnect()
        client.loop_stop()
    broker.stop()


def _collect(
    into: queue.Queue[UpdateNotice],
) -> Callable[[mqtt.Client, object, mqtt.MQTTMessage], None]:
    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        into.put(parse_message(UpdateNotice, bytes(message.payload)))

    return on_message


def wait_until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait until ``check()`` holds, or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail("condition not reached in time")


def test_publish_notifies_only_the_kiosks_the_release_assigns(site: Site) -> None:
    output = site.ota("publish", str(site.bundle("2.0")), "--kiosk", KIOSKS[0])

    assert "update notice sent to 1 kiosks" in output
    notice = site.notices[KIOSKS[0]].get(timeout=10)
    assert (notice.kiosk_id, notice.bundle_version) == (KIOSKS[0], "2.0")
    assert notice.target == "models-2.0-r1.tar"
    time.sleep(0.5)
    assert site.notices[KIOSKS[1]].empty()


def test_reports_through_the_fleet_consumer_advance_and_halt_rollouts(
    site: Site,
) -> None:
    fleet = Fleet(site.config)
    ingestor = _ingestor(site.config, fleet, None)
    ingestor.start()
    director = Director(fleet.registry.engine, site.config.ota)
    try:
        site.ota("publish", str(site.bundle("2.0")), "--kiosk", KIOSKS[0])
        first = site.notices[KIOSKS[0]].get(timeout=10).target
        site.report(KIOSKS[0], first, "installed")
        wait_until(lambda: director.release(1).stage_index == 1)
        states = {state.kiosk_id: state for state in director.states()}
        assert states[KIOSKS[0]].state == "installed"
        assert states[KIOSKS[0]].running_version == "2.0"

        site.ota("publish", str(site.bundle("3.0")), "--cohort", "100")
        second = site.notices[KIOSKS[1]].get(timeout=10).target
        assert site.notices[KIOSKS[0]].get(timeout=10).target == second
        for kiosk_id in KIOSKS:
            site.report(kiosk_id, second, "failed")

        wait_until(lambda: director.release(2).state == "halted")
        assert "2 of 2 installs failed" in director.release(2).reason
        fallback = director.assignment(KIOSKS[0])
        assert fallback is not None and fallback.target == first
        assert director.assignment(KIOSKS[1]) is None
        assert ingestor.stats.dropped["malformed"] == 0
    finally:
        ingestor.stop()
        fleet.close()


def test_a_widened_cohort_is_notified_when_reports_advance_the_rollout(
    site: Site,
) -> None:
    fleet = Fleet(site.config)
    ingestor = _ingestor(site.config, fleet, None)
    ingestor.start()
    try:
        site.ota("publish", str(site.bundle("2.0")), "--cohort", "50")
        target = site.notices[KIOSKS[0]].get(timeout=10).target
        time.sleep(0.5)
        assert site.notices[KIOSKS[1]].empty()

        site.report(KIOSKS[0], target, "installed")

        notice = site.notices[KIOSKS[1]].get(timeout=15)
        assert notice.target == target
        assert site.notices[KIOSKS[0]].empty()
    finally:
        ingestor.stop()
        fleet.close()


def test_other_events_and_foreign_topics_are_not_taken_as_reports(
    tmp_path: Path,
) -> None:
    from cloud_bridge.store import migrations
    from cloud_bridge.store.engine import create_store_engine
    from ota.config import OtaRepositorySection

    engine = create_store_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrations.migrate(engine)
    director = Director(engine, OtaRepositorySection())
    report = new_message(
        InstallReport,
        kiosk_id="kiosk-ota-a",
        target="models-2.0-r1.tar",
        state="installed",
        running_version="2.0",
    )

    assert record_update_report(director, "kiosk/kiosk-ota-a/events", report.to_bytes())
    assert not record_update_report(
        director, "kiosk/kiosk-ota-a/telemetry", report.to_bytes()
    )
    assert not record_update_report(director, "kiosk/kiosk-ota-a/events", b"{}")
    assert not record_update_report(director, "elsewhere", report.to_bytes())
    # A report naming another kiosk than its topic is dropped, not recorded.
    assert record_update_report(director, "kiosk/kiosk-ota-b/events", report.to_bytes())
    assert [state.kiosk_id for state in director.states()] == ["kiosk-ota-a"]
    engine.dispose()
