"""GPIO: debounced inputs with edge events, and outputs, mapped by name.

:class:`PinBank` is what the agent uses: ``bank.input("presence")`` and
``bank.output("light")``. A :class:`LineDriver` talks to the lines: the
Linux character device through python-periphery
(:class:`drivers.gpio_periphery.PeripheryLineDriver`) or
:class:`SimulatedLineDriver`, which tests drive. Debouncing is done here, the
same for both: a new level counts only after it has held for the pin's
``debounce_ms``. Edge callbacks run on the bank's monitor thread and must
return quickly; from asyncio, hand them on with ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from drivers.config import GpioSection, InputPinSection, OutputPinSection
from drivers.errors import DeviceTimeoutError, GpioError
from drivers.health import Capability, Health, HealthTracker, Reason

logger = logging.getLogger(__name__)

# Pin names the agent knows, and what each one lets it do.
PIN_CAPABILITIES = {
    "presence": Capability.SENSE_PRESENCE,
    "lid": Capability.SENSE_LID,
    "tray": Capability.SENSE_LID,
    "light": Capability.SIGNAL_LIGHT,
    "buzzer": Capability.SIGNAL_SOUND,
}


class Edge(enum.StrEnum):
    """The direction of a logical level change."""

    RISING = "rising"
    FALLING = "falling"


@dataclass(frozen=True)
class EdgeEvent:
    """A debounced change of one input's logical level."""

    pin: str
    edge: Edge
    level: bool
    timestamp: float


EdgeCallback = Callable[[EdgeEvent], None]
RawEvent = tuple[str, bool, float]


class LineDriver(Protocol):
    """Raw access to GPIO lines by name; physical levels, no debouncing."""

    def open_input(self, name: str, section: InputPinSection) -> bool:
        """Request an input line with edge events; return its level."""

    def open_output(self, name: str, section: OutputPinSection) -> None:
        """Request an output line at its initial level."""

    def write(self, name: str, level: bool) -> None:
        """Drive an output line to a physical level."""

    def wait_events(self, timeout: float) -> list[RawEvent]:
        """Return input changes as (name, physical level, monotonic time)."""

    def close(self) -> None:
        """Release every line."""


