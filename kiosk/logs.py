"""Configure logging: plain text for the journal, or JSON lines by option."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

# Libraries that log every routine step at INFO; their warnings still show.
CHATTY_LIBRARIES = ("pyhanko", "pyhanko_certvalidator", "aiohttp", "asyncio", "httpx")

ID_NUMBER = re.compile(r"(?<!\d)(\d{3})\d{6}(\d{3})(?!\d)")


def mask_id_number(text: str) -> str:
    """Replace the middle digits of any 12-digit citizen ID number in ``text``."""
    return ID_NUMBER.sub(r"\1******\2", text)


class MaskingFilter(logging.Filter):
    """Mask citizen ID numbers in every record, whatever the caller passed."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_id_number(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class MaskingFormatter(logging.Formatter):
    """Mask ID numbers in the whole formatted record, tracebacks included."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_id_number(super().format(record))


class JsonFormatter(logging.Formatter):
    """Format each record as one JSON object on one line, masked."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return mask_id_number(json.dumps(entry, ensure_ascii=False))


def setup_logging(level: str = "INFO", json_lines: bool = False) -> None:
    """Send logs to standard error, masked, as text or JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(MaskingFilter())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(MaskingFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if root.level > logging.DEBUG:
        for name in CHATTY_LIBRARIES:
            logging.getLogger(name).setLevel(logging.WARNING)
