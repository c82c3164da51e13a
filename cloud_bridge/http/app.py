"""The bridge's HTTP app: look up a copy, verify a PDF, publish the trust list.

Pages are server-rendered in Vietnamese with an English switch. The same
answers are given as JSON under ``/api/v1``. A copy's identifier alone shows
only what is not personal (status, office, date, document type); its number,
pages and PDF need the access code printed beside the QR code.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from cloud_bridge.copies import DOCUMENT_LABELS
from cloud_bridge.errors import NotFoundError, VerificationError
from cloud_bridge.http.registry import StoreRegistry
from cloud_bridge.lookup import CopyLookup
from cloud_bridge.store import CopyRecord
from cloud_bridge.verify import verify_pdf

logger = logging.getLogger(__name__)

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


class AccessCodeBody(BaseModel):
    """The access code printed beside the copy's QR code."""

    access_code: str = Field(min_length=4, max_length=32)


class CopyStatus(BaseModel):
    """A copy's public status, as the registry reports it."""

    copy_id: str
    known: bool
    revoked: bool
    revoked_at: str | None
    revocation_reason: str | None
    archive_match: bool | None


def create_app(bridge: Any) -> FastAPI:
    """Return the HTTP app over a :class:`cloud_bridge.context.Bridge`."""
    app = FastAPI(title="Certified copies", version="1", docs_url="/api/docs")
    lookup = CopyLookup(bridge.store, bridge.archive)
    registry = StoreRegistry(bridge.store)
    max_upload = bridge.config.http.max_upload_bytes

    def office_name(record: CopyRecord) -> str:
        office = bridge.config.offices.get(record.office_code)
        return office.name if office else record.office_code

    def page(request: Request, name: str, **context: Any) -> HTMLResponse:
        lang = "en" if request.query_params.get("lang") == "en" else "vi"

        def translate(vi: str, en: str) -> str:
            return en if lang == "en" else vi

        return TEMPLATES.TemplateResponse(
            request,
            name,
            {
                "lang": lang,
                "t": translate,
                "title": context.pop("title", ""),
                **context,
            },
            status_code=context.pop("status_code", 200),
        )

    @app.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/trust-list.json")
    def trust_list() -> Response:
        return Response(bridge.trust_list.to_json(), media_type="application/json")

    @app.get("/c/{copy_id}", response_class=HTMLResponse)
    @app.get("/C/{copy_id}", response_class=HTMLResponse, include_in_schema=False)
    def lookup_page(request: Request, copy_id: str) -> HTMLResponse:
        record = lookup.public(copy_id)
        return page(
            request,
            "lookup.html",
            title="Tra cứu bản sao",
            copy=record,
            opened=False,
            office_name=office_name(record) if record else "",
            document_label=_label(record),
            status_code=200 if record else 404,
        )

    @app.post("/c/{copy_id}", response_class=HTMLResponse)
    @app.post("/C/{copy_id}", response_class=HTMLResponse, include_in_schema=False)
    def open_page(
        request: Request, copy_id: str, access_code: Annotated[str, Form()] = ""
    ) -> HTMLResponse:
        record = lookup.public(copy_id)
        try:
            opened = lookup.open(copy_id, access_code)
        except NotFoundError:
            return page(
                request,
                "lookup.html",
                title="Tra cứu bản sao",
                copy=record,
                opened=False,
                office_name=office_name(record) if record else "",
                document_label=_label(record),
                error="Mã truy cập không đúng. Kiểm tra lại mã in cạnh mã QR.",
                status_code=403 if record else 404,
            )
        return page(
            request,
            "lookup.html",
            title="Bản sao chứng thực",
            copy=opened,
            opened=True,
            access_code=access_code,
            pdf_url=f"/c/{opened.copy_id}/pdf",
            office_name=office_name(opened),
            document_label=_label(opened),
        )

    @app.post("/c/{copy_id}/pdf")
    def download_pdf(copy_id: str, access_code: Annotated[str, Form()]) -> Response:
        record = _open_or_404(lookup, copy_id, access_code)
        return _pdf_response(record, lookup.pdf(record))

    @app.get("/api/v1/copies/{copy_id}/status", response_model=CopyStatus)
    def copy_status(
        copy_id: str, sha256: Annotated[str, Query(pattern=r"^[0-9a-fA-F]{64}$")]
    ) -> CopyStatus:
        answer = registry.status(copy_id, sha256)
        if not answer.known:
            raise HTTPException(404, "no issued copy has this identifier")
        return CopyStatus(
            copy_id=copy_id,
            known=True,
            revoked=answer.revoked,
            revoked_at=answer.revoked_at.isoformat() if answer.revoked_at else None,
            revocation_reason=answer.revocation_reason,
            archive_match=answer.archive_match,
        )

    @app.post("/api/v1/copies/{copy_id}/lookup")
    def copy_lookup(copy_id: str, body: AccessCodeBody) -> dict[str, Any]:
        record = _open_or_404(lookup, copy_id, body.access_code)
        return {
            "copy_id": record.copy_id,
            "status": "revoked" if record.revoked else "valid",
            "office_code": record.office_code,
            "office_name": office_name(record),
            "issued_on": record.issued_on.isoformat(),
            "document_type": record.document_type,
            "cert_number": record.cert_number,
            "book": record.book,
            "page_count": record.page_count,
            "pdf_sha256": record.pdf_sha256,
            "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
            "revocation_reason": record.revocation_reason,
        }

    @app.post("/api/v1/copies/{copy_id}/pdf")
    def copy_pdf(copy_id: str, body: AccessCodeBody) -> Response:
        record = _open_or_404(lookup, copy_id, body.access_code)
        return _pdf_response(record, lookup.pdf(record))

    @app.post("/api/v1/verify")
    async def verify_api(request: Request) -> JSONResponse:
        data = await _read_body(request, max_upload)
        result = await run_in_threadpool(_verify, data, bridge, registry)
        return JSONResponse(result)

    @app.get("/verify", response_class=HTMLResponse)
    def verify_form(request: Request) -> HTMLResponse:
        return page(request, "verify.html", title="Kiểm tra bản sao", result=None)

    @app.post("/verify", response_class=HTMLResponse)
    async def verify_upload(request: Request, file: UploadFile) -> HTMLResponse:
        data = await file.read(max_upload + 1)
        if len(data) > max_upload:
            return page(
                request,
                "verify.html",
                title="Kiểm tra bản sao",
                result=None,
                error=f"Tệp quá lớn (tối đa {max_upload // 1_000_000} MB).",
                status_code=413,
            )
        result = await run_in_threadpool(_verify, data, bridge, registry)
        return page(request, "verify.html", title="Kiểm tra bản sao", result=result)

    return app


def _label(record: CopyRecord | None) -> str:
    if record is None:
        return ""
    return DOCUMENT_LABELS.get(record.document_type, record.document_type)


def _open_or_404(lookup: CopyLookup, copy_id: str, code: str) -> CopyRecord:
    try:
        return lookup.open(copy_id, code)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc


def _pdf_response(record: CopyRecord, data: bytes) -> Response:
    name = f"ban-sao-{record.copy_id}.pdf"
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def _read_body(request: Request, limit: int) -> bytes:
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


def _verify(data: bytes, bridge: Any, registry: StoreRegistry) -> dict[str, Any]:
    try:
        report = verify_pdf(data, bridge.trust_roots, registry)
    except VerificationError as exc:
        problems = [str(exc)]
        return {
            "valid": False,
            "level": "none",
            "status": "unknown",
            "problems": problems,
        }
    return report.to_json()