class InputPin:
    """A debounced input: its level, edge callbacks, waiting for a level."""

    def __init__(self, name: str, section: InputPinSection, level: bool) -> None:
        self.name = name
        self.section = section
        self._level = level
        self._callbacks: list[EdgeCallback] = []
        self._changed = threading.Condition()

    @property
    def value(self) -> bool:
        """Return the debounced logical level."""
        with self._changed:
            return self._level

    def on_edge(self, callback: EdgeCallback) -> None:
        """Call ``callback(event)`` on every debounced change."""
        with self._changed:
            self._callbacks.append(callback)

    def wait_for(self, level: bool, timeout: float) -> bool:
        """Wait until the level is ``level``; return False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._level is level, timeout)

    def _commit(self, level: bool, timestamp: float) -> None:
        with self._changed:
            if level is self._level:
                return
            self._level = level
            callbacks = list(self._callbacks)
            self._changed.notify_all()
        event = EdgeEvent(
            self.name, Edge.RISING if level else Edge.FALLING, level, timestamp
        )
        logger.debug("%s %s", self.name, event.edge.value)
        for callback in callbacks:
            try:
                callback(event)
            except Exception:
                logger.exception("edge callback for %s failed", self.name)


class OutputPin:
    """An output: set, clear, pulse or blink (logical levels)."""

    def __init__(
        self, name: str, section: OutputPinSection, driver: LineDriver
    ) -> None:
        self.name = name
        self.section = section
        self._driver = driver
        self._level = section.initial
        self._lock = threading.Lock()

    @property
    def value(self) -> bool:
        """Return the logical level last set."""
        return self._level

    def set(self, level: bool = True) -> None:
        """Set the logical level."""
        with self._lock:
            try:
                self._driver.write(self.name, level ^ self.section.active_low)
            except OSError as exc:
                raise GpioError(f"cannot drive {self.name}: {exc}") from exc
            self._level = level

    def clear(self) -> None:
        """Set the logical level to 0."""
        self.set(False)

    def pulse(self, seconds: float) -> None:
        """Set the output for ``seconds`` (at most 10), then clear it."""
        self.set(True)
        try:
            time.sleep(min(seconds, 10.0))
        finally:
            self.clear()

    def blink(self, times: int = 3, on_s: float = 0.2, off_s: float = 0.2) -> None:
        """Blink ``times`` times (at most 20), then leave the output cleared."""
        for number in range(min(times, 20)):
            self.pulse(on_s)
            if number + 1 < times:
                time.sleep(min(off_s, 10.0))


class PinBank:
    """Every configured pin, with one monitor thread that debounces inputs."""

    def __init__(self, name: str, section: GpioSection, driver: LineDriver) -> None:
        self.name = name
        self.section = section
        self.driver = driver
        self.tracker = HealthTracker(name)
        self.inputs: dict[str, InputPin] = {}
        self.outputs: dict[str, OutputPin] = {}
        self._pending: dict[str, tuple[bool, float]] = {}
        self._running = threading.Event()
        self._monitor: threading.Thread | None = None

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Return what the configured pins let the agent do."""
        names = [*self.section.inputs, *self.section.outputs]
        return frozenset(PIN_CAPABILITIES[n] for n in names if n in PIN_CAPABILITIES)

    def health(self) -> Health:
        """Return the bank's health."""
        return self.tracker.get()

    def start(self) -> None:
        """Open every line and start debouncing the inputs."""
        if self._running.is_set():
            return
        try:
            for name, out in self.section.outputs.items():
                self.driver.open_output(name, out)
                self.outputs[name] = OutputPin(name, out, self.driver)
            for name, pin in self.section.inputs.items():
                raw = self.driver.open_input(name, pin)
                self.inputs[name] = InputPin(name, pin, raw ^ pin.active_low)
        except (OSError, GpioError) as exc:
            self.tracker.failed(Reason.DEVICE_ERROR, str(exc))
            raise GpioError(
                f"cannot open the GPIO lines on {self.section.chip}: {exc}; check "
                "gpio.chip and the line numbers, and that no other program holds them"
            ) from exc
        self._running.set()
        self.tracker.ok()
        self._monitor = threading.Thread(target=self._watch, name="gpio", daemon=True)
        self._monitor.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the monitor and release the lines."""
        self._running.clear()
        if self._monitor is not None:
            self._monitor.join(timeout)
        self.driver.close()

    def input(self, name: str) -> InputPin:
        """Return the input named ``name``."""
        try:
            return self.inputs[name]
        except KeyError as exc:
            raise GpioError(f"no GPIO input named {name!r}; see gpio.inputs") from exc

    def output(self, name: str) -> OutputPin:
        """Return the output named ``name``."""
        try:
            return self.outputs[name]
        except KeyError as exc:
            raise GpioError(f"no GPIO output named {name!r}; see gpio.outputs") from exc

    def _watch(self) -> None:
        while self._running.is_set():
            try:
                events = self.driver.wait_events(self._wait_time())
            except (OSError, GpioError, DeviceTimeoutError) as exc:
                self.tracker.failed(Reason.DEVICE_ERROR, str(exc))
                time.sleep(0.5)
                continue
            for name, raw, stamp in events:
                pin = self.inputs.get(name)
                if pin is not None:
                    self._pending[name] = (raw ^ pin.section.active_low, stamp)
            self._settle(time.monotonic())

    def _wait_time(self) -> float:
        if not self._pending:
            return 0.1
        now = time.monotonic()
        left = [
            stamp + self.inputs[name].section.debounce_ms / 1000 - now
            for name, (_, stamp) in self._pending.items()
        ]
        return max(0.0, min(0.1, *left))

    def _settle(self, now: float) -> None:
        for name, (level, stamp) in list(self._pending.items()):
            pin = self.inputs[name]
            if now - stamp >= pin.section.debounce_ms / 1000:
                del self._pending[name]
                pin._commit(level, now)


class UnavailableLineDriver:
    """Stand in for a GPIO backend that cannot load; opening gives the reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def open_input(self, name: str, section: InputPinSection) -> bool:
        """Refuse, giving the reason."""
        raise GpioError(self.reason)

    def open_output(self, name: str, section: OutputPinSection) -> None:
        """Refuse, giving the reason."""
        raise GpioError(self.reason)

    def write(self, name: str, level: bool) -> None:
        """Refuse, giving the reason."""
        raise GpioError(self.reason)

    def wait_events(self, timeout: float) -> list[RawEvent]:
        """Refuse, giving the reason."""
        raise GpioError(self.reason)

    def close(self) -> None:
        """Nothing to release."""


class SimulatedLineDriver:
    """Lines that tests drive: inputs by :meth:`drive`, outputs recorded."""

    def __init__(self) -> None:
        self.levels: dict[str, bool] = {}
        self.history: dict[str, list[tuple[bool, float]]] = {}
        self._events: queue.Queue[RawEvent] = queue.Queue()

    def open_input(self, name: str, section: InputPinSection) -> bool:
        """Start the input at its inactive physical level."""
        self.levels.setdefault(name, section.active_low)
        return self.levels[name]

    def open_output(self, name: str, section: OutputPinSection) -> None:
        """Start the output at its initial level."""
        self.write(name, section.initial ^ section.active_low)

    def write(self, name: str, level: bool) -> None:
        """Record the physical level written."""
        self.levels[name] = level
        self.history.setdefault(name, []).append((level, time.monotonic()))

    def drive(self, name: str, level: bool) -> None:
        """Set an input's physical level, as a sensor would."""
        if self.levels.get(name) is level:
            return
        self.levels[name] = level
        self._events.put((name, level, time.monotonic()))

    def bounce(
        self, name: str, level: bool, changes: int = 6, gap_s: float = 0.002
    ) -> None:
        """Toggle an input ``changes`` times ``gap_s`` apart, ending at ``level``."""
        for number in range(changes):
            self.drive(name, level if number % 2 == 0 else not level)
            time.sleep(gap_s)
        self.drive(name, level)

    def wait_events(self, timeout: float) -> list[RawEvent]:
        """Return queued changes, waiting up to ``timeout`` for the first."""
        try:
            events = [self._events.get(timeout=timeout)]
        except queue.Empty:
            return []
        while not self._events.empty():
            events.append(self._events.get_nowait())
        return events

    def close(self) -> None:
        """Nothing to release."""
