"""Print an approved copy on A4 and its receipt, and say what went wrong.

The PDF comes from the office over HTTPS by its SHA-256; a printer that is
out of paper or offline gives a message for the citizen, and the digital
copy still goes to their email or wallet.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

from drivers.document_printer import DocumentPrinter
from drivers.errors import DriverError, PaperOutError
from drivers.health import Reason
from drivers.receipt import Receipt
from drivers.receipt_printer import ReceiptPrinter
from edge.errors import TransportError

logger = logging.getLogger(__name__)

PRINT_TIMEOUT_S = 120.0


class CopyPrinter:
    """Fetch an approved copy's PDF and print it, then the receipt."""

    def __init__(
        self,
        document_printer: DocumentPrinter,
        receipt_printer: ReceiptPrinter,
        fetch: Callable[[str], bytes],
        lookup_url: str,
    ) -> None:
        self.document_printer = document_printer
        self.receipt_printer = receipt_printer
        self.fetch = fetch
        self.lookup_url = lookup_url.rstrip("/") + "/"

    def print_copy(self, decision: dict[str, Any], copies: int) -> str | None:
        """Print the copy and the receipt; return an error text key or None.

        ``paper_out_a4`` and ``paper_out_receipt`` say which printer ran out
        of paper; ``print_failed`` is any other failure.
        """
        copy_id = str(decision.get("copy_id"))
        digest = str(decision.get("pdf_sha256"))
        try:
            pdf = self.fetch(digest)
            if hashlib.sha256(pdf).hexdigest() != digest:
                raise TransportError(f"copy {copy_id}: the PDF's digest is wrong")
            job = self.document_printer.print_pdf(pdf, copies=copies, title=copy_id)
            job.wait(PRINT_TIMEOUT_S)
        except (DriverError, TransportError) as exc:
            logger.error("copy %s could not be printed: %s", copy_id, exc)
            return "paper_out_a4" if self._a4_paper_out() else "print_failed"
        try:
            self.receipt_printer.print_receipt(self._receipt(decision))
        except PaperOutError as exc:
            logger.error("receipt of copy %s: %s", copy_id, exc)
            return "paper_out_receipt"
        except DriverError as exc:
            logger.error("receipt of copy %s could not be printed: %s", copy_id, exc)
            return "receipt_failed"
        logger.info("printed copy %s", copy_id)
        return None

    def _a4_paper_out(self) -> bool:
        try:
            return self.document_printer.check().reason is Reason.PAPER_OUT
        except DriverError:
            return False

    def _receipt(self, decision: dict[str, Any]) -> Receipt:
        copy_id = str(decision["copy_id"])
        address = str(decision.get("lookup_url") or self.lookup_url + copy_id)
        return Receipt(
            identifier=copy_id,
            access_code=str(decision["access_code"]),
            lines=("Bản sao có chứng thực", f"Tra cứu: {address}"),
            qr_payload=address,
        )
