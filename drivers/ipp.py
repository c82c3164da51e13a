"""A small IPP/1.1 client for CUPS: print, follow and cancel jobs with timeouts.

The ``lp``/``lpstat`` tools do not report a job's final state (completed,
aborted, canceled) in a parseable form, and pycups needs a C build and takes
no timeout per call. IPP is what both speak to cupsd; the four operations the
kiosk needs fit in this module, over ``http.client`` with a socket timeout.
"""

from __future__ import annotations

import http.client
import logging
import struct
from dataclasses import dataclass, field
from typing import Any

from drivers.errors import DeviceTimeoutError, DeviceUnavailableError, PrintError

logger = logging.getLogger(__name__)

PRINT_JOB = 0x0002
CANCEL_JOB = 0x0008
GET_JOB_ATTRIBUTES = 0x0009
GET_PRINTER_ATTRIBUTES = 0x000B

OPERATION_GROUP = 0x01
JOB_GROUP = 0x02
PRINTER_GROUP = 0x04
END_TAG = 0x03
INTEGER = 0x21
BOOLEAN = 0x22
ENUM = 0x23
TEXT = 0x41
NAME = 0x42
KEYWORD = 0x44
URI = 0x45
CHARSET = 0x47
LANGUAGE = 0x48
MIME_TYPE = 0x49

NOT_ACCEPTING_JOBS = 0x0506

Value = int | bool | str | bytes


