"""The console's pages: login, queue, request page, decisions, oversight.

:func:`install_console` adds the routes under ``/console`` to the bridge's
app. Every page needs a live session; every form post needs the session's
CSRF token and, when the browser sends one, an ``Origin`` of this host.
Each role sees only its pages (:data:`PERMISSIONS`). Templates autoescape,
so text from kiosks and citizens is shown inert. Every page that shows a
citizen's data (queue, request page, page images, deliveries) is recorded in
the audit log (:mod:`.viewing`); the administrator's users page is in
:mod:`.admin`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from cloud_bridge import audit
from cloud_bridge.config import BridgeConfig
from cloud_bridge.console.admin import add_user_routes
from cloud_bridge.console.labels import (
    DELIVERY_LABELS,
    FIELD_LABELS,
    FINDING_LABELS,
    MISSING_LABELS,
    ROLE_LABELS,
    labeller,
)
from cloud_bridge.console.review import ReviewService
from cloud_bridge.console.sessions import (
    Session,
    close_session,
    load_session,
    open_session,
    token_hash,
)
from cloud_bridge.console.totp_secrets import TotpSecretBox, box_from_config
from cloud_bridge.console.users import authenticate, seal_plain_secrets
from cloud_bridge.console.view import describe
from cloud_bridge.console.viewing import ViewRecorder
from cloud_bridge.copies import DOCUMENT_LABELS
from cloud_bridge.decisions import DecisionSink, OutboxDecisionSink
from cloud_bridge.delivery.service import DeliveryService
from cloud_bridge.errors import AuthError, BridgeError, NotFoundError
from cloud_bridge.store import RequestRecord

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
SESSION_COOKIE = "console_session"
LOGIN_COOKIE = "console_login"

PERMISSIONS: dict[str, frozenset[str]] = {
    "queue": frozenset({"officer", "supervisor"}),
    "decide": frozenset({"officer"}),
    "see_id": frozenset({"officer"}),
    "page_images": frozenset({"officer"}),
    "supervise": frozenset({"supervisor", "administrator"}),
    "deliveries": frozenset({"officer", "supervisor", "administrator"}),
    "audit": frozenset({"auditor"}),
    "users": frozenset({"administrator"}),
}
HOME_BY_ROLE = {
    "officer": "/console/queue",
    "supervisor": "/console/supervisor",
    "auditor": "/console/audit",
    "administrator": "/console/users",
    "fleet_manager": "/console/fleet",
}
IMAGE_TYPES = {b"\xff\xd8": "image/jpeg", b"\x89P": "image/png"}


class LoginRequiredError(Exception):
    """No live session: the browser is sent to the login page."""


def current_session(
    bridge: Any, request: Request, roles: frozenset[str] | None = None
) -> Session:
    """Return the request's console session, for pages outside this package.

    Raises:
        LoginRequiredError: no live session (the app redirects to the login).
        HTTPException: 403 when the user's role is not in ``roles``.
    """
    found = load_session(
        bridge.store.engine, request.cookies.get(SESSION_COOKIE), bridge.config.console
    )
    if found is None:
        raise LoginRequiredError
    if roles is not None and found.user.role not in roles:
        raise HTTPException(403, "Vai trò của bạn không được xem trang này.")
    return found


def install_console(
    app: FastAPI,
    bridge: Any,
    *,
    sink: DecisionSink | None = None,
    deliveries: DeliveryService | None = None,
) -> ReviewService:
    """Add the console's routes to ``app`` and return its review service."""
    deliveries = deliveries or DeliveryService(
        bridge.config, bridge.store, bridge.archive
    )
    review = ReviewService(
        bridge, sink or OutboxDecisionSink(bridge.store.engine), deliveries
    )
    box = box_from_config(bridge.config, bridge.token)
    seal_plain_secrets(bridge.store.engine, box)
    app.mount(
        "/console/static",
        StaticFiles(directory=str(HERE / "static")),
        name="console-static",
    )
    app.include_router(_router(bridge, review, deliveries, box))

    @app.exception_handler(LoginRequiredError)
    async def to_login(request: Request, exc: LoginRequiredError) -> Response:
        if request.url.path.endswith(".json"):
            return JSONResponse({"detail": "log in again"}, status_code=401)
        return RedirectResponse("/console/login", status_code=303)

    return review


