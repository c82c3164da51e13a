"""Tests of per-kiosk assignment and the staged rollout that halts itself."""

from __future__ import annotations

from ota.director import cohort_bucket
from protocol.envelope import new_message
from protocol.updates import InstallReport
from tests.ota.conftest import Office

FLEET = [f"kiosk-{n:03d}" for n in range(200)]


def _report(kiosk_id: str, target: str, state: str) -> InstallReport:
    return new_message(
        InstallReport,
        kiosk_id=kiosk_id,
        target=target,
        state=state,
        running_version="2.0" if state == "installed" else "1.0",
        error="" if state == "installed" else "health: ocr accuracy CER 0.4",
    )


def test_cohort_is_a_stable_share_of_the_fleet() -> None:
    buckets = [cohort_bucket(kiosk) for kiosk in FLEET]
    assert buckets == [cohort_bucket(kiosk) for kiosk in FLEET]
    share = sum(bucket < 10 for bucket in buckets) / len(FLEET)
    assert 0.04 < share < 0.18


def test_named_list_and_percentage_assignment(office: Office) -> None:
    office.publish("2.0", kiosks=["kiosk-007"])
    assert office.director.assignment("kiosk-007") is not None
    assert office.director.assignment("kiosk-008") is None
    cohort = office.director.release(office.director.next_sequence() - 1)
    assert cohort.kiosks == ["kiosk-007"]
    office.publish("3.0", cohort=10)
    release = office.director.releases()[0]
    assigned = [kiosk for kiosk in FLEET if release.assigns(kiosk)]
    assert set(assigned) == {k for k in FLEET if cohort_bucket(k) < 10}
    notices = office.director.notices(release, FLEET)
    assert [n.kiosk_id for n in notices] == assigned
    assert all(n.target == release.target for n in notices)


def test_rollout_advances_by_cohort(office: Office) -> None:
    target = office.publish("2.0")
    for kiosk in FLEET:
        office.director.assignment(kiosk)
    release = office.director.releases()[0]
    assert release.percent == 10

    for kiosk in [k for k in FLEET if release.assigns(k)]:
        release = (
            office.director.record_report(_report(kiosk, target, "installed"))
            or release
        )

    assert release.percent == 50 and release.state == "rolling"


def test_rollout_halts_past_the_failure_threshold(office: Office) -> None:
    target = office.publish("2.0", cohort=100)
    for kiosk in FLEET[:3]:
        office.director.assignment(kiosk)
    office.director.record_report(_report(FLEET[0], target, "installed"))
    release = office.director.record_report(_report(FLEET[1], target, "failed"))
    assert release is not None and release.state == "halted"
    assert "1 of 2" in release.reason

    assert office.director.assignment(FLEET[2]) is None
    states = {s.kiosk_id: s for s in office.director.states()}
    assert states[FLEET[1]].state == "failed"
    assert "CER" in states[FLEET[1]].last_error
    assert states[FLEET[0]].running_version == "2.0"
