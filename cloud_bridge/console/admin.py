"""The administrator's page for console users: list, create, change, disable.

Creating a user or resetting their TOTP shows the enrolment once: a QR code
for the authenticator app and the secret in groups for typing by hand. The
page is sent with ``Cache-Control: no-store`` and the secret is kept only
encrypted, so it cannot be shown again; a lost authenticator means another
reset. Every change goes through :mod:`.accounts`, which audits it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any
from urllib.parse import quote

import pyotp
import segno
from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Engine

from cloud_bridge.config import ConsoleSection
from cloud_bridge.console import accounts
from cloud_bridge.console.labels import ROLE_LABELS
from cloud_bridge.console.sessions import Session
from cloud_bridge.console.tables import ROLES
from cloud_bridge.console.totp_secrets import TotpSecretBox
from cloud_bridge.console.users import create_user
from cloud_bridge.errors import InputError, NotFoundError

logger = logging.getLogger(__name__)

PERMISSION = "users"
USERS_URL = "/console/users"
ACTIONS = ("disable", "enable", "unlock")

PageFn = Callable[..., HTMLResponse]
SessionFn = Callable[..., Session]


def add_user_routes(
    router: APIRouter,
    engine: Engine,
    box: TotpSecretBox,
    settings: ConsoleSection,
    page: PageFn,
    session_of: SessionFn,
    posted: SessionFn,
) -> None:
    """Add the user administration routes to the console's router."""

    def listing(
        request: Request, found: Session, status_code: int = 200, **extra: Any
    ) -> HTMLResponse:
        return page(
            request,
            "users.html",
            found,
            accounts=accounts.list_accounts(engine),
            roles=ROLES,
            role_labels=ROLE_LABELS,
            status_code=status_code,
            **extra,
        )

    @router.get("/users", response_class=HTMLResponse)
    def users_page(request: Request, notice: str = "") -> HTMLResponse:
        found = session_of(request, PERMISSION)
        return listing(request, found, notice=notice[:200])

    @router.post("/users", response_class=HTMLResponse)
    def add_user(
        request: Request,
        username: Annotated[str, Form(max_length=40)],
        full_name: Annotated[str, Form(max_length=80)],
        title: Annotated[str, Form(max_length=80)],
        role: Annotated[str, Form(max_length=20)],
        password: Annotated[str, Form(max_length=200)],
        csrf_token: Annotated[str, Form()] = "",
    ) -> HTMLResponse:
        found = posted(request, csrf_token, PERMISSION)
        try:
            created = create_user(
                engine,
                username.strip(),
                role=role,
                full_name=full_name.strip(),
                title=title.strip(),
                password=password,
                box=box,
                issuer=settings.totp_issuer,
                actor=found.user.username,
            )
        except InputError as exc:
            return listing(request, found, status_code=400, error=str(exc))
        logger.info("%s created console user %s", found.user.username, username)
        return _enrolment(page, request, found, username, created.provisioning_uri)

    @router.post("/users/{username}/role")
    def set_role(
        request: Request,
        username: str,
        role: Annotated[str, Form(max_length=20)],
        csrf_token: Annotated[str, Form()] = "",
    ) -> Response:
        found = posted(request, csrf_token, PERMISSION)
        return _change(
            request,
            found,
            listing,
            partial(accounts.change_role, engine, found.user.username, username, role),
            f"Đã đổi vai trò của {username}.",
        )

    @router.post("/users/{username}/reset-totp", response_class=HTMLResponse)
    def reset_totp(
        request: Request, username: str, csrf_token: Annotated[str, Form()] = ""
    ) -> HTMLResponse:
        found = posted(request, csrf_token, PERMISSION)
        try:
            uri = accounts.reset_totp(
                engine, found.user.username, username, box, settings.totp_issuer
            )
        except NotFoundError as exc:
            raise HTTPException(404, "Không có người dùng này.") from exc
        return _enrolment(page, request, found, username, uri)

    @router.post("/users/{username}/{action}")
    def account_action(
        request: Request,
        username: str,
        action: str,
        csrf_token: Annotated[str, Form()] = "",
    ) -> Response:
        if action not in ACTIONS:
            raise HTTPException(404, "Không có thao tác này.")
        found = posted(request, csrf_token, PERMISSION)
        admin = found.user.username
        changes: dict[str, Callable[[], None]] = {
            "disable": partial(accounts.set_disabled, engine, admin, username, True),
            "enable": partial(accounts.set_disabled, engine, admin, username, False),
            "unlock": partial(accounts.unlock, engine, admin, username),
        }
        notices = {
            "disable": f"Đã vô hiệu hóa tài khoản {username}.",
            "enable": f"Đã bật lại tài khoản {username}.",
            "unlock": f"Đã mở khóa đăng nhập cho {username}.",
        }
        return _change(request, found, listing, changes[action], notices[action])


def _change(
    request: Request,
    found: Session,
    listing: Callable[..., HTMLResponse],
    change: Callable[[], None],
    notice: str,
) -> Response:
    try:
        change()
    except NotFoundError as exc:
        raise HTTPException(404, "Không có người dùng này.") from exc
    except InputError as exc:
        return listing(request, found, status_code=400, error=str(exc))
    return RedirectResponse(f"{USERS_URL}?notice={quote(notice)}", status_code=303)


def _enrolment(
    page: PageFn, request: Request, found: Session, username: str, uri: str
) -> HTMLResponse:
    secret = pyotp.parse_uri(uri).secret
    groups = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    qr = segno.make(uri, error="m").svg_data_uri(scale=5, border=4)
    return page(
        request,
        "user_enrolment.html",
        found,
        username=username,
        qr=qr,
        secret_groups=groups,
    )
