"""The ESC/POS receipt printer, over the network, USB or a serial line.

Before each receipt the printer is asked for its paper and cover state
(DLE EOT 4 and DLE EOT 2); after it, once more, so a receipt is reported
printed only when the printer has taken every byte and still answers. A
receipt that cannot be printed raises an error after ``attempts`` tries,
never silently. Every call is synchronous and bounded by the connection's
timeout; from asyncio use ``asyncio.to_thread``.
"""

from __future__ import annotations

import copy
import importlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from drivers.config import ReceiptPrinterSection
from drivers.errors import (
    BackendMissingError,
    DeviceTimeoutError,
    DeviceUnavailableError,
    DriverError,
    PaperOutError,
)
from drivers.health import Capability, Health, HealthTracker, Reason
from drivers.receipt import Receipt, render_text
from drivers.timeouts import call_with_timeout

logger = logging.getLogger(__name__)

DLE_EOT = b"\x10\x04"
PAPER_STATUS = DLE_EOT + b"\x04"
OFFLINE_STATUS = DLE_EOT + b"\x02"
NEAR_END_BITS = 0x0C
PAPER_OUT_BITS = 0x60
COVER_OPEN_BIT = 0x04
NATIVE_QR_LIMIT = 2000

PrinterFactory = Callable[[], Any]


def import_escpos(module: str) -> Any:
    """Return ``escpos.<module>``, or say what to install."""
    try:
        return importlib.import_module(f"escpos.{module}")
    except ImportError as exc:
        raise BackendMissingError(
            "the receipt printer needs python-escpos: pip install python-escpos "
            "(add the usb or serial extra for those connections)"
        ) from exc


def make_factory(
    section: ReceiptPrinterSection, port: int | None = None
) -> PrinterFactory:
    """Return a function that makes an unopened python-escpos printer."""
    printer = import_escpos("printer")
    timeout = section.timeout_s
    if section.backend in ("network", "simulated"):
        target = port if port is not None else section.port
        return lambda: printer.Network(section.host, target, timeout=timeout)
    if section.backend == "usb":
        return lambda: printer.Usb(
            section.usb_vendor, section.usb_product, timeout=int(timeout * 1000)
        )
    return lambda: printer.Serial(
        section.serial_device, baudrate=section.baudrate, timeout=timeout
    )


def paper_reason(paper: int, offline: int) -> Reason:
    """Map the DLE EOT 4 and DLE EOT 2 status bytes to a health reason."""
    if offline & COVER_OPEN_BIT:
        return Reason.COVER_OPEN
    if paper & PAPER_OUT_BITS:
        return Reason.PAPER_OUT
    if paper & NEAR_END_BITS:
        return Reason.PAPER_LOW
    return Reason.NONE


