"""A simulated ESC/POS receipt printer: a TCP server that decodes what it gets.

It parses the command stream as a printer would, keeps each receipt's text,
raster images and QR contents (a receipt ends at a paper cut), and answers
the real-time status requests DLE EOT n and GS r n with the bits a real
printer sets, so tests can turn on paper near-end, paper-out, an open cover
or a printer that never answers. Used by the tests and by the ``simulated``
receipt printer backend.
"""

from __future__ import annotations

import enum
import logging
import socket
import threading
from dataclasses import dataclass, field

from PIL import Image

logger = logging.getLogger(__name__)

ESC, GS, DLE, LF = 0x1B, 0x1D, 0x10, 0x0A

# ESC commands followed by a fixed number of parameter bytes.
ESC_ARGS = {
    0x40: 0, 0x61: 1, 0x45: 1, 0x2D: 1, 0x21: 1, 0x64: 1, 0x74: 1, 0x4D: 1,
    0x47: 1, 0x7B: 1, 0x32: 0, 0x33: 1, 0x4A: 1, 0x3D: 1, 0x52: 1, 0x56: 1,
    0x20: 1, 0x70: 3, 0x63: 2, 0x24: 2,
}  # fmt: skip
# GS commands followed by a fixed number of parameter bytes.
GS_ARGS = {
    0x21: 1, 0x42: 1, 0x62: 1, 0x4C: 2, 0x57: 2, 0x48: 1, 0x68: 1, 0x77: 1,
    0x66: 1, 0x49: 1, 0x61: 1, 0x2F: 1,
}  # fmt: skip
QR_STORE, QR_PRINT = 0x50, 0x51


class Paper(enum.StrEnum):
    """The paper roll as the simulated sensor sees it."""

    OK = "ok"
    NEAR_END = "near_end"
    OUT = "out"


@dataclass
class SimulatedReceipt:
    """What the simulator decoded from one receipt."""

    text: str = ""
    images: list[Image.Image] = field(default_factory=list)
    qr_codes: list[str] = field(default_factory=list)
    printed: bool = True
    cut: bool = False

    @property
    def lines(self) -> list[str]:
        """Return the text's non-empty lines."""
        return [line for line in self.text.splitlines() if line.strip()]


class _NeedMore(Exception):
    """The buffer ends inside a command; wait for more bytes."""


