"""The headphone jack (GPIO switch, ALSA control) and the screen wake seams."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from drivers.config import GpioSection
from drivers.errors import DeviceUnavailableError
from drivers.gpio import PinBank, SimulatedLineDriver
from drivers.headphones import AlsaHeadphoneJack, GpioHeadphoneJack, run_amixer
from drivers.screen import BacklightScreen, CommandScreen

AMIXER = (
    "numid=18,iface=CARD,name='Headphone Jack'\n"
    "  ; type=BOOLEAN,access=r-------,values=1\n"
    "  : values={state}\n"
)


@pytest.fixture
def driver() -> SimulatedLineDriver:
    return SimulatedLineDriver()


@pytest.fixture
def bank(driver: SimulatedLineDriver) -> Iterator[PinBank]:
    section = GpioSection.model_validate(
        {"inputs": {"headphones": {"line": 24, "debounce_ms": 20}}}
    )
    pins = PinBank("gpio", section, driver)
    pins.start()
    yield pins
    pins.stop()


def test_gpio_jack_reports_plugging_and_unplugging(
    bank: PinBank, driver: SimulatedLineDriver
) -> None:
    jack = GpioHeadphoneJack(bank.input("headphones"))
    seen: list[bool] = []
    changed = threading.Event()

    def record(plugged: bool) -> None:
        seen.append(plugged)
        changed.set()

    jack.on_change(record)
    assert jack.plugged() is False
    driver.drive("headphones", True)
    assert changed.wait(2)
    assert jack.plugged() is True
    changed.clear()
    driver.drive("headphones", False)
    assert changed.wait(2)
    assert seen == [True, False]


def test_alsa_jack_reads_the_control_and_reports_changes() -> None:
    state = {"value": "off"}
    commands: list[list[str]] = []

    def amixer(command: Sequence[str]) -> str:
        commands.append(list(command))
        return AMIXER.format(state=state["value"])

    jack = AlsaHeadphoneJack("1", "Headphone Jack", poll_s=0.02, runner=amixer)
    assert jack.plugged() is False
    assert commands[0] == [
        "amixer",
        "-c",
        "1",
        "cget",
        "iface=CARD,name=Headphone Jack",
    ]
    seen: list[bool] = []
    jack.on_change(seen.append)
    time.sleep(0.1)
    state["value"] = "on"
    deadline = time.monotonic() + 2
    while not seen and time.monotonic() < deadline:
        time.sleep(0.02)
    jack.close()
    assert seen == [True]


def test_alsa_jack_says_what_is_wrong() -> None:
    jack = AlsaHeadphoneJack(runner=lambda command: "amixer: Cannot find the card")
    with pytest.raises(DeviceUnavailableError, match="no on/off value"):
        jack.plugged()
    with pytest.raises(DeviceUnavailableError, match="alsa-utils"):
        run_amixer(["/nonexistent/amixer", "-c", "0", "cget", "name=x"])


def test_screen_wakes_with_its_command(tmp_path: Path) -> None:
    marker = tmp_path / "screen"
    screen = CommandScreen(["sh", "-c", f"echo on >> {marker}"])
    assert screen.wake() and screen.wake()
    assert marker.read_text() == "on\non\n"
    assert CommandScreen(["/nonexistent/xset", "dpms", "force", "on"]).wake() is False
    assert CommandScreen(["false"]).wake() is False
    assert CommandScreen([]).wake() is False


def test_backlight_is_switched_on(tmp_path: Path) -> None:
    device = tmp_path / "backlight"
    device.mkdir()
    (device / "bl_power").write_text("4\n")
    assert BacklightScreen(device).wake()
    assert (device / "bl_power").read_text() == "0\n"
    assert BacklightScreen(tmp_path / "missing").wake() is False