def _router(
    bridge: Any,
    review: ReviewService,
    deliveries: DeliveryService,
    box: TotpSecretBox,
) -> APIRouter:
    router = APIRouter(prefix="/console", include_in_schema=False)
    config: BridgeConfig = bridge.config
    engine = bridge.store.engine
    settings = config.console
    views = ViewRecorder(engine)

    def shown(request: Request, found: Session, action: str, items: list[Any]) -> None:
        cookie = request.cookies.get(SESSION_COOKIE) or ""
        views.list_shown(token_hash(cookie), found.user.username, action, items)

    def pending_queue(request: Request, found: Session) -> list[dict[str, Any]]:
        items = _queue_items(bridge.store.list_requests(state="pending", limit=200))
        shown(request, found, "queue.view", [item["request_id"] for item in items])
        return items

    def session_of(request: Request, permission: str | None = None) -> Session:
        found = load_session(engine, request.cookies.get(SESSION_COOKIE), settings)
        if found is None:
            raise LoginRequiredError
        if permission and found.user.role not in PERMISSIONS[permission]:
            raise HTTPException(403, "Vai trò của bạn không được xem trang này.")
        return found

    def posted(request: Request, csrf_token: str, permission: str) -> Session:
        _check_origin(request)
        found = session_of(request, permission)
        if not found.csrf_ok(csrf_token):
            raise HTTPException(
                403, "Phiên biểu mẫu không hợp lệ; tải lại trang rồi thử lại."
            )
        return found

    def page(
        request: Request, name: str, session: Session | None, **context: Any
    ) -> HTMLResponse:
        lang = "en" if request.query_params.get("lang") == "en" else "vi"

        def translate(vi: str, en: str) -> str:
            return en if lang == "en" else vi

        status = context.pop("status_code", 200)
        values = {
            "lang": lang,
            "t": translate,
            "session": session,
            "csrf": session.csrf_token if session else "",
            "can": (
                lambda p: session is not None and session.user.role in PERMISSIONS[p]
            ),
            "labels": DOCUMENT_LABELS,
            "field_label": labeller(FIELD_LABELS, lang),
            "missing_label": labeller(MISSING_LABELS, lang),
            "delivery_label": labeller(DELIVERY_LABELS, lang),
            "role_name": labeller(ROLE_LABELS, lang),
            **context,
        }
        response = TEMPLATES.TemplateResponse(request, name, values, status_code=status)
        response.headers["Cache-Control"] = "no-store"
        return response

    def secure(request: Request) -> bool:
        mode = settings.secure_cookies
        return mode == "always" or (mode == "auto" and request.url.scheme == "https")

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, error: str = "") -> HTMLResponse:
        token = _random_token()
        response = page(request, "login.html", None, login_token=token, error=error)
        response.set_cookie(
            LOGIN_COOKIE,
            token,
            max_age=900,
            httponly=True,
            samesite="strict",
            secure=secure(request),
            path="/console",
        )
        return response

    @router.post("/login")
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=40)],
        password: Annotated[str, Form(max_length=200)],
        code: Annotated[str, Form(max_length=12)],
        login_token: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        _check_origin(request)
        cookie = request.cookies.get(LOGIN_COOKIE)
        if not cookie or cookie != login_token:
            return page(
                request,
                "login.html",
                None,
                login_token="",
                error="Phiên đăng nhập hết hạn; tải lại trang đăng nhập.",
                status_code=403,
            )
        try:
            user = authenticate(engine, settings, username, password, code, box=box)
        except AuthError as exc:
            return page(
                request,
                "login.html",
                None,
                login_token=cookie,
                error=str(exc),
                status_code=401,
            )
        token = open_session(engine, user, settings)
        response = RedirectResponse(HOME_BY_ROLE[user.role], status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=secure(request),
            # The fleet pages (/fleet/) accept a fleet manager's session too.
            path="/",
        )
        response.delete_cookie(LOGIN_COOKIE, path="/console")
        return response

    @router.post("/logout")
    def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
        _check_origin(request)
        found = session_of(request)
        if not found.csrf_ok(csrf_token):
            raise HTTPException(403, "Phiên biểu mẫu không hợp lệ.")
        cookie = request.cookies.get(SESSION_COOKIE)
        close_session(engine, cookie)
        views.forget(token_hash(cookie or ""))
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @router.get("/")
    def home(request: Request) -> Response:
        found = session_of(request)
        return RedirectResponse(HOME_BY_ROLE[found.user.role], status_code=303)

    @router.get("/fleet")
    def fleet(request: Request) -> Response:
        session_of(request)
        return RedirectResponse("/fleet/", status_code=303)

    @router.get("/queue", response_class=HTMLResponse)
    def queue(request: Request, notice: str = "") -> HTMLResponse:
        found = session_of(request, "queue")
        items = pending_queue(request, found)
        return page(request, "queue.html", found, items=items, notice=notice)

    @router.get("/queue.json")
    def queue_json(request: Request) -> JSONResponse:
        found = session_of(request, "queue")
        items = pending_queue(request, found)
        return JSONResponse({"items": items}, headers={"Cache-Control": "no-store"})

    @router.post("/approve-batch")
    async def approve_batch(request: Request) -> Response:
        form = await request.form()
        found = posted(request, str(form.get("csrf_token", "")), "decide")
        chosen = [str(value) for value in form.getlist("request_id")][:50]
        approved, failed = await _approve_clean(bridge, review, found, chosen)
        notice = f"Đã duyệt {approved} yêu cầu."
        if failed:
            notice += f" {failed} yêu cầu cần xem riêng."
        return page(
            request,
            "queue.html",
            found,
            items=pending_queue(request, found),
            notice=notice,
        )

    @router.get("/requests/{request_id}", response_class=HTMLResponse)
    def request_page(request: Request, request_id: str) -> HTMLResponse:
        found = session_of(request, "queue")
        record = _request_or_404(bridge, request_id)
        if found.user.role == "officer" and record.state == "pending":
            review.opened(request_id, found.user)
        else:
            audit.record(engine, found.user.username, "request.view", request_id, {})
        return _request_view(page, request, found, record, settings.reject_reasons)

    @router.get("/requests/{request_id}/pages/{number}")
    def page_image(request: Request, request_id: str, number: int) -> Response:
        found = session_of(request, "page_images")
        record = _request_or_404(bridge, request_id)
        digests = record.metadata.get("pages")
        if not isinstance(digests, list) or not 1 <= number <= len(digests):
            raise HTTPException(404, "Yêu cầu không có trang này.")
        data: bytes = bridge.archive.get(str(digests[number - 1]))
        audit.record(
            engine, found.user.username, "request.page", request_id, {"page": number}
        )
        media = IMAGE_TYPES.get(data[:2], "application/octet-stream")
        return Response(
            data, media_type=media, headers={"Cache-Control": "private, no-store"}
        )

    @router.post("/requests/{request_id}/approve")
    def approve(
        request: Request, request_id: str, csrf_token: Annotated[str, Form()] = ""
    ) -> Response:
        found = posted(request, csrf_token, "decide")
        record = _request_or_404(bridge, request_id)
        try:
            issued = review.approve(request_id, found.user)
        except BridgeError as exc:
            logger.warning("approval of %s failed: %s", request_id, exc)
            return _request_view(
                page,
                request,
                found,
                record,
                settings.reject_reasons,
                error=f"Không duyệt được: {exc}",
                status_code=409,
            )
        notice = f"Đã duyệt; bản sao {issued.copy_id}."
        return RedirectResponse(_next_url(bridge, notice), status_code=303)

    @router.post("/requests/{request_id}/reject")
    def reject(
        request: Request,
        request_id: str,
        csrf_token: Annotated[str, Form()] = "",
        reason: Annotated[str, Form(max_length=500)] = "",
        custom_reason: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:
        found = posted(request, csrf_token, "decide")
        record = _request_or_404(bridge, request_id)
        try:
            review.reject(request_id, found.user, custom_reason.strip() or reason)
        except BridgeError as exc:
            return _request_view(
                page,
                request,
                found,
                record,
                settings.reject_reasons,
                error=str(exc),
                status_code=400,
            )
        return RedirectResponse(_next_url(bridge, "Đã từ chối."), status_code=303)

    @router.get("/supervisor", response_class=HTMLResponse)
    def supervisor(request: Request) -> HTMLResponse:
        found = session_of(request, "supervise")
        failed = deliveries.listing(failed_only=True)
        shown(request, found, "deliveries.view", [d.delivery_id for d in failed])
        return page(
            request,
            "supervisor.html",
            found,
            stats=review.stats(),
            pending=len(bridge.store.list_requests(state="pending", limit=1000)),
            failed=failed,
        )

    @router.get("/deliveries", response_class=HTMLResponse)
    def delivery_list(request: Request) -> HTMLResponse:
        found = session_of(request, "deliveries")
        items = deliveries.listing(limit=200)
        shown(request, found, "deliveries.view", [d.delivery_id for d in items])
        return page(request, "deliveries.html", found, items=items)

    @router.post("/deliveries/{delivery_id}/retry")
    def delivery_retry(
        request: Request, delivery_id: int, csrf_token: Annotated[str, Form()] = ""
    ) -> Response:
        posted(request, csrf_token, "deliveries")
        deliveries.retry_now(delivery_id)
        deliveries.run_due()
        return RedirectResponse("/console/deliveries", status_code=303)

    @router.get("/audit", response_class=HTMLResponse)
    def audit_page(request: Request) -> HTMLResponse:
        found = session_of(request, "audit")
        return page(
            request,
            "audit.html",
            found,
            chain=audit.verify_chain(engine),
            entries=audit.recent(engine, 200),
        )

    add_user_routes(router, engine, box, settings, page, session_of, posted)
    return router


def _random_token() -> str:
    return secrets.token_urlsafe(24)


def _check_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is None:
        return
    if urlsplit(origin).netloc != request.url.netloc:
        logger.warning("refused a console post from another origin")
        raise HTTPException(403, "Yêu cầu từ trang khác bị từ chối.")


def _request_or_404(bridge: Any, request_id: str) -> RequestRecord:
    try:
        record: RequestRecord = bridge.store.get_request(request_id)
    except NotFoundError as exc:
        raise HTTPException(404, "Không có yêu cầu này.") from exc
    return record


def _queue_items(records: list[RequestRecord]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            "request_id": record.request_id,
            "citizen_name": record.citizen_name,
            "document": DOCUMENT_LABELS.get(record.document_type, record.document_type),
            "kiosk_id": record.kiosk_id,
            "waiting_s": int((now - record.created_at).total_seconds()),
            "clean": describe(record).clean,
        }
        for record in records
    ]


