"""MQTT topic names both sides use; the kiosk id is the certificate's name.

A kiosk publishes only below ``kiosk/<id>/`` and reads only
``office/<id>/...``; the broker's ACL enforces both.
"""

from __future__ import annotations

import re

from protocol.errors import ProtocolError

KIOSK_ID = re.compile(r"^[a-z0-9][a-z0-9\-]{2,62}$")

STATUS = "status"
TELEMETRY = "telemetry"
EVENTS = "events"
REQUESTS = "requests"
RESPONSES = "responses"

DECISIONS = "decisions"
COMMANDS = "commands"
UPDATES = "updates"


class TopicError(ProtocolError):
    """A topic or kiosk id does not have the agreed shape."""


def check_kiosk_id(kiosk_id: str) -> str:
    """Return ``kiosk_id`` if it is a valid kiosk id, else raise TopicError."""
    if not KIOSK_ID.match(kiosk_id):
        raise TopicError(
            f"kiosk id {kiosk_id!r} must be 3-63 lower-case letters, digits or "
            "dashes, starting with a letter or digit"
        )
    return kiosk_id


def kiosk_topic(kiosk_id: str, leaf: str) -> str:
    """Return ``kiosk/<id>/<leaf>``: what a kiosk publishes."""
    return f"kiosk/{check_kiosk_id(kiosk_id)}/{leaf}"


def office_topic(kiosk_id: str, leaf: str) -> str:
    """Return ``office/<id>/<leaf>``: what the office sends one kiosk."""
    return f"office/{check_kiosk_id(kiosk_id)}/{leaf}"


def shared(group: str, topic_filter: str) -> str:
    """Return an MQTT 5 shared subscription, so bridge instances split load."""
    return f"$share/{group}/{topic_filter}"


def split_kiosk_topic(topic: str) -> tuple[str, str]:
    """Return (kiosk id, leaf) of a ``kiosk/<id>/<leaf>`` topic."""
    parts = topic.split("/", 2)
    if len(parts) != 3 or parts[0] != "kiosk":
        raise TopicError(f"{topic!r} is not a kiosk topic")
    return check_kiosk_id(parts[1]), parts[2]
