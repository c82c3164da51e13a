"""Bound blocking library calls that take no timeout of their own.

Some libraries (picamera2, OpenCV, python-periphery opening a line) can block
in C code with no way to pass a timeout. :func:`call_with_timeout` runs such a
call in a daemon thread and gives up waiting after ``timeout`` seconds, so the
caller never hangs; the abandoned thread ends when the library returns.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from drivers.errors import DeviceTimeoutError

logger = logging.getLogger(__name__)

T = TypeVar("T")


def call_with_timeout(function: Callable[[], T], timeout: float, what: str) -> T:
    """Return ``function()``, or raise DeviceTimeoutError after ``timeout`` s."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(function())
        except BaseException as exc:  # handed to the caller below
            error.append(exc)

    worker = threading.Thread(target=run, name=f"call:{what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        logger.warning("%s did not return within %.1f s", what, timeout)
        raise DeviceTimeoutError(
            f"{what} did not answer within {timeout:.1f} s; check that the device "
            "is connected and powered"
        )
    if error:
        raise error[0]
    return result[0]
