"""The A4 printer for certified copies: print a PDF and follow the job.

:class:`CupsDocumentPrinter` submits to a CUPS queue over IPP
(:mod:`drivers.ipp`); :class:`SimulatedDocumentPrinter` writes the PDF to a
directory. Both return a :class:`PrintJob` whose :meth:`PrintJob.wait` ends
in completion, a :class:`~drivers.errors.PrintError`, or a
:class:`~drivers.errors.DeviceTimeoutError` that leaves the job queued for
the caller to wait on again or cancel: a job is never dropped silently.
Every call is synchronous and bounded; from asyncio use ``asyncio.to_thread``.
"""

from __future__ import annotations

import enum
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from drivers.errors import (
    DeviceTimeoutError,
    DeviceUnavailableError,
    DriverError,
    PrintError,
    PrintRejectedError,
)
from drivers.health import Capability, Health, HealthState, HealthTracker, Reason
from drivers.ipp import JOB_GROUP, NOT_ACCEPTING_JOBS, PRINTER_GROUP, IppClient

logger = logging.getLogger(__name__)

CAPABILITIES = frozenset({Capability.PRINT_COPIES})


class JobState(enum.StrEnum):
    """Where a print job is."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def final(self) -> bool:
        """Return whether the job will not change any more."""
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELED)


# IPP job-state enum values (RFC 8011, 5.3.7).
IPP_JOB_STATES = {
    3: JobState.PENDING,
    4: JobState.PENDING,
    5: JobState.PROCESSING,
    6: JobState.PROCESSING,
    7: JobState.CANCELED,
    8: JobState.FAILED,
    9: JobState.COMPLETED,
}


@dataclass(frozen=True)
class JobStatus:
    """A print job's state with the server's reasons and message."""

    state: JobState
    reasons: tuple[str, ...] = ()
    message: str = ""


class PrintJob:
    """One submitted job: ask its status, wait for its end, or cancel it."""

    def __init__(
        self,
        job_id: int,
        title: str,
        copies: int,
        poll: Callable[[], JobStatus],
        cancel: Callable[[], None],
        poll_interval: float = 0.2,
        on_stall: Callable[[], object] | None = None,
        default_timeout: float = 300.0,
    ) -> None:
        self.id = job_id
        self.title = title
        self.copies = copies
        self._poll = poll
        self._cancel = cancel
        self.poll_interval = poll_interval
        self._on_stall = on_stall
        self.default_timeout = default_timeout
        self.last = JobStatus(JobState.PENDING)

    def status(self) -> JobStatus:
        """Ask the printer for the job's current status."""
        self.last = self._poll()
        return self.last

    def wait(self, timeout: float | None = None) -> JobStatus:
        """Wait until the job completes (``timeout`` defaults to the config's).

        Raises:
            PrintError: the job failed or was canceled.
            DeviceTimeoutError: it had not ended after ``timeout`` seconds; it
                stays queued: wait again or :meth:`cancel` it.
        """
        if timeout is None:
            timeout = self.default_timeout
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if status.state is JobState.COMPLETED:
                return status
            if status.state.final:
                raise PrintError(
                    f"print job {self.id} ({self.title}) {status.state.value}: "
                    f"{status.message or ', '.join(status.reasons)}; check the "
                    "printer and print the copy again"
                )
            if time.monotonic() >= deadline:
                if self._on_stall is not None:
                    self._on_stall()
                raise DeviceTimeoutError(
                    f"print job {self.id} ({self.title}) still {status.state.value} "
                    f"after {timeout:.0f} s: {status.message or 'no message'}; it "
                    "is still queued: check the printer, then wait or cancel it"
                )
            time.sleep(min(self.poll_interval, max(0.0, deadline - time.monotonic())))

    def cancel(self) -> None:
        """Cancel the job if it has not ended."""
        self._cancel()


