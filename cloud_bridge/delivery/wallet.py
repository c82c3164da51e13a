"""Post a copy to the citizen's wallet through a signed webhook.

The body is JSON; the header ``X-Signature`` carries
``sha256=<hex HMAC-SHA256 of the body>`` under the shared secret, and
``Idempotency-Key`` is the copy's identifier, so the wallet can recognise a
retry of a delivery it already accepted and a retry never delivers a second,
different copy. Any 2xx answer acknowledges the delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

import httpx

from cloud_bridge.config import WalletSection
from cloud_bridge.errors import DeliveryError

logger = logging.getLogger(__name__)


def sign_body(secret: bytes, body: bytes) -> str:
    """Return the ``X-Signature`` header value for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def post_to_wallet(
    settings: WalletSection, copy_id: str, payload: dict[str, Any]
) -> int:
    """Post one delivery and return the HTTP status; DeliveryError unless 2xx."""
    if settings.url is None or settings.secret is None:
        raise DeliveryError(
            "the wallet webhook is not configured; set delivery.wallet.url and "
            "delivery.wallet.secret"
        )
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": copy_id,
        "X-Signature": sign_body(settings.secret.get_secret_value().encode(), body),
    }
    try:
        response = httpx.post(
            settings.url, content=body, headers=headers, timeout=settings.timeout_s
        )
    except httpx.HTTPError as exc:
        raise DeliveryError(
            f"the wallet at {settings.url} is unreachable: {exc}; will retry"
        ) from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"the wallet answered {response.status_code}; will retry")
    return response.status_code
