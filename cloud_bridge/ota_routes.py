"""Serve the update repository to kiosks: TUF metadata, targets, assignments.

Metadata and targets are plain files signed elsewhere; the router only
serves them (targets with HTTP Range, so a kiosk resumes a cut download).
A kiosk asks which target it should run and posts its install reports here
when MQTT is not available. Kiosks are told apart by the id in the path;
behind the production TLS terminator that id must match the client
certificate's common name, which this router does not check itself.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from cloud_bridge.context import Bridge
from ota.director import Director
from protocol.envelope import MessageError, parse_message
from protocol.topics import KIOSK_ID
from protocol.updates import InstallReport

logger = logging.getLogger(__name__)

METADATA_NAME = re.compile(
    r"^(?:[0-9]{1,10}\.)?(?:root|targets|snapshot|timestamp)\.json$"
)
TARGET_NAME = re.compile(r"^[0-9a-f]{64}\.[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")


def ota_router(bridge: Bridge) -> APIRouter:
    """Return the OTA router for a bridge, its repository and director."""
    settings = bridge.config.ota
    director = Director(bridge.store.engine, settings)
    return create_ota_router(bridge.config.path(settings.repo_dir), director)


def create_ota_router(repo_dir: Path, director: Director | None) -> APIRouter:
    """Return a router serving ``repo_dir`` under ``/ota/v1``."""
    router = APIRouter(prefix="/ota/v1", tags=["ota"])

    @router.get("/metadata/{name}")
    def metadata(name: str) -> Response:
        """Serve one metadata file, never cached by intermediaries."""
        if not METADATA_NAME.match(name):
            raise HTTPException(404, "no such metadata")
        path = repo_dir / "metadata" / name
        if not path.is_file():
            raise HTTPException(404, "no such metadata")
        headers = {"Cache-Control": "no-store"}
        return FileResponse(path, media_type="application/json", headers=headers)

    @router.get("/targets/{name}")
    def target(name: str) -> Response:
        """Serve one target file by its hash-prefixed name, with Range support."""
        if not TARGET_NAME.match(name):
            raise HTTPException(404, "no such target")
        path = repo_dir / "targets" / name
        if not path.is_file():
            raise HTTPException(404, "no such target")
        return FileResponse(path, media_type="application/octet-stream")

    @router.get("/kiosks/{kiosk_id}/assignment")
    def assignment(kiosk_id: str, channel: str = "stable") -> dict[str, Any]:
        """Tell a kiosk which target it should run (none when no release is)."""
        _check_kiosk(kiosk_id)
        release = director.assignment(kiosk_id, channel) if director else None
        if release is None:
            return {"target": None}
        return {
            "target": release.target,
            "bundle_version": release.bundle_version,
            "channel": release.channel,
        }

    @router.post("/kiosks/{kiosk_id}/reports", status_code=204)
    async def report(kiosk_id: str, request: Request) -> Response:
        """Record an install report sent over HTTP."""
        _check_kiosk(kiosk_id)
        try:
            message = parse_message(InstallReport, await request.body())
        except MessageError as exc:
            raise HTTPException(422, f"invalid install report: {exc}") from exc
        if message.kiosk_id != kiosk_id or director is None:
            raise HTTPException(403, "a kiosk reports only for itself")
        await run_in_threadpool(director.record_report, message)
        return Response(status_code=204)

    return router


def _check_kiosk(kiosk_id: str) -> None:
    if not KIOSK_ID.match(kiosk_id):
        raise HTTPException(404, "no such kiosk")
