"""The visit's events: in order, numbered, without personal data, to the office."""

from __future__ import annotations

import json
import time
from typing import Any

from cloud_bridge.fleet import schema
from cloud_bridge.fleet.ingest import Ingestor
from cloud_bridge.fleet.service import Fleet
from edge.events import VisitEvents, safe_detail
from edge.telemetry.service import TelemetryService
from edge.visit import Step
from protocol.telemetry import DetailValue
from tests.edge.conftest import Rig
from tests.edge.test_telemetry_replay import (  # noqa: F401  (fixtures)
    broker,
    fleet,
    ingestor,
    kiosk,
    wait_until,
)
from tests.edge.test_visit import walk_to_confirm

PERSONAL = ("Nguyễn", "NGUYỄN", "001092012345", "001******345", "an@example.vn")


class Recorder:
    """An event sink that keeps what it is given."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, DetailValue]]] = []

    def __call__(self, kind: str, detail: dict[str, DetailValue]) -> None:
        """Keep one event."""
        self.events.append((kind, detail))

    def kinds(self) -> list[str]:
        """Return the kinds in the order received."""
        return [kind for kind, _ in self.events]


def approve(rig: Rig) -> dict[str, Any]:
    """Submit the visit and approve it as the office would."""
    rig.controller.submit("confirm")
    request_id = rig.controller.view().data["request_id"]
    decision = {
        "request_id": request_id,
        "approved": True,
        "copy_id": "ABCD-EFGH-JKLM-NPQR",
        "access_code": "123456",
        "pdf_sha256": "0" * 64,
    }
    rig.controller.on_decision(decision)
    return decision


def test_a_whole_visit_reports_each_step_in_order(rig: Rig) -> None:
    recorder = Recorder()
    rig.controller.events.sink = recorder
    walk_to_confirm(rig, pages=2)
    approve(rig)
    deadline = time.monotonic() + 10
    while rig.controller.step is not Step.APPROVED and time.monotonic() < deadline:
        time.sleep(0.05)
    rig.controller.finish()

    kinds = recorder.kinds()
    assert kinds[:2] == ["visit_started", "visit_step"]
    assert "face_checked" in kinds
    steps = [d["step"] for k, d in recorder.events if k == "visit_step"]
    assert steps == [
        "identify",
        "face",
        "capture",
        "page",
        "capture",
        "page",
        "capture",
        "review",
        "confirm",
        "waiting",
        "printing",
        "approved",
    ]
    # The fake PDF digest fails the check: printing fails and says so.
    assert kinds[-3:] == ["print_failed", "visit_step", "visit_finished"]
    assert recorder.events[-1][1]["outcome"] == "done"
    numbers = [detail["n"] for _, detail in recorder.events]
    assert numbers == list(range(1, len(numbers) + 1))
    assert len({detail["visit"] for _, detail in recorder.events}) == 1
    face = next(d for k, d in recorder.events if k == "face_checked")
    assert set(face) == {"visit", "n", "try", "matched", "live", "score", "reason"}
    submitted = next(d for k, d in recorder.events if k == "request_submitted")
    assert submitted["pages"] == 2 and submitted["sequence"] == 1
    text = json.dumps(recorder.events, ensure_ascii=False)
    for personal in PERSONAL:
        assert personal not in text


def test_cancel_and_timeout_end_the_visit_with_their_outcome(rig: Rig) -> None:
    recorder = Recorder()
    rig.controller.events.sink = recorder
    rig.controller.cancel()  # nobody there: nothing to report
    assert recorder.events == []
    rig.controller.begin("welcome")
    rig.controller.cancel()
    assert recorder.events[-1][0] == "visit_finished"
    assert recorder.events[-1][1]["outcome"] == "cancelled"

    rig.controller.begin("welcome")
    rig.controller.clock = lambda: time.monotonic() + 3600
    assert rig.controller.expire_if_idle()
    assert recorder.events[-1][1]["outcome"] == "timed_out"
    assert recorder.events[-1][1]["n"] == 3  # started, step, finished
    visits = {d["visit"] for _, d in recorder.events}
    assert len(visits) == 2


def test_personal_details_and_a_failing_sink_never_escape() -> None:
    assert safe_detail({"step": "face", "name": "Nguyễn Văn An"}) == {"step": "face"}

    def broken(kind: str, detail: dict[str, DetailValue]) -> None:
        raise OSError("disk full")

    events = VisitEvents(broken)
    events.start("a" * 32)
    events.emit("visit_started")  # logged, not raised


def test_events_reach_the_office_once_and_in_order(
    rig: Rig,
    fleet: Fleet,  # noqa: F811
    ingestor: Ingestor,  # noqa: F811
    kiosk: TelemetryService,  # noqa: F811
) -> None:
    assert kiosk.publisher.connected.wait(10)
    recorder = Recorder()

    def send(kind: str, detail: dict[str, DetailValue]) -> None:
        recorder(kind, detail)
        kiosk.event(kind, **detail)

    rig.controller.events.sink = send
    walk_to_confirm(rig, pages=1)
    rig.controller.submit("confirm")
    rig.controller.cancel()
    expected = len(recorder.events)
    assert expected == 12
    wait_until(lambda: fleet.registry.count(schema.events) == expected)
    wait_until(lambda: kiosk.outbox.depth() == 0)
    time.sleep(0.5)
    assert fleet.registry.count(schema.events) == expected
    stored = fleet.registry.recent_events("kiosk-401", 100)
    by_number = {e["detail"]["n"]: e["kind"] for e in stored}
    assert [by_number[n] for n in range(1, expected + 1)] == recorder.kinds()
    assert len({e["message_id"] for e in stored}) == expected
    text = json.dumps([e["detail"] for e in stored], ensure_ascii=False)
    for personal in PERSONAL:
        assert personal not in text