class EscposSimulator:
    """Serve one simulated printer on ``host:port`` (port 0 picks one)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.paper = Paper.OK
        self.cover_open = False
        self.silent = False
        self.receipts: list[SimulatedReceipt] = []
        self.unknown: list[bytes] = []
        self.bytes_received = 0
        self._current = SimulatedReceipt()
        self._qr_store = b""
        self._lock = threading.Lock()
        self._printed = threading.Condition(self._lock)
        self._server: socket.socket | None = None
        self._stopping = threading.Event()

    def start(self) -> int:
        """Listen and serve connections in a thread; return the port."""
        server = socket.create_server((self.host, self.port))
        server.settimeout(0.2)
        self._server = server
        self.port = int(server.getsockname()[1])
        threading.Thread(target=self._serve, name="escpos-sim", daemon=True).start()
        logger.debug("simulated ESC/POS printer on %s:%s", self.host, self.port)
        return self.port

    def stop(self) -> None:
        """Stop listening."""
        self._stopping.set()
        if self._server is not None:
            self._server.close()

    def wait_receipt(self, count: int = 1, timeout: float = 5.0) -> SimulatedReceipt:
        """Return the ``count``-th receipt once it has been cut."""
        with self._printed:
            self._printed.wait_for(lambda: len(self.receipts) >= count, timeout)
            if len(self.receipts) < count:
                raise TimeoutError(f"no receipt number {count} within {timeout} s")
            return self.receipts[count - 1]

    def paper_status(self) -> int:
        """Return the DLE EOT 4 byte: fixed bits, near-end, paper-end."""
        value = 0x12
        if self.paper is Paper.NEAR_END:
            value |= 0x0C
        elif self.paper is Paper.OUT:
            value |= 0x6C
        return value

    def offline_status(self) -> int:
        """Return the DLE EOT 2 byte: cover open, paper-end stop."""
        value = 0x12
        if self.cover_open:
            value |= 0x04
        if self.paper is Paper.OUT:
            value |= 0x20
        return value

    def printer_status(self) -> int:
        """Return the DLE EOT 1 byte: offline when out of paper or open."""
        offline = self.cover_open or self.paper is Paper.OUT
        return 0x16 | (0x08 if offline else 0)

    def _serve(self) -> None:
        assert self._server is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(
                target=self._handle, args=(client,), name="escpos-sim-conn", daemon=True
            ).start()

    def _handle(self, client: socket.socket) -> None:
        buffer = bytearray()
        client.settimeout(0.5)
        with client:
            while not self._stopping.is_set():
                try:
                    chunk = client.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                replies = self.feed(buffer, chunk)
                if replies:
                    client.sendall(replies)

    def feed(self, buffer: bytearray, chunk: bytes) -> bytes:
        """Parse ``chunk`` after what ``buffer`` holds; return the replies.

        ``buffer`` keeps one stream's incomplete command between calls: pass
        the same one for every chunk of a connection (TCP, or a serial line
        a test wires up).
        """
        self.bytes_received += len(chunk)
        buffer += chunk
        replies = bytearray()
        while buffer:
            try:
                used, reply = self._parse(bytes(buffer))
            except _NeedMore:
                break
            del buffer[:used]
            if reply is not None and not self.silent:
                replies.append(reply)
        return bytes(replies)

    def _parse(self, data: bytes) -> tuple[int, int | None]:
        first = data[0]
        if first == ESC:
            return self._parse_esc(data), None
        if first == GS:
            return self._parse_gs(data)
        if first == DLE:
            return self._parse_dle(data)
        end = 1
        while end < len(data) and data[end] not in (ESC, GS, DLE):
            end += 1
        text = data[:end].replace(b"\r", b"").decode("cp437", "replace")
        with self._lock:
            self._current.text += text
        return end, None

    def _parse_esc(self, data: bytes) -> int:
        command = _byte(data, 1)
        if command == 0x2A:
            width = _byte(data, 3) + 256 * _byte(data, 4)
            dots = 3 if _byte(data, 2) in (32, 33) else 1
            return _need(data, 5 + width * dots)
        if command not in ESC_ARGS:
            self.unknown.append(data[:2])
            return 2
        return _need(data, 2 + ESC_ARGS[command])

    def _parse_gs(self, data: bytes) -> tuple[int, int | None]:
        command = _byte(data, 1)
        if command == 0x76:
            return self._parse_raster(data), None
        if command == 0x28:
            return self._parse_2d(data), None
        if command == 0x56:
            mode = _byte(data, 2)
            used = _need(data, 4 if mode in (65, 66, 97, 98, 103, 104) else 3)
            self._cut()
            return used, None
        if command == 0x72:
            used = _need(data, 3)
            kind = data[2]
            return used, self._paper_sensor() if kind in (1, 49) else 0
        if command == 0x6B:
            return self._parse_barcode(data), None
        if command not in GS_ARGS:
            self.unknown.append(data[:2])
            return 2, None
        return _need(data, 2 + GS_ARGS[command]), None

    def _parse_dle(self, data: bytes) -> tuple[int, int | None]:
        if _byte(data, 1) != 0x04:
            self.unknown.append(data[:2])
            return 2, None
        used = _need(data, 3)
        kind = data[2]
        replies = {
            1: self.printer_status,
            2: self.offline_status,
            3: lambda: 0x12,
            4: self.paper_status,
        }
        return used, replies.get(kind, lambda: 0x12)()

    def _paper_sensor(self) -> int:
        if self.paper is Paper.OUT:
            return 0x0F
        if self.paper is Paper.NEAR_END:
            return 0x03
        return 0x00

    def _parse_raster(self, data: bytes) -> int:
        header = _need(data, 8)
        width_bytes = data[4] + 256 * data[5]
        height = data[6] + 256 * data[7]
        end = _need(data, header + width_bytes * height)
        bits = data[header:end]
        image = Image.frombytes("1", (width_bytes * 8, height), bits)
        # ESC/POS sets a bit for a black dot; Pillow's "1" mode means white.
        image = Image.eval(image.convert("L"), lambda value: 255 - value)
        with self._lock:
            self._current.images.append(image)
        return end

    def _parse_2d(self, data: bytes) -> int:
        size = _byte(data, 3) + 256 * _byte(data, 4)
        end = _need(data, 5 + size)
        code, function = data[5], data[6]
        if code == 49 and function == QR_STORE:
            self._qr_store = data[8:end]
        elif code == 49 and function == QR_PRINT:
            with self._lock:
                self._current.qr_codes.append(self._qr_store.decode("utf-8", "replace"))
        return end

    def _parse_barcode(self, data: bytes) -> int:
        kind = _byte(data, 2)
        if kind >= 65:
            return _need(data, 4 + _byte(data, 3))
        end = 3
        while True:
            if end >= len(data):
                raise _NeedMore
            if data[end] == 0:
                return end + 1
            end += 1

    def _cut(self) -> None:
        with self._printed:
            receipt = self._current
            receipt.cut = True
            receipt.printed = not (self.paper is Paper.OUT or self.cover_open)
            self.receipts.append(receipt)
            self._current = SimulatedReceipt()
            self._printed.notify_all()


def _byte(data: bytes, index: int) -> int:
    if index >= len(data):
        raise _NeedMore
    return data[index]


def _need(data: bytes, length: int) -> int:
    if len(data) < length:
        raise _NeedMore
    return length
