"""A keyboard-mode scanner, fed the kernel's input events through a pipe."""

from __future__ import annotations

import os
import struct
import threading
from pathlib import Path

import pytest

from drivers.code_reader_hid import (
    EV_KEY,
    EVENT,
    KEY_LEFTSHIFT,
    KEYMAP,
    HidCodeReader,
)
from drivers.errors import CodeReadError
from drivers.health import HealthState

ENTER = 28
SYN = struct.Struct("llHHi").pack(0, 0, 0, 0, 0)


def key_events(text: str) -> bytes:
    """Return the input events a US-layout scanner sends to type ``text``."""
    reverse: dict[str, tuple[int, bool]] = {}
    for code, (plain, shifted) in KEYMAP.items():
        reverse.setdefault(plain, (code, False))
        reverse.setdefault(shifted, (code, True))
    out = bytearray()
    for character in text:
        key, with_shift = reverse[character]
        if with_shift:
            out += EVENT.pack(0, 0, EV_KEY, KEY_LEFTSHIFT, 1)
        out += EVENT.pack(0, 0, EV_KEY, key, 1) + SYN
        out += EVENT.pack(0, 0, EV_KEY, key, 0) + SYN
        if with_shift:
            out += EVENT.pack(0, 0, EV_KEY, KEY_LEFTSHIFT, 0)
    out += EVENT.pack(0, 0, EV_KEY, ENTER, 1) + EVENT.pack(0, 0, EV_KEY, ENTER, 0)
    return bytes(out)


@pytest.fixture
def device(tmp_path: Path) -> Path:
    """A FIFO standing in for /dev/input/eventN."""
    path = tmp_path / "event-kbd"
    os.mkfifo(path)
    return path


def write_later(path: Path, data: bytes, chunk: int = 7) -> threading.Thread:
    """Write ``data`` to the FIFO in odd-sized chunks from another thread."""

    def run() -> None:
        with path.open("wb", buffering=0) as pipe:
            for start in range(0, len(data), chunk):
                pipe.write(data[start : start + chunk])

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_printed_copys_qr_text_is_read(device: Path) -> None:
    text = "HTTPS://TRA.VN/C/K7QF-2M9X-R4TD-W8ZN VC1:6BFOXN*TS0BI$ZD-PH"
    reader = HidCodeReader("code_reader", str(device))
    writer = write_later(device, key_events(text) + key_events("second|code"))

    first = reader.read(timeout=5)
    second = reader.read(timeout=5)
    writer.join()
    reader.close()

    assert first == text
    assert second == "second|code"
    assert reader.health().state is HealthState.OK


def test_two_scans_in_one_read_are_both_returned(device: Path) -> None:
    # One write is read at once: the second code is already buffered when
    # the first is returned, and the scanner has gone quiet (closed) since.
    data = key_events("first") + key_events("second")
    reader = HidCodeReader("code_reader", str(device))
    writer = write_later(device, data, chunk=len(data))

    first = reader.read(timeout=5)
    writer.join()
    second = reader.read(timeout=1)
    reader.close()

    assert (first, second) == ("first", "second")


def test_nothing_typed_returns_none(device: Path) -> None:
    reader = HidCodeReader("code_reader", str(device))
    holder = os.open(device, os.O_RDWR | os.O_NONBLOCK)
    try:
        assert reader.read(timeout=0.2) is None
    finally:
        os.close(holder)
        reader.close()


def test_unplugged_scanner_fails_clearly(tmp_path: Path) -> None:
    reader = HidCodeReader("code_reader", str(tmp_path / "gone"))

    with pytest.raises(CodeReadError, match="plugged in"):
        reader.read(timeout=0.2)
    assert reader.health().state is HealthState.FAILED
