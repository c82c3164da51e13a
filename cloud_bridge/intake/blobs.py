"""The HTTPS endpoint kiosks upload page images to and fetch copies from.

Blobs are addressed by their SHA-256: an upload whose content does not hash
to its address is refused, and uploading the same page twice stores it
once. The bridge serves it with client certificates required (uvicorn's
``ssl_cert_reqs=CERT_REQUIRED`` with the kiosk CA), so only enrolled kiosks
reach it. The
endpoint does not yet check which kiosk asks for which blob; a digest is
unguessable, but a compromised kiosk that learned one could fetch it.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response

from cloud_bridge.archive import check_digest
from cloud_bridge.errors import NotFoundError
from cloud_bridge.uploads import read_body

logger = logging.getLogger(__name__)


def intake_router(bridge: Any) -> APIRouter:
    """Return the router of ``/api/v1/kiosk/blobs/{sha256}``."""
    router = APIRouter(prefix="/api/v1/kiosk", tags=["kiosk intake"])
    limit = int(bridge.config.intake.max_blob_bytes)

    def digest_of(value: str) -> str:
        """Return ``value`` if it is a hex SHA-256, else answer 400."""
        try:
            return check_digest(value)
        except ValueError as exc:
            raise HTTPException(400, "the address must be a SHA-256 in hex") from exc

    @router.head("/blobs/{digest}")
    def has_blob(digest: str) -> Response:
        """Answer 200 when the blob is stored, 404 otherwise."""
        found = bridge.archive.exists(digest_of(digest))
        return Response(status_code=200 if found else 404)

    @router.get("/blobs/{digest}")
    def get_blob(digest: str) -> Response:
        """Return a stored blob (a copy's PDF or a page)."""
        try:
            data = bridge.archive.get(digest_of(digest))
        except NotFoundError as exc:
            raise HTTPException(404, "no such blob") from exc
        kind = "application/pdf" if data.startswith(b"%PDF") else "image/jpeg"
        return Response(data, media_type=kind)

    @router.put("/blobs/{digest}", status_code=201)
    async def put_blob(digest: str, request: Request) -> Response:
        """Store a page image under its SHA-256."""
        expected = digest_of(digest)
        data = await read_body(request, limit)
        if hashlib.sha256(data).hexdigest() != expected:
            raise HTTPException(400, "the content does not match its SHA-256")
        bridge.archive.put(data)
        logger.debug("stored blob %s (%s bytes)", expected[:12], len(data))
        return Response(status_code=201)

    return router
