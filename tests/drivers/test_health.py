"""The health model shared by every device."""

from __future__ import annotations

from drivers.health import Health, HealthState, HealthTracker, Reason


def test_changes_are_recorded_and_notified_once() -> None:
    tracker = HealthTracker("receipt_printer")
    seen: list[tuple[str, Health]] = []
    tracker.subscribe(lambda name, health: seen.append((name, health)))

    tracker.degraded(Reason.PAPER_LOW, "near end")
    tracker.degraded(Reason.PAPER_LOW, "still near end")
    tracker.failed(Reason.PAPER_OUT)

    assert [(n, h.state, h.reason) for n, h in seen] == [
        ("receipt_printer", HealthState.DEGRADED, Reason.PAPER_LOW),
        ("receipt_printer", HealthState.FAILED, Reason.PAPER_OUT),
    ]
    assert seen[1][1].since >= seen[0][1].since
    assert not tracker.get().usable


def test_as_dict_is_json_friendly() -> None:
    tracker = HealthTracker("camera.face")
    tracker.degraded(Reason.FRAMES_STALLED, "no frame for 2.1 s")
    data = tracker.get().as_dict()
    assert data["state"] == "degraded"
    assert data["reason"] == "frames stalled"
    assert isinstance(data["since"], float)


def test_a_failing_listener_does_not_break_the_device() -> None:
    tracker = HealthTracker("gpio")

    def broken(_name: str, _health: Health) -> None:
        raise RuntimeError("listener bug")

    tracker.subscribe(broken)
    assert tracker.failed(Reason.DEVICE_ERROR).state is HealthState.FAILED
