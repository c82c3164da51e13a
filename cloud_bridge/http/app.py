"""The bridge's HTTP app: lookup, verification, the console and the reuse API.

Pages are server-rendered in Vietnamese with an English switch. The same
answers are given as JSON under ``/api/v1``. A copy's identifier alone shows
only what is not personal (status, office, date, document type); its number,
pages, PDF and verification result need the access code printed beside the
QR code. Access codes and unknown identifiers are rate-limited per client
address. The officer console lives under ``/console`` and the API for other
public services under ``/api/reuse/v1``. Every response carries security
headers, with a Content-Security-Policy that allows no inline script.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from cloud_bridge import audit
from cloud_bridge.console.web import install_console
from cloud_bridge.copies import DOCUMENT_LABELS
from cloud_bridge.decisions import DecisionSink
from cloud_bridge.delivery.service import DeliveryService
from cloud_bridge.errors import NotFoundError
from cloud_bridge.http.registry import StoreRegistry
from cloud_bridge.lookup import CopyLookup
from cloud_bridge.ratelimit import SharedRateLimiter
from cloud_bridge.reuse.api import reuse_router
from cloud_bridge.reuse.consents import create_consent
from cloud_bridge.store import CopyRecord
from cloud_bridge.uploads import read_body, verify_upload

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
STRICT_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
# Swagger UI loads its script from a CDN and starts it inline.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data: https:; "
    "style-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
    "script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
    "frame-ancestors 'none'"
)
UPLOAD_PATHS = ("/verify", "/api/v1/verify", "/api/reuse/v1/verify")
TOO_MANY = (
    "Bạn đã thử quá nhiều lần. Vui lòng đợi {seconds} giây rồi thử lại. / "
    "Too many attempts. Please wait {seconds} seconds and try again."
)


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


def create_app(
    bridge: Any,
    *,
    sink: DecisionSink | None = None,
    deliveries: DeliveryService | None = None,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """Return the HTTP app over a :class:`cloud_bridge.context.Bridge`.

    ``sink`` receives officers' decisions (the database outbox by default);
    ``deliveries`` is retried in the background while the app runs;
    ``routers`` are other parts' routes (fleet, OTA, intake) to include.
    """
    deliveries = deliveries or DeliveryService(
        bridge.config, bridge.store, bridge.archive
    )
    app = FastAPI(
        title="Certified copies",
        version="1",
        docs_url="/api/docs",
        lifespan=_lifespan(deliveries, bridge.config.delivery.poll_s),
    )
    lookup = CopyLookup(bridge.store, bridge.archive)
    registry = StoreRegistry(bridge.store)
    max_upload = bridge.config.http.max_upload_bytes
    guesses = SharedRateLimiter(
        bridge.store.engine, "lookup", bridge.config.lookup.attempts_per_minute
    )
    _add_security_headers(app, max_upload)
    install_console(app, bridge, sink=sink, deliveries=deliveries)
    app.include_router(reuse_router(bridge))
    for router in routers:
        app.include_router(router)

    def office_name(record: CopyRecord) -> str:
        office = bridge.config.offices.get(record.office_code)
        return office.name if office else record.office_code

    def page(request: Request, name: str, **context: Any) -> HTMLResponse:
        lang = "en" if request.query_params.get("lang") == "en" else "vi"

        def translate(vi: str, en: str) -> str:
            return en if lang == "en" else vi

        status = context.pop("status_code", 200)
        return TEMPLATES.TemplateResponse(
            request,
            name,
            {
                "lang": lang,
                "t": translate,
                "title": context.pop("title", ""),
                **context,
            },
            status_code=status,
        )

    def lookup_page_for(request: Request, copy_id: str, **context: Any) -> HTMLResponse:
        record = context.pop("copy", None) or lookup.public(copy_id)
        return page(
            request,
            "lookup.html",
            title="Tra cứu bản sao",
            copy=record,
            copy_id=copy_id,
            opened=context.pop("opened", False),
            office_name=office_name(record) if record else "",
            document_label=_label(record),
            status_code=context.pop("status_code", 200 if record else 404),
            **context,
        )

    def client_key(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def refuse_guessing(request: Request, copy_id: str, record: Any) -> HTMLResponse:
        seconds = guesses.retry_after(client_key(request))
        logger.warning("lookup attempts over the limit for one client address")
        response = lookup_page_for(
            request,
            copy_id,
            copy=record,
            error=TOO_MANY.format(seconds=seconds),
            status_code=429,
        )
        response.headers["Retry-After"] = str(seconds)
        return response

    def try_open(request: Request, copy_id: str, access_code: str) -> CopyRecord:
        if not guesses.allow(client_key(request)):
            raise HTTPException(
                429,
                TOO_MANY.format(seconds=guesses.retry_after(client_key(request))),
            )
        return lookup.open(copy_id, access_code)

    @app.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/static/site.css", include_in_schema=False)
    def site_css() -> Response:
        css = (HERE / "templates" / "site.css").read_text(encoding="utf-8")
        return Response(
            css,
            media_type="text/css",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    @app.get("/trust-list.json")
    def trust_list() -> Response:
        return Response(bridge.trust_list.to_json(), media_type="application/json")

    @app.get("/c/{copy_id}", response_class=HTMLResponse)
    @app.get("/C/{copy_id}", response_class=HTMLResponse, include_in_schema=False)
    def lookup_page(request: Request, copy_id: str) -> HTMLResponse:
        key = client_key(request)
        if guesses.blocked(key):
            return refuse_guessing(request, copy_id, None)
        record = lookup.public(copy_id)
        if record is None:
            guesses.allow(key)
        return lookup_page_for(request, copy_id, copy=record)

    @app.post("/c/{copy_id}", response_class=HTMLResponse)
    @app.post("/C/{copy_id}", response_class=HTMLResponse, include_in_schema=False)
    async def open_page(
        request: Request, copy_id: str, access_code: Annotated[str, Form()] = ""
    ) -> HTMLResponse:
        record = lookup.public(copy_id)
        if not guesses.allow(client_key(request)):
            return refuse_guessing(request, copy_id, record)
        try:
            opened = lookup.open(copy_id, access_code)
        except NotFoundError:
            return lookup_page_for(
                request,
                copy_id,
                copy=record,
                error=(
                    "Mã truy cập không đúng. Kiểm tra lại mã in cạnh mã QR. / "
                    "The access code is wrong; check the code beside the QR code."
                ),
                status_code=403 if record else 404,
            )
        pdf = lookup.pdf(opened)
        result = await run_in_threadpool(verify_upload, pdf, bridge, registry)
        audit.record(bridge.store.engine, "public", "copy.open", opened.copy_id, {})
        return lookup_page_for(
            request,
            copy_id,
            copy=opened,
            opened=True,
            access_code=access_code,
            pdf_url=f"/c/{opened.copy_id}/pdf",
            consent_url=f"/c/{opened.copy_id}/consent",
            result=result,
        )

    @app.post("/c/{copy_id}/pdf")
    def download_pdf(
        request: Request,
        copy_id: str,
        access_code: Annotated[str, Form()],
        inline: Annotated[str, Form()] = "",
    ) -> Response:
        record = _or_404(lambda: try_open(request, copy_id, access_code))
        audit.record(bridge.store.engine, "public", "copy.pdf", record.copy_id, {})
        return _pdf_response(record, lookup.pdf(record), inline=bool(inline))

    @app.post("/c/{copy_id}/consent", response_class=HTMLResponse)
    def consent_page(
        request: Request, copy_id: str, access_code: Annotated[str, Form()]
    ) -> HTMLResponse:
        record = _or_404(lambda: try_open(request, copy_id, access_code))
        token = create_consent(
            bridge.store.engine,
            record.copy_id,
            bridge.config.reuse.consent_ttl_days,
            "citizen",
        )
        return page(
            request,
            "consent.html",
            title="Mã đồng ý",
            copy=record,
            consent_token=token,
            days=bridge.config.reuse.consent_ttl_days,
        )

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
    def copy_lookup(
        request: Request, copy_id: str, body: AccessCodeBody
    ) -> dict[str, Any]:
        record = _or_404(lambda: try_open(request, copy_id, body.access_code))
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
    def copy_pdf(request: Request, copy_id: str, body: AccessCodeBody) -> Response:
        record = _or_404(lambda: try_open(request, copy_id, body.access_code))
        return _pdf_response(record, lookup.pdf(record))

    @app.post("/api/v1/verify")
    async def verify_api(request: Request) -> JSONResponse:
        data = await read_body(request, max_upload)
        result = await run_in_threadpool(verify_upload, data, bridge, registry)
        return JSONResponse(result)

    @app.get("/verify", response_class=HTMLResponse)
    def verify_form(request: Request) -> HTMLResponse:
        return page(request, "verify.html", title="Kiểm tra bản sao", result=None)

    @app.post("/verify", response_class=HTMLResponse)
    async def verify_upload_page(request: Request, file: UploadFile) -> HTMLResponse:
        data = await file.read(max_upload + 1)
        if len(data) > max_upload:
            return page(
                request,
                "verify.html",
                title="Kiểm tra bản sao",
                result=None,
                error=_too_large(max_upload),
                status_code=413,
            )
        result = await run_in_threadpool(verify_upload, data, bridge, registry)
        return page(request, "verify.html", title="Kiểm tra bản sao", result=result)

    return app


def _lifespan(
    deliveries: DeliveryService, poll_s: float
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_deliver_forever(deliveries, poll_s))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return lifespan


async def _deliver_forever(deliveries: DeliveryService, poll_s: float) -> None:
    while True:
        try:
            await run_in_threadpool(deliveries.run_due)
        except Exception:
            # The loop must outlive a database hiccup; the rows stay queued.
            logger.exception("the delivery loop failed; retrying in %s s", poll_s)
        await asyncio.sleep(poll_s)


def _add_security_headers(app: FastAPI, max_upload: int) -> None:
    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        declared = request.headers.get("content-length", "")
        if path in UPLOAD_PATHS and declared.isdigit() and int(declared) > max_upload:
            response: Response = JSONResponse(
                {"detail": _too_large(max_upload)}, status_code=413
            )
        else:
            response = await call_next(request)
        docs = path.startswith("/api/docs")
        response.headers["Content-Security-Policy"] = DOCS_CSP if docs else STRICT_CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        # same-origin rather than no-referrer: with no-referrer, browsers send
        # "Origin: null" on form posts, which the console refuses.
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if request.url.scheme == "https":
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        return response


def _too_large(limit: int) -> str:
    megabytes = max(1, limit // 1_000_000)
    return (
        f"Tệp quá lớn (tối đa {megabytes} MB). / "
        f"The file is too large (at most {megabytes} MB)."
    )


def _label(record: CopyRecord | None) -> str:
    if record is None:
        return ""
    return DOCUMENT_LABELS.get(record.document_type, record.document_type)


def _or_404(open_copy: Callable[[], CopyRecord]) -> CopyRecord:
    try:
        return open_copy()
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc


def _pdf_response(record: CopyRecord, data: bytes, inline: bool = False) -> Response:
    name = f"ban-sao-{record.copy_id}.pdf"
    disposition = "inline" if inline else "attachment"
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'{disposition}; filename="{name}"',
            "Cache-Control": "private, no-store",
        },
    )
