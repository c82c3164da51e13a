"""A USB HID barcode scanner in keyboard mode, read from its Linux input device.

A scanner in keyboard mode types each code as key presses followed by
Enter. Reading its ``/dev/input/event*`` device directly (and grabbing it, so
the keystrokes never reach the kiosk's browser) gives the code without a
keyboard layout in between. The events are the kernel's ``struct
input_event``: a timestamp, then type, code and value.

Keyboard mode carries only what a US keyboard can type. The citizen ID card's
QR code holds Vietnamese names in UTF-8, which no key press sequence
reproduces reliably, so a kiosk that reads ID cards with a scanner must put
it in serial (USB CDC) mode and use :class:`~drivers.code_reader.SerialCodeReader`;
keyboard mode suits the printed copy's QR code, whose text is ASCII.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import select
import struct
import time
from typing import NoReturn

from drivers.code_reader import CAPABILITIES
from drivers.errors import CodeReadError
from drivers.health import Capability, Health, HealthTracker, Reason

logger = logging.getLogger(__name__)

EVENT = struct.Struct("llHHi")
EV_KEY = 1
KEY_PRESS, KEY_REPEAT = 1, 2
KEY_LEFTSHIFT, KEY_RIGHTSHIFT = 42, 54
ENTER_KEYS = frozenset({28, 96})
EVIOCGRAB = 0x40044590
MAX_CODE_LENGTH = 4096

# Linux key codes to (plain, shifted) characters on a US layout.
_ROWS = {
    2: "1!",
    3: "2@",
    4: "3#",
    5: "4$",
    6: "5%",
    7: "6^",
    8: "7&",
    9: "8*",
    10: "9(",
    11: "0)",
    12: "-_",
    13: "=+",
    26: "[{",
    27: "]}",
    39: ";:",
    40: "'\"",
    41: "`~",
    43: "\\|",
    51: ",<",
    52: ".>",
    53: "/?",
    57: "  ",
}
_LETTERS = {
    code: letter
    for row, start in (("qwertyuiop", 16), ("asdfghjkl", 30), ("zxcvbnm", 44))
    for code, letter in enumerate(row, start)
}
KEYMAP: dict[int, tuple[str, str]] = {
    **{code: (pair[0], pair[1]) for code, pair in _ROWS.items()},
    **{code: (letter, letter.upper()) for code, letter in _LETTERS.items()},
}


class HidCodeReader:
    """Read codes typed by a keyboard-mode scanner at ``device``."""

    def __init__(self, name: str, device: str) -> None:
        self.name = name
        self.device = device
        self.tracker = HealthTracker(name)
        self._fd: int | None = None
        self._shift = False
        self._typed: list[str] = []
        self._pending = b""

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Return what the reader lets the agent do."""
        return CAPABILITIES

    def health(self) -> Health:
        """Return the scanner's health."""
        return self.tracker.get()

    def read(self, timeout: float) -> str | None:
        """Return the next code typed, or None when none ended in time.

        Raises:
            CodeReadError: the device is gone or cannot be read.
        """
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            code = self._read_events(left)
            if code is not None:
                self.tracker.ok()
                return code

    def close(self) -> None:
        """Release the device."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _read_events(self, timeout: float) -> str | None:
        # A code already buffered (two scans arriving in one read) is
        # returned before waiting on the device.
        code = self._consume()
        if code is not None:
            return code
        fd = self._open()
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return None
        try:
            chunk = os.read(fd, EVENT.size * 64)
        except BlockingIOError:
            return None
        except OSError as exc:
            self._gone(exc)
        if not chunk:
            self._gone(OSError(errno.ENODEV, "the device closed"))
        self._pending += chunk
        return self._consume()

    def _consume(self) -> str | None:
        while len(self._pending) >= EVENT.size:
            event = self._pending[: EVENT.size]
            self._pending = self._pending[EVENT.size :]
            _sec, _usec, kind, key, value = EVENT.unpack(event)
            code = self._key(kind, key, value)
            if code is not None:
                return code
        return None

    def _key(self, kind: int, key: int, value: int) -> str | None:
        if kind != EV_KEY:
            return None
        if key in (KEY_LEFTSHIFT, KEY_RIGHTSHIFT):
            self._shift = value != 0
            return None
        if value not in (KEY_PRESS, KEY_REPEAT):
            return None
        if key in ENTER_KEYS:
            code, self._typed = "".join(self._typed), []
            return code or None
        characters = KEYMAP.get(key)
        if characters is None:
            logger.debug("scanner %s sent unmapped key %s", self.device, key)
            return None
        if len(self._typed) < MAX_CODE_LENGTH:
            self._typed.append(characters[1] if self._shift else characters[0])
        return None

    def _open(self) -> int:
        if self._fd is None:
            try:
                fd = os.open(self.device, os.O_RDONLY | os.O_NONBLOCK)
            except OSError as exc:
                self._gone(exc)
            self._grab(fd)
            self._fd = fd
        return self._fd

    def _grab(self, fd: int) -> None:
        try:
            fcntl.ioctl(fd, EVIOCGRAB, 1)
        except OSError as exc:
            # Not an input device (a test's pipe) or grabbed elsewhere: the
            # codes still arrive, but may also reach the focused window.
            logger.debug("cannot grab %s: %s", self.device, exc)

    def _gone(self, exc: OSError) -> NoReturn:
        self.close()
        self.tracker.failed(Reason.DEVICE_ERROR, str(exc))
        raise CodeReadError(
            f"code scanner {self.device} cannot be read ({exc.strerror or exc}); "
            "check that it is plugged in"
        ) from exc