class ReceiptPrinter:
    """Print receipts and report paper and connection health."""

    def __init__(
        self, name: str, section: ReceiptPrinterSection, factory: PrinterFactory
    ) -> None:
        self.name = name
        self.section = section
        self.factory = factory
        self.tracker = HealthTracker(name)
        self._lock = threading.Lock()

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Return what the printer lets the agent do."""
        return frozenset({Capability.PRINT_RECEIPTS})

    def health(self) -> Health:
        """Return the last known health."""
        return self.tracker.get()

    def check(self) -> Health:
        """Ask the printer for its paper and cover state."""
        with self._lock:
            try:
                self._bounded(self._check_once, "checking")
            except DriverError as exc:
                logger.debug("receipt printer check failed: %s", exc)
        return self.health()

    def print_receipt(self, receipt: Receipt) -> float:
        """Print ``receipt``; return the seconds it took.

        Raises:
            PaperOutError: no paper or the cover is open (nothing is printed).
            DeviceTimeoutError, DeviceUnavailableError: the printer did not
                answer or is unplugged, after every attempt.
            ReceiptError: the receipt itself cannot be printed.
        """
        receipt.check()
        payload = self._compose(receipt)
        started = time.monotonic()
        with self._lock:
            for attempt in range(1, self.section.attempts + 1):
                try:
                    self._bounded(lambda: self._send(payload), "printing")
                    break
                except (DeviceTimeoutError, DeviceUnavailableError) as exc:
                    if attempt == self.section.attempts:
                        raise
                    logger.warning(
                        "receipt %s attempt %s failed: %s",
                        receipt.identifier,
                        attempt,
                        exc,
                    )
        elapsed = time.monotonic() - started
        logger.info("receipt %s printed in %.3f s", receipt.identifier, elapsed)
        return elapsed

    def close(self) -> None:
        """Nothing to release: each receipt opens its own connection."""

    def _bounded(self, action: Callable[[], None], what: str) -> None:
        """Run ``action`` with an overall deadline.

        Socket calls carry their own timeout, but a USB or serial write with
        flow control can block in the library; this bounds every backend.
        """
        budget = self.section.timeout_s * 6
        try:
            call_with_timeout(action, budget, f"receipt printer {self.name} {what}")
        except DeviceTimeoutError:
            self.tracker.failed(Reason.NOT_ANSWERING, f"{what} took over {budget} s")
            raise

    def _check_once(self) -> None:
        printer = self._open()
        try:
            self._status(printer)
        finally:
            printer.close()

    def _compose(self, receipt: Receipt) -> bytes:
        dummy_class = import_escpos("printer").Dummy
        section = self.section
        dummy = dummy_class()
        # A private copy of the profile that knows the paper width, so that
        # python-escpos does not complain about it on standard output.
        dummy.profile.profile_data = copy.deepcopy(dummy.profile.profile_data)
        dummy.profile.profile_data["media"]["width"]["pixels"] = section.width_px
        dummy.hw("INIT")
        if receipt.lines:
            image = render_text(
                receipt.lines, section.font, section.font_size, section.width_px
            )
            dummy.image(image, impl="bitImageRaster", center=False)
        dummy.set(align="center", bold=True, double_height=True)
        dummy.textln(receipt.identifier)
        dummy.set(align="center", bold=False, normal_textsize=True)
        if receipt.code_label:
            label = render_text(
                (receipt.code_label,), section.font, section.font_size, section.width_px
            )
            dummy.image(label, impl="bitImageRaster", center=False)
        dummy.textln(receipt.access_code)
        if receipt.qr_payload:
            self._add_qr(dummy, receipt.qr_payload)
        if receipt.footer:
            image = render_text(
                receipt.footer, section.font, section.font_size, section.width_px
            )
            dummy.image(image, impl="bitImageRaster", center=False)
        dummy.cut()
        return bytes(dummy.output)

    def _add_qr(self, dummy: Any, payload: str) -> None:
        native = self.section.native_qr and len(payload.encode()) <= NATIVE_QR_LIMIT
        if native:
            dummy.qr(payload, native=True, size=self.section.qr_size)
        else:
            dummy.qr(
                payload,
                native=False,
                size=self.section.qr_size,
                image_arguments={"impl": "bitImageRaster", "center": True},
            )

    def _send(self, payload: bytes) -> None:
        printer = self._open()
        try:
            reason = self._status(printer)
            if reason in (Reason.PAPER_OUT, Reason.COVER_OPEN):
                raise PaperOutError(
                    f"receipt printer {self.name}: {reason.value}; load paper or "
                    "close the cover, then print the receipt again"
                )
            self._write(printer, payload)
            self._status(printer)
        finally:
            try:
                printer.close()
            except Exception as exc:
                logger.debug("closing receipt printer failed: %s", exc)

    def _open(self) -> Any:
        not_found = import_escpos("exceptions").DeviceNotFoundError
        printer = self.factory()
        try:
            printer.open()
        except (not_found, OSError) as exc:
            self.tracker.failed(Reason.PRINTER_OFFLINE, str(exc))
            raise DeviceUnavailableError(
                f"receipt printer {self.name} cannot be reached ({exc}); check its "
                "cable, power and receipt_printer settings"
            ) from exc
        device = printer.device
        if isinstance(device, socket.socket):
            # Status requests are 3 bytes each; without this, Nagle's
            # algorithm holds each one back until the previous is acknowledged.
            device.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return printer

    def _write(self, printer: Any, payload: bytes) -> None:
        try:
            printer._raw(payload)
        except TimeoutError as exc:
            self.tracker.failed(Reason.NOT_ANSWERING, "write timed out")
            raise DeviceTimeoutError(
                f"receipt printer {self.name} stopped taking data; check it"
            ) from exc
        except OSError as exc:
            self.tracker.failed(Reason.PRINTER_OFFLINE, str(exc))
            raise DeviceUnavailableError(
                f"receipt printer {self.name} went away mid-receipt ({exc})"
            ) from exc

    def _status(self, printer: Any) -> Reason:
        paper = self._query(printer, PAPER_STATUS)
        offline = self._query(printer, OFFLINE_STATUS)
        reason = paper_reason(paper, offline)
        if reason in (Reason.PAPER_OUT, Reason.COVER_OPEN):
            self.tracker.failed(reason, f"status {paper:#04x}/{offline:#04x}")
        elif reason is Reason.PAPER_LOW:
            self.tracker.degraded(reason, "paper near its end")
        else:
            self.tracker.ok()
        return reason

    def _query(self, printer: Any, request: bytes) -> int:
        try:
            printer._raw(request)
            answer = _read_status_byte(printer)
        except TimeoutError as exc:
            self.tracker.failed(Reason.NOT_ANSWERING, "no status reply")
            raise DeviceTimeoutError(
                f"receipt printer {self.name} did not answer a status request "
                f"within {self.section.timeout_s:.1f} s; check it is on and online"
            ) from exc
        except OSError as exc:
            self.tracker.failed(Reason.PRINTER_OFFLINE, str(exc))
            raise DeviceUnavailableError(
                f"receipt printer {self.name} went away ({exc})"
            ) from exc
        if not answer:
            self.tracker.failed(Reason.PRINTER_OFFLINE, "connection closed")
            raise DeviceUnavailableError(
                f"receipt printer {self.name} closed the connection"
            )
        return int(answer[-1])


def _read_status_byte(printer: Any) -> bytes:
    """Read the one-byte answer to a real-time status request.

    python-escpos reads 16 bytes; a serial line (pyserial) then waits for the
    whole timeout, since a status answer is a single byte.
    """
    device = printer.device
    if hasattr(device, "in_waiting"):
        return bytes(device.read(1))
    return bytes(printer._read())
