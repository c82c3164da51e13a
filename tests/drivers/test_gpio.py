"""GPIO with the simulated line driver: debounce, edges, outputs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from drivers.config import GpioSection
from drivers.errors import GpioError
from drivers.gpio import Edge, EdgeEvent, PinBank, SimulatedLineDriver
from drivers.health import Capability


@pytest.fixture
def driver() -> SimulatedLineDriver:
    return SimulatedLineDriver()


@pytest.fixture
def bank(driver: SimulatedLineDriver) -> Iterator[PinBank]:
    section = GpioSection.model_validate(
        {
            "inputs": {
                "presence": {"line": 17, "debounce_ms": 100},
                "lid": {"line": 27, "active_low": True, "debounce_ms": 100},
            }
        }
    )
    pins = PinBank("gpio", section, driver)
    pins.start()
    yield pins
    pins.stop()


def test_bouncing_input_gives_one_edge(
    bank: PinBank, driver: SimulatedLineDriver
) -> None:
    events: list[EdgeEvent] = []
    got = threading.Event()

    def record(event: EdgeEvent) -> None:
        events.append(event)
        got.set()

    bank.input("presence").on_edge(record)

    driver.bounce("presence", True, changes=8, gap_s=0.003)

    assert got.wait(1)
    time.sleep(0.3)
    assert [(e.pin, e.edge) for e in events] == [("presence", Edge.RISING)]
    assert bank.input("presence").value is True


def test_glitch_shorter_than_debounce_is_ignored(
    bank: PinBank, driver: SimulatedLineDriver
) -> None:
    events: list[EdgeEvent] = []
    bank.input("presence").on_edge(events.append)
    driver.drive("presence", True)
    time.sleep(0.01)
    driver.drive("presence", False)
    time.sleep(0.3)
    assert events == []
    assert bank.input("presence").value is False


def test_active_low_input_and_wait_for(
    bank: PinBank, driver: SimulatedLineDriver
) -> None:
    lid = bank.input("lid")
    assert lid.value is False
    driver.drive("lid", False)
    assert lid.wait_for(True, 1)
    assert not lid.wait_for(False, 0.1)


def test_outputs_blink_and_record(bank: PinBank, driver: SimulatedLineDriver) -> None:
    light = bank.output("light")
    light.blink(times=2, on_s=0.01, off_s=0.01)
    levels = [level for level, _ in driver.history["light"]]
    assert levels == [False, True, False, True, False]
    bank.output("buzzer").set()
    assert driver.levels["buzzer"] is True


def test_unknown_pin_and_capabilities(bank: PinBank) -> None:
    with pytest.raises(GpioError, match="no GPIO input"):
        bank.input("door")
    assert {Capability.SENSE_PRESENCE, Capability.SIGNAL_LIGHT} <= bank.capabilities


def test_duplicate_lines_are_rejected() -> None:
    with pytest.raises(ValueError, match="share one GPIO line"):
        GpioSection.model_validate(
            {"inputs": {"a": {"line": 5}}, "outputs": {"b": {"line": 5}}}
        )


def test_periphery_without_a_chip_fails_clearly() -> None:
    from drivers.gpio_periphery import PeripheryLineDriver

    section = GpioSection.model_validate(
        {"backend": "periphery", "chip": "/dev/gpiochip-none"}
    )
    bank = PinBank("gpio", section, PeripheryLineDriver(section.chip))
    with pytest.raises(GpioError, match="gpiochip-none"):
        bank.start()
    assert not bank.health().usable
