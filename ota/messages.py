"""Glue between MQTT payloads and the update client and director.

The kiosk agent passes each payload received on ``office/<id>/updates`` to
:class:`NoticeHandler` from a worker (never from the MQTT network thread, as
an install takes seconds) and publishes what :func:`report_message` returns.
(The bridge side, :func:`ota.director.ingest_report`, lives apart so the
kiosk never imports the bridge's database code.) Payloads that do not
validate are dropped and counted, never raised.
"""

from __future__ import annotations

import logging

from ota.client import InstallOutcome, UpdateClient
from protocol.envelope import MessageError, parse_message
from protocol.updates import InstallReport, UpdateNotice, report_topic

logger = logging.getLogger(__name__)


class NoticeHandler:
    """Install what valid update notices name; count the invalid ones."""

    def __init__(self, client: UpdateClient) -> None:
        self.client = client
        self.dropped = 0

    def __call__(self, payload: bytes) -> InstallOutcome | None:
        """Handle one notice payload; return the outcome if an install ran."""
        try:
            notice = parse_message(UpdateNotice, payload)
        except MessageError as exc:
            self.dropped += 1
            logger.warning("dropped an invalid update notice: %s", exc)
            return None
        return self.client.handle_notice(notice)


def report_message(report: InstallReport) -> tuple[str, bytes]:
    """Return the topic and payload to publish ``report`` with (QoS 1)."""
    return report_topic(report.kiosk_id), report.to_bytes()
