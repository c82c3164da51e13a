"""An update notice and its install report through a real Mosquitto with TLS."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from cloud_bridge.fleet.ca import KioskCa
from ota.director import Director, ingest_report
from ota.messages import NoticeHandler, report_message
from protocol.topics import split_kiosk_topic
from protocol.updates import InstallReport, notice_topic
from tests.broker import client_identity, connect, start_broker
from tests.ota.conftest import Office, make_kiosk

pytestmark = pytest.mark.broker


def test_notice_over_mqtt_installs_and_the_report_reaches_the_director(
    office: Office, tmp_path: Path
) -> None:
    broker = start_broker(tmp_path / "mqtt")
    identity = client_identity(KioskCa(broker.ca_dir), tmp_path / "ids", "kiosk-001")
    kiosk_mqtt = connect(broker, identity)
    office_mqtt = connect(broker, broker.bridge_identity)
    notices: queue.Queue[bytes] = queue.Queue()
    reported = threading.Event()
    director: Director = office.director

    def on_notice(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        notices.put(bytes(message.payload))

    def on_report(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        kiosk_id, _leaf = split_kiosk_topic(message.topic)
        if ingest_report(director, kiosk_id, bytes(message.payload)) is not None:
            reported.set()

    def publish_report(report: InstallReport) -> None:
        topic, payload = report_message(report)
        kiosk_mqtt.publish(topic, payload, qos=1).wait_for_publish(5)

    kiosk = make_kiosk(office, tmp_path / "kiosk", kiosk_id="kiosk-001")
    kiosk.client.reporter = publish_report
    handler = NoticeHandler(kiosk.client)
    try:
        kiosk_mqtt.on_message = on_notice
        office_mqtt.on_message = on_report
        kiosk_mqtt.subscribe(notice_topic("kiosk-001"), qos=1)
        office_mqtt.subscribe("kiosk/+/events", qos=1)
        threading.Event().wait(0.3)
        office.publish("2.0", kiosks=["kiosk-001"])
        release = director.releases()[0]
        for notice in director.notices(release, ["kiosk-001", "kiosk-002"]):
            office_mqtt.publish(
                notice_topic(notice.kiosk_id), notice.to_bytes(), qos=1
            ).wait_for_publish(5)

        outcome = handler(notices.get(timeout=10))

        assert outcome is not None and outcome.state == "installed"
        assert reported.wait(10)
        state = director.states()[0]
        assert (state.kiosk_id, state.state, state.running_version) == (
            "kiosk-001",
            "installed",
            "2.0",
        )
        assert handler(b"not json") is None and handler.dropped == 1
    finally:
        for client in (kiosk_mqtt, office_mqtt):
            client.disconnect()
            client.loop_stop()
        broker.stop()
