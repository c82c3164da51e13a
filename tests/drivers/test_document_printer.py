"""The document printer against a real CUPS with a cups-pdf queue."""

from __future__ import annotations

import io
import socket
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from drivers.document_printer import (
    CupsDocumentPrinter,
    JobState,
    SimulatedDocumentPrinter,
)
from drivers.errors import (
    DeviceTimeoutError,
    DeviceUnavailableError,
    PrintError,
    PrintRejectedError,
)
from drivers.health import HealthState, Reason
from drivers.ipp import IppClient
from tests.conftest import free_port
from tests.drivers.conftest import CupsServer


def make_pdf() -> bytes:
    """Return a one-page PDF."""
    buffer = io.BytesIO()
    Image.new("RGB", (620, 877), "white").save(buffer, "PDF", resolution=75.0)
    return buffer.getvalue()


def printer_for(
    server: CupsServer, queue: str | None = None, timeout: float = 5.0
) -> CupsDocumentPrinter:
    client = IppClient(server.host, server.port, queue or server.queue, timeout)
    return CupsDocumentPrinter(
        "document_printer", client, poll_interval=0.05, job_timeout=30
    )


def test_pdf_prints_to_completion_through_cups(cups_server: CupsServer) -> None:
    printer = printer_for(cups_server)
    assert printer.check().state is HealthState.OK

    started = time.monotonic()
    job = printer.print_pdf(make_pdf(), copies=2, title="kiosk-copy")
    status = job.wait(30)
    elapsed = time.monotonic() - started

    assert status.state is JobState.COMPLETED
    output = cups_server.printed(job.id)
    assert output.read_bytes().startswith(b"%PDF-")
    assert elapsed < 30
    print(f"CUPS to cups-pdf file: {elapsed:.2f} s")


def test_pdf_from_a_path_prints(cups_server: CupsServer, tmp_path: Path) -> None:
    path = tmp_path / "copy.pdf"
    path.write_bytes(make_pdf())
    job = printer_for(cups_server).print_pdf(path, title="from-path")
    assert job.default_timeout == 30
    assert job.wait().state is JobState.COMPLETED


def test_rejecting_queue_raises_and_marks_printer_offline(
    cups_server: CupsServer,
) -> None:
    queue = f"{cups_server.queue}-rej"
    cups_server.lpadmin("-p", queue, "-v", "socket://127.0.0.1:9", "-m", "raw")
    printer = printer_for(cups_server, queue)

    with pytest.raises(PrintRejectedError, match="refused"):
        printer.print_pdf(make_pdf(), title="refused")
    assert printer.health().state is HealthState.FAILED
    assert printer.health().reason is Reason.PRINTER_OFFLINE


def test_not_a_pdf_is_rejected_before_sending(cups_server: CupsServer) -> None:
    with pytest.raises(PrintRejectedError, match="not a PDF"):
        printer_for(cups_server).print_pdf(b"hello", title="junk")


def test_unreachable_printer_times_out_and_job_stays_queued(
    cups_server: CupsServer,
) -> None:
    queue = f"{cups_server.queue}-dead"
    dead_port = free_port()
    cups_server.lpadmin(
        "-p", queue, "-v", f"socket://127.0.0.1:{dead_port}", "-E", "-m", "raw"
    )
    printer = printer_for(cups_server, queue)
    job = printer.print_pdf(make_pdf(), title="never")

    started = time.monotonic()
    with pytest.raises(DeviceTimeoutError, match="still queued"):
        job.wait(2.0)
    assert time.monotonic() - started < 5
    assert not job.last.state.final
    assert printer.health().state is HealthState.DEGRADED
    assert printer.health().reason is Reason.NOT_ANSWERING
    assert "may not exist" in printer.health().detail

    job.cancel()
    with pytest.raises(PrintError, match="canceled"):
        job.wait(10)


def test_cups_not_running_fails_fast() -> None:
    client = IppClient("127.0.0.1", free_port(), "none", 2.0)
    printer = CupsDocumentPrinter("document_printer", client)
    with pytest.raises(DeviceUnavailableError, match="unreachable"):
        printer.print_pdf(make_pdf())
    assert printer.health().reason is Reason.PRINTER_OFFLINE


def test_cups_that_never_answers_times_out() -> None:
    silent = socket.create_server(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    accepted: list[socket.socket] = []
    threading.Thread(
        target=lambda: accepted.append(silent.accept()[0]), daemon=True
    ).start()
    printer = CupsDocumentPrinter("p", IppClient("127.0.0.1", port, "q", 1.0))
    try:
        started = time.monotonic()
        with pytest.raises(DeviceTimeoutError, match="did not answer"):
            printer.print_pdf(make_pdf())
        assert time.monotonic() - started < 3
    finally:
        silent.close()
        for conn in accepted:
            conn.close()


def test_simulated_printer_writes_each_copy(tmp_path: Path) -> None:
    printer = SimulatedDocumentPrinter("document_printer", tmp_path)
    job = printer.print_pdf(make_pdf(), copies=2, title="copy one")
    assert job.wait(1).state is JobState.COMPLETED
    assert len(list(tmp_path.glob("job1-*.pdf"))) == 2

    printer.fail_jobs = True
    with pytest.raises(PrintError, match="failed"):
        printer.print_pdf(make_pdf()).wait(1)

    printer.offline = True
    with pytest.raises(DeviceUnavailableError):
        printer.print_pdf(make_pdf())
    assert printer.health().reason is Reason.PRINTER_OFFLINE
