"""The update messages: topics, validation, and reports from the wrong kiosk."""

from __future__ import annotations

import pytest

from ota.director import ingest_report
from ota.messages import report_message
from protocol.envelope import MessageError, new_message, parse_message
from protocol.updates import InstallReport, UpdateNotice, notice_topic
from tests.ota.conftest import Office


def test_topics_follow_the_fleet_layout() -> None:
    report = new_message(
        InstallReport,
        kiosk_id="kiosk-001",
        target="models-2.0-r1.tar",
        state="failed",
        running_version="1.0",
        error="health: ocr accuracy",
    )
    topic, payload = report_message(report)
    assert notice_topic("kiosk-001") == "office/kiosk-001/updates"
    assert topic == "kiosk/kiosk-001/events"
    assert parse_message(InstallReport, payload) == report


@pytest.mark.parametrize("target", ["../etc/passwd", "a/b.tar", "", "x" * 200])
def test_a_notice_naming_a_path_is_refused(target: str) -> None:
    payload = (
        '{"schema_name":"update_notice","version":1,"kiosk_id":"kiosk-001",'
        f'"target":"{target}","bundle_version":"2","channel":"stable"}}'
    ).encode()
    with pytest.raises(MessageError):
        parse_message(UpdateNotice, payload)


def test_a_report_for_another_kiosk_is_dropped(office: Office) -> None:
    target = office.publish("2.0")
    report = new_message(
        InstallReport,
        kiosk_id="kiosk-002",
        target=target,
        state="failed",
        running_version="1.0",
    )

    assert ingest_report(office.director, "kiosk-001", report.to_bytes()) is None
    assert ingest_report(office.director, "kiosk-001", b"garbage") is None
    assert office.director.states() == []