class DocumentPrinter(Protocol):
    """What the agent needs from the A4 printer."""

    name: str

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Return what the printer lets the agent do."""

    def health(self) -> Health:
        """Return the last known health."""

    def check(self) -> Health:
        """Ask the printer for its state and return the updated health."""

    def print_pdf(
        self, document: Path | bytes, copies: int = 1, title: str = "copy"
    ) -> PrintJob:
        """Submit a PDF; raise PrintRejectedError when refused."""

    def close(self) -> None:
        """Release resources."""


def read_pdf(document: Path | bytes) -> bytes:
    """Return the PDF's bytes, refusing anything that is not a PDF."""
    if isinstance(document, Path):
        try:
            data = document.read_bytes()
        except OSError as exc:
            raise PrintError(f"cannot read {document}: {exc.strerror}") from exc
    else:
        data = document
    if not data.startswith(b"%PDF-"):
        raise PrintRejectedError(
            "the document to print is not a PDF; render the copy again"
        )
    return data


def _check_copies(copies: int) -> None:
    if not 1 <= copies <= 99:
        raise PrintRejectedError(f"copies must be 1 to 99, not {copies}")


# printer-state-reasons keywords (RFC 8011, 5.4.12) and what they mean here.
FAILING_REASONS = {
    "media-empty": Reason.PAPER_OUT,
    "media-needed": Reason.PAPER_OUT,
    "cover-open": Reason.COVER_OPEN,
    "door-open": Reason.COVER_OPEN,
    "offline": Reason.PRINTER_OFFLINE,
    "shutdown": Reason.PRINTER_OFFLINE,
    "paused": Reason.PRINTER_OFFLINE,
}
DEGRADING_REASONS = {
    "media-low": Reason.PAPER_LOW,
    "toner-low": Reason.DEVICE_ERROR,
    "connecting-to-device": Reason.PRINTER_OFFLINE,
}


def health_from_reasons(
    tracker: HealthTracker, reasons: list[str], accepting: bool, stopped: bool
) -> Health:
    """Set ``tracker`` from a queue's printer-state-reasons and state."""
    bare = [re.sub(r"-(error|warning|report)$", "", reason) for reason in reasons]
    detail = ", ".join(reasons)
    for reason in bare:
        if reason in FAILING_REASONS:
            return tracker.failed(FAILING_REASONS[reason], detail)
    if stopped or not accepting:
        return tracker.failed(Reason.PRINTER_OFFLINE, detail or "queue stopped")
    for reason in bare:
        if reason in DEGRADING_REASONS:
            return tracker.degraded(DEGRADING_REASONS[reason], detail)
    return tracker.ok()


class CupsDocumentPrinter:
    """A CUPS queue reached over IPP; every request has a timeout."""

    def __init__(
        self,
        name: str,
        client: IppClient,
        poll_interval: float = 0.2,
        job_timeout: float = 300.0,
    ) -> None:
        self.name = name
        self.client = client
        self.poll_interval = poll_interval
        self.job_timeout = job_timeout
        self.tracker = HealthTracker(name)
        self.state_message = ""

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Return what the printer lets the agent do."""
        return CAPABILITIES

    def health(self) -> Health:
        """Return the last known health."""
        return self.tracker.get()

    def check(self) -> Health:
        """Ask CUPS for the queue's state and return the updated health."""
        try:
            response = self.client.printer_attributes()
        except DriverError as exc:
            return self.tracker.failed(Reason.PRINTER_OFFLINE, str(exc))
        if not response.ok:
            return self.tracker.failed(Reason.PRINTER_OFFLINE, response.message())
        reasons = [
            str(v) for v in response.values(PRINTER_GROUP, "printer-state-reasons")
        ]
        message = response.first(PRINTER_GROUP, "printer-state-message")
        self.state_message = str(message or "")
        accepting = response.first(PRINTER_GROUP, "printer-is-accepting-jobs")
        state = response.first(PRINTER_GROUP, "printer-state")
        return health_from_reasons(
            self.tracker,
            [r for r in reasons if r != "none"],
            accepting is not False,
            state == 5,
        )

    def print_pdf(
        self, document: Path | bytes, copies: int = 1, title: str = "copy"
    ) -> PrintJob:
        """Submit a PDF to the queue and return its job.

        Raises:
            PrintRejectedError: CUPS refused the job or the document.
            DeviceUnavailableError, DeviceTimeoutError: CUPS is unreachable.
        """
        _check_copies(copies)
        data = read_pdf(document)
        try:
            response = self.client.print_job(data, title, copies)
        except (DeviceUnavailableError, DeviceTimeoutError) as exc:
            self.tracker.failed(Reason.PRINTER_OFFLINE, str(exc))
            raise
        if not response.ok:
            if response.status == NOT_ACCEPTING_JOBS:
                self.tracker.failed(Reason.PRINTER_OFFLINE, response.message())
            raise PrintRejectedError(
                f"CUPS queue {self.client.queue} refused {title!r}: "
                f"{response.message()}; check the queue with lpstat -p"
            )
        job_id = response.first(JOB_GROUP, "job-id")
        if not isinstance(job_id, int):
            raise PrintError(f"CUPS accepted {title!r} but gave no job id")
        logger.info("print job %s (%s, %s copies) queued", job_id, title, copies)
        return PrintJob(
            job_id,
            title,
            copies,
            lambda: self._job_status(job_id),
            lambda: self._cancel(job_id),
            self.poll_interval,
            self._stalled,
            self.job_timeout,
        )

    def close(self) -> None:
        """Nothing to release: each request has its own connection."""

    def _stalled(self) -> None:
        """Explain a job that did not finish in time through the health."""
        if self.check().state is HealthState.OK:
            self.tracker.degraded(
                Reason.NOT_ANSWERING,
                self.state_message or "a job did not finish in time",
            )

    def _job_status(self, job_id: int) -> JobStatus:
        response = self.client.job_attributes(job_id)
        if not response.ok:
            raise PrintError(f"CUPS cannot report job {job_id}: {response.message()}")
        code = response.first(JOB_GROUP, "job-state")
        state = IPP_JOB_STATES.get(code if isinstance(code, int) else 0)
        if state is None:
            raise PrintError(
                f"CUPS reported an unknown state {code!r} for job {job_id}"
            )
        reasons = tuple(str(v) for v in response.values(JOB_GROUP, "job-state-reasons"))
        message = str(response.first(JOB_GROUP, "job-state-message") or "")
        if state is JobState.FAILED:
            self.tracker.degraded(Reason.JOB_FAILED, message or ", ".join(reasons))
        return JobStatus(state, reasons, message)

    def _cancel(self, job_id: int) -> None:
        response = self.client.cancel_job(job_id)
        if not response.ok:
            logger.warning("CUPS did not cancel job %s: %s", job_id, response.message())


