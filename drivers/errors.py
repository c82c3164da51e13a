"""Errors raised by the device drivers, one tree rooted at :class:`DriverError`.

Every message says which device failed, what happened and what to do.
"""

from kiosk.errors import KioskError


class DriverError(KioskError):
    """Base of every error a device driver raises."""


class BackendMissingError(DriverError):
    """A backend's Python package or system library is not installed."""


class DeviceUnavailableError(DriverError):
    """A device is absent, unplugged, offline or failed and cannot be used."""


class DeviceTimeoutError(DriverError):
    """A device did not answer within the call's timeout."""


class CaptureError(DriverError):
    """A camera returned no usable frame or still image."""


class PrintError(DriverError):
    """A document print job failed, was canceled or could not be followed."""


class PrintRejectedError(PrintError):
    """The print server refused the job (queue stopped, bad document)."""


class ReceiptError(DriverError):
    """A receipt could not be rendered or sent to the receipt printer."""


class PaperOutError(ReceiptError):
    """The receipt printer has no paper (or its cover is open)."""


class GpioError(DriverError):
    """A GPIO line could not be opened, read or written."""


class CodeReadError(DriverError):
    """The code reader could not read or decode a code."""