@dataclass
class IppResponse:
    """A decoded IPP response: status and attributes by group."""

    status: int
    groups: list[tuple[int, dict[str, list[Value]]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Return whether the status is one of the successful-ok codes."""
        return self.status < 0x0100

    def first(self, group: int, name: str) -> Value | None:
        """Return the first value of ``name`` in the first ``group``."""
        for tag, attributes in self.groups:
            if tag == group and name in attributes:
                return attributes[name][0]
        return None

    def values(self, group: int, name: str) -> list[Value]:
        """Return every value of ``name`` in the first ``group`` holding it."""
        for tag, attributes in self.groups:
            if tag == group and name in attributes:
                return attributes[name]
        return []

    def message(self) -> str:
        """Return the server's status message, if any."""
        text = self.first(OPERATION_GROUP, "status-message")
        return str(text) if text is not None else f"IPP status 0x{self.status:04x}"


def _attribute(tag: int, name: str, value: Value) -> bytes:
    if isinstance(value, bool):
        raw = b"\x01" if value else b"\x00"
    elif isinstance(value, int):
        raw = struct.pack(">i", value)
    elif isinstance(value, str):
        raw = value.encode("utf-8")
    else:
        raw = value
    encoded = name.encode("ascii")
    return (
        struct.pack(">BH", tag, len(encoded))
        + encoded
        + struct.pack(">H", len(raw))
        + raw
    )


def encode_request(
    operation: int,
    request_id: int,
    operation_attributes: list[tuple[int, str, Value]],
    job_attributes: list[tuple[int, str, Value]] | None = None,
) -> bytes:
    """Return an IPP/1.1 request header with its attribute groups."""
    parts = [struct.pack(">BBHI", 1, 1, operation, request_id)]
    parts.append(bytes([OPERATION_GROUP]))
    parts.append(_attribute(CHARSET, "attributes-charset", "utf-8"))
    parts.append(_attribute(LANGUAGE, "attributes-natural-language", "en"))
    parts += [_attribute(tag, name, value) for tag, name, value in operation_attributes]
    if job_attributes:
        parts.append(bytes([JOB_GROUP]))
        parts += [_attribute(tag, name, value) for tag, name, value in job_attributes]
    parts.append(bytes([END_TAG]))
    return b"".join(parts)


def _decode_value(tag: int, raw: bytes) -> Value:
    if tag in (INTEGER, ENUM) and len(raw) == 4:
        return int(struct.unpack(">i", raw)[0])
    if tag == BOOLEAN and len(raw) == 1:
        return raw != b"\x00"
    if 0x40 <= tag <= 0x4F:
        return raw.decode("utf-8", "replace")
    return raw


def decode_response(data: bytes) -> IppResponse:
    """Decode an IPP response body.

    Raises:
        PrintError: the body is truncated or not IPP.
    """
    try:
        return _decode(data)
    except (struct.error, IndexError) as exc:
        raise PrintError(
            "CUPS sent a malformed IPP response; check the server"
        ) from exc


def _decode(data: bytes) -> IppResponse:
    _, _, status, _ = struct.unpack(">BBHI", data[:8])
    response = IppResponse(status)
    position, name = 8, ""
    attributes: dict[str, list[Value]] = {}
    while position < len(data):
        tag = data[position]
        position += 1
        if tag == END_TAG:
            break
        if tag < 0x10:
            attributes = {}
            response.groups.append((tag, attributes))
            continue
        (length,) = struct.unpack(">H", data[position : position + 2])
        position += 2
        if length:
            name = data[position : position + length].decode("ascii", "replace")
            attributes[name] = []
        position += length
        (length,) = struct.unpack(">H", data[position : position + 2])
        position += 2
        raw = data[position : position + length]
        if len(raw) != length:
            raise IndexError("truncated IPP value")
        position += length
        attributes.setdefault(name, []).append(_decode_value(tag, raw))
    return response


class IppClient:
    """Send IPP requests to one CUPS queue, each bounded by ``timeout``."""

    def __init__(self, host: str, port: int, queue: str, timeout: float) -> None:
        self.host = host
        self.port = port
        self.queue = queue
        self.timeout = timeout
        self.printer_uri = f"ipp://{host}:{port}/printers/{queue}"
        self._request_id = 0

    def request(
        self,
        operation: int,
        attributes: list[tuple[int, str, Value]],
        job_attributes: list[tuple[int, str, Value]] | None = None,
        document: bytes = b"",
        path: str | None = None,
    ) -> IppResponse:
        """Send one request and return the decoded response.

        Raises:
            DeviceTimeoutError: CUPS did not answer within the timeout.
            DeviceUnavailableError: CUPS is not reachable.
        """
        self._request_id += 1
        body = encode_request(operation, self._request_id, attributes, job_attributes)
        where = f"CUPS at {self.host}:{self.port}"
        connection = http.client.HTTPConnection(
            self.host, self.port, timeout=self.timeout
        )
        try:
            connection.request(
                "POST",
                path or f"/printers/{self.queue}",
                body=body + document,
                headers={"Content-Type": "application/ipp"},
            )
            reply = connection.getresponse()
            data = reply.read()
        except TimeoutError as exc:
            raise DeviceTimeoutError(
                f"{where} did not answer within {self.timeout:.1f} s; "
                "check that cupsd is running"
            ) from exc
        except OSError as exc:
            raise DeviceUnavailableError(
                f"{where} is unreachable ({exc}); start cupsd or fix "
                "document_printer.host/port"
            ) from exc
        except http.client.HTTPException as exc:
            raise DeviceUnavailableError(
                f"{where} broke the connection: {exc}"
            ) from exc
        finally:
            connection.close()
        if reply.status != 200:
            raise PrintError(f"{where} answered HTTP {reply.status} {reply.reason}")
        return decode_response(data)

    def base_attributes(self) -> list[tuple[int, str, Value]]:
        """Return the printer URI and user name every request carries."""
        return [
            (URI, "printer-uri", self.printer_uri),
            (NAME, "requesting-user-name", "kiosk"),
        ]

    def print_job(self, document: bytes, title: str, copies: int) -> IppResponse:
        """Submit a PDF as one job."""
        attributes = [
            *self.base_attributes(),
            (NAME, "job-name", title),
            (MIME_TYPE, "document-format", "application/pdf"),
        ]
        return self.request(
            PRINT_JOB, attributes, [(INTEGER, "copies", copies)], document
        )

    def job_attributes(self, job_id: int) -> IppResponse:
        """Return a job's state, reasons and message."""
        attributes: list[tuple[int, str, Value]] = [
            *self.base_attributes(),
            (INTEGER, "job-id", job_id),
        ]
        for name in ("job-state", "job-state-reasons", "job-state-message"):
            attributes.append((KEYWORD, "requested-attributes", name))
        return self.request(GET_JOB_ATTRIBUTES, _merge_multi(attributes))

    def cancel_job(self, job_id: int) -> IppResponse:
        """Cancel a job."""
        attributes: list[tuple[int, str, Value]] = [
            *self.base_attributes(),
            (INTEGER, "job-id", job_id),
        ]
        return self.request(CANCEL_JOB, attributes)

    def printer_attributes(self) -> IppResponse:
        """Return the queue's state, reasons and whether it accepts jobs."""
        attributes: list[tuple[int, str, Value]] = list(self.base_attributes())
        for name in (
            "printer-state",
            "printer-state-reasons",
            "printer-state-message",
            "printer-is-accepting-jobs",
        ):
            attributes.append((KEYWORD, "requested-attributes", name))
        return self.request(GET_PRINTER_ATTRIBUTES, _merge_multi(attributes))


def _merge_multi(
    attributes: list[tuple[int, str, Any]],
) -> list[tuple[int, str, Value]]:
    """Blank the names of repeated attributes: IPP's form for extra values."""
    merged: list[tuple[int, str, Value]] = []
    previous = ""
    for tag, name, value in attributes:
        merged.append((tag, "" if name == previous else name, value))
        previous = name
    return merged