async def _approve_clean(
    bridge: Any, review: ReviewService, session: Session, chosen: list[str]
) -> tuple[int, int]:
    approved = failed = 0
    for request_id in chosen:
        try:
            record: RequestRecord = bridge.store.get_request(request_id)
            if record.state != "pending" or not describe(record).clean:
                failed += 1
                continue
            await run_in_threadpool(review.approve, request_id, session.user)
            approved += 1
        except BridgeError as exc:
            logger.warning("batch approval of %s failed: %s", request_id, exc)
            failed += 1
    return approved, failed


def _next_url(bridge: Any, notice: str) -> str:
    pending = bridge.store.list_requests(state="pending", limit=1)
    if pending:
        return f"/console/requests/{quote(pending[0].request_id)}"
    return f"/console/queue?notice={quote(notice)}"


def _finding_labeller(request: Request) -> Callable[[str], str]:
    lang = "en" if request.query_params.get("lang") == "en" else "vi"
    return labeller({**FIELD_LABELS, **FINDING_LABELS}, lang)


def _request_view(
    page: Callable[..., HTMLResponse],
    request: Request,
    session: Session,
    record: RequestRecord,
    reasons: list[str],
    **extra: Any,
) -> HTMLResponse:
    officer = session.user.role in PERMISSIONS["see_id"]
    id_number = record.citizen_id_number if officer else record.masked_id_number
    digests = record.metadata.get("pages")
    pages = len(digests) if isinstance(digests, list) else 0
    return page(
        request,
        "request.html",
        session,
        record=record,
        view=describe(record, _finding_labeller(request)),
        id_number=id_number,
        pages=pages if session.user.role in PERMISSIONS["page_images"] else 0,
        reasons=reasons,
        **extra,
    )
