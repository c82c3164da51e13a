"""Tell whether headphones are plugged into the kiosk's audio jack.

Two seams, one interface (:class:`HeadphoneJack`): a jack-sense switch wired
to a GPIO input (:class:`GpioHeadphoneJack`, on the pin bank, so the
simulated bank drives it in tests) and the ALSA jack control that most
codecs expose, such as ``'Headphone Jack'`` (:class:`AlsaHeadphoneJack`,
read with ``amixer cget`` every ``poll_s``). Callbacks get the new state and
run on the watching thread; they must return quickly.
"""

from __future__ import annotations

import logging
import re
import subprocess
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from drivers.errors import DeviceUnavailableError
from drivers.gpio import EdgeEvent, InputPin

logger = logging.getLogger(__name__)

JackCallback = Callable[[bool], None]
Runner = Callable[[Sequence[str]], str]
ALSA_VALUES = re.compile(r":\s*values=(on|off)\b")


class HeadphoneJack(Protocol):
    """The headphone jack's plugged state and its changes."""

    def plugged(self) -> bool:
        """Tell whether headphones are plugged in now."""

    def on_change(self, callback: JackCallback) -> None:
        """Call ``callback(plugged)`` whenever the state changes."""


class GpioHeadphoneJack:
    """A jack-sense switch on a GPIO input (logical 1: plugged)."""

    def __init__(self, pin: InputPin) -> None:
        self.pin = pin

    def plugged(self) -> bool:
        """Return the debounced level of the jack-sense input."""
        return self.pin.value

    def on_change(self, callback: JackCallback) -> None:
        """Report each debounced edge of the input."""

        def changed(event: EdgeEvent) -> None:
            """Pass the new level on."""
            callback(event.level)

        self.pin.on_edge(changed)


def run_amixer(command: Sequence[str]) -> str:
    """Run an amixer command and return its standard output.

    Raises:
        DeviceUnavailableError: amixer is missing, failed or hung.
    """
    try:
        done = subprocess.run(
            list(command), capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise DeviceUnavailableError(
            f"the ALSA jack control cannot be read ({exc}); install alsa-utils "
            "or set the headphone jack to gpio"
        ) from exc
    return done.stdout


class AlsaHeadphoneJack:
    """The codec's ALSA jack control, polled with ``amixer cget``."""

    def __init__(
        self,
        card: str = "0",
        control: str = "Headphone Jack",
        poll_s: float = 1.0,
        runner: Runner = run_amixer,
    ) -> None:
        self.command = ["amixer", "-c", card, "cget", f"iface=CARD,name={control}"]
        self.poll_s = poll_s
        self.runner = runner
        self._callbacks: list[JackCallback] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: bool | None = None

    def plugged(self) -> bool:
        """Read the control now.

        Raises:
            DeviceUnavailableError: the control cannot be read or parsed.
        """
        output = self.runner(self.command)
        match = ALSA_VALUES.search(output)
        if match is None:
            raise DeviceUnavailableError(
                f"no on/off value in the jack control's answer: {output[:80]!r}"
            )
        return match.group(1) == "on"

    def on_change(self, callback: JackCallback) -> None:
        """Report changes, polling on a thread started on the first callback."""
        self._callbacks.append(callback)
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._watch, name="headphone-jack", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.poll_s + 5)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                now = self.plugged()
            except DeviceUnavailableError as exc:
                logger.warning("%s", exc)
                self._stop.wait(max(self.poll_s, 30.0))
                continue
            if self._last is not None and now != self._last:
                for callback in list(self._callbacks):
                    callback(now)
            self._last = now
            self._stop.wait(self.poll_s)
