"""Ask a bridge over HTTP for a copy's status, for ``kiosk verify``."""

from __future__ import annotations

import logging
from datetime import datetime

import httpx

from cloud_bridge.verify import RegistryAnswer

logger = logging.getLogger(__name__)


class HttpRegistry:
    """A :class:`~cloud_bridge.verify.CopyRegistry` backed by the bridge's API.

    When the bridge cannot be reached the answer is "unknown" and
    :attr:`unreachable` is set, so the caller can say the status was not
    checked instead of calling the copy invalid.
    """

    def __init__(self, base_url: str, timeout_s: float = 5.0) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = timeout_s
        self.unreachable = False

    def status(self, copy_id: str, pdf_sha256: str) -> RegistryAnswer:
        """Return what the bridge knows of ``copy_id`` and this file."""
        url = f"{self._base}/api/v1/copies/{copy_id}/status"
        try:
            response = httpx.get(
                url, params={"sha256": pdf_sha256}, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            logger.warning("bridge at %s unreachable: %s", self._base, exc)
            self.unreachable = True
            return RegistryAnswer(known=False)
        if response.status_code == 404:
            return RegistryAnswer(known=False)
        if response.status_code != 200:
            logger.warning("bridge answered %s for %s", response.status_code, url)
            self.unreachable = True
            return RegistryAnswer(known=False)
        body = response.json()
        revoked_at = body.get("revoked_at")
        return RegistryAnswer(
            known=True,
            revoked=bool(body.get("revoked")),
            revoked_at=datetime.fromisoformat(revoked_at) if revoked_at else None,
            revocation_reason=body.get("revocation_reason"),
            archive_match=body.get("archive_match"),
        )