class SimulatedDocumentPrinter:
    """Write each printed PDF to a directory; tests can make it fail."""

    def __init__(self, name: str, output_dir: Path) -> None:
        self.name = name
        self.output_dir = output_dir
        self.tracker = HealthTracker(name)
        self.offline = False
        self.fail_jobs = False
        self.paper_out = False
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._states: dict[int, JobState] = {}

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Return what the printer lets the agent do."""
        return CAPABILITIES

    def health(self) -> Health:
        """Return the last known health."""
        return self.tracker.get()

    def check(self) -> Health:
        """Report offline or out of paper when a test set it so."""
        if self.offline:
            return self.tracker.failed(Reason.PRINTER_OFFLINE, "simulated offline")
        if self.paper_out:
            return self.tracker.failed(Reason.PAPER_OUT, "simulated paper out")
        return self.tracker.ok()

    def print_pdf(
        self, document: Path | bytes, copies: int = 1, title: str = "copy"
    ) -> PrintJob:
        """Write the PDF (once per copy) and return a finished job."""
        _check_copies(copies)
        data = read_pdf(document)
        if self.check().state is HealthState.FAILED:
            raise DeviceUnavailableError(
                f"printer {self.name} is offline; check its power and cable"
            )
        job_id = next(self._ids)
        state = JobState.FAILED if self.fail_jobs else JobState.COMPLETED
        if state is JobState.COMPLETED:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            safe = re.sub(r"[^A-Za-z0-9_.-]", "_", title)[:60]
            for number in range(1, copies + 1):
                path = self.output_dir / f"job{job_id}-{safe}-{number}.pdf"
                path.write_bytes(data)
        with self._lock:
            self._states[job_id] = state
        return PrintJob(
            job_id,
            title,
            copies,
            lambda: self._status(job_id),
            lambda: self._drop(job_id),
        )

    def close(self) -> None:
        """Nothing to release."""

    def _status(self, job_id: int) -> JobStatus:
        with self._lock:
            state = self._states[job_id]
        message = "simulated job failure" if state is JobState.FAILED else ""
        return JobStatus(state, (), message)

    def _drop(self, job_id: int) -> None:
        with self._lock:
            if not self._states[job_id].final:
                self._states[job_id] = JobState.CANCELED
