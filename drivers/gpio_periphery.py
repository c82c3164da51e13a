"""GPIO lines through the Linux character device, with python-periphery.

Each input is requested with edge events on both edges; one ``select`` over
their file descriptors waits for any of them with a timeout.
"""

from __future__ import annotations

import importlib
import logging
import select
import time
from typing import Any

from drivers.config import InputPinSection, OutputPinSection
from drivers.errors import BackendMissingError, GpioError
from drivers.gpio import RawEvent

logger = logging.getLogger(__name__)


def import_periphery() -> Any:
    """Return the ``periphery`` module, or say what to install."""
    try:
        return importlib.import_module("periphery")
    except ImportError as exc:
        raise BackendMissingError(
            "the periphery GPIO backend needs python-periphery: "
            "pip install python-periphery"
        ) from exc


class PeripheryLineDriver:
    """Lines of one GPIO chip (``/dev/gpiochipN``)."""

    def __init__(self, chip: str) -> None:
        self.chip = chip
        self._periphery = import_periphery()
        self._inputs: dict[str, Any] = {}
        self._outputs: dict[str, Any] = {}

    def open_input(self, name: str, section: InputPinSection) -> bool:
        """Request the line as an input with both edges reported."""
        line = self._request(
            name, section.line, "in", edge="both", bias=section.bias, label=name
        )
        self._inputs[name] = line
        return bool(line.read())

    def open_output(self, name: str, section: OutputPinSection) -> None:
        """Request the line as an output at its initial physical level."""
        physical = section.initial ^ section.active_low
        direction = "high" if physical else "low"
        self._outputs[name] = self._request(name, section.line, direction, label=name)

    def write(self, name: str, level: bool) -> None:
        """Drive an output line."""
        self._outputs[name].write(level)

    def wait_events(self, timeout: float) -> list[RawEvent]:
        """Wait for edges on any input; return (name, level, time) for each."""
        if not self._inputs:
            time.sleep(timeout)
            return []
        by_fd = {line.fd: name for name, line in self._inputs.items()}
        ready, _, _ = select.select(list(by_fd), [], [], timeout)
        events: list[RawEvent] = []
        for fd in ready:
            name = by_fd[fd]
            edge = self._inputs[name].read_event().edge
            events.append((name, edge == "rising", time.monotonic()))
        return events

    def close(self) -> None:
        """Release every line."""
        for line in [*self._inputs.values(), *self._outputs.values()]:
            try:
                line.close()
            except OSError as exc:
                logger.debug("closing a GPIO line failed: %s", exc)
        self._inputs.clear()
        self._outputs.clear()

    def _request(self, name: str, line: int, direction: str, **options: Any) -> Any:
        try:
            return self._periphery.CdevGPIO(self.chip, line, direction, **options)
        except (OSError, TypeError, ValueError) as exc:
            raise GpioError(
                f"cannot request line {line} ({name}) on {self.chip}: {exc}"
            ) from exc
