"""Read an uploaded PDF within a size limit, and verify it for an HTTP answer."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import HTTPException, Request

from cloud_bridge.errors import VerificationError
from cloud_bridge.http.registry import StoreRegistry
from cloud_bridge.verify import verify_pdf

logger = logging.getLogger(__name__)


async def read_body(request: Request, limit: int) -> bytes:
    """Return the request body; 413 when it exceeds ``limit``, 400 when empty."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the file is larger than {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the file is larger than {limit} bytes")
        chunks.append(chunk)
    if not size:
        raise HTTPException(400, "send the PDF as the request body")
    return b"".join(chunks)


def verify_upload(data: bytes, bridge: Any, registry: StoreRegistry) -> dict[str, Any]:
    """Verify a PDF and return the report as JSON-ready data."""
    try:
        report = verify_pdf(data, bridge.trust_roots, registry)
    except VerificationError as exc:
        return {
            "valid": False,
            "level": "none",
            "status": "unknown",
            "problems": [str(exc)],
        }
    return report.to_json()
