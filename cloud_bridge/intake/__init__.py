"""Receive kiosks' certification requests and send them their decisions.

:mod:`.service` stores a request (idempotent by request id) and answers with
an acknowledgement; :mod:`.consumer` is the MQTT 5 side (a shared
subscription, so several bridges split the kiosks' requests);
:mod:`.blobs` is the HTTPS endpoint for page images and copies, addressed
by SHA-256; :mod:`.tables` holds the kiosk's scores and findings per request.
"""

# Load the store first: its migrations import this package's tables, so
# importing those tables first would otherwise be a circular import.
import cloud_bridge.store  # noqa: F401
