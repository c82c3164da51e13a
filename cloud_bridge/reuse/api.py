"""The HTTP API other public services use: token, copy with consent, verify.

Described in the app's OpenAPI document under the tag ``reuse``. A client
first trades its id and secret for a bearer token (OAuth2 client
credentials), then fetches a copy with the citizen's consent token in the
``X-Consent-Token`` header, or posts a PDF to verify. Each client has its own
rate limit, shared by all bridge instances through the database; every
access, granted or refused, is in the audit log.

Annotations are evaluated eagerly here (no ``from __future__ import
annotations``) because the routes depend on a closure FastAPI must resolve.
"""

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Header, HTTPException, Request
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.responses import JSONResponse, Response
from fastapi.security import OAuth2
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from cloud_bridge import audit
from cloud_bridge.errors import AuthError, ConsentError
from cloud_bridge.http.registry import StoreRegistry
from cloud_bridge.lookup import CopyLookup
from cloud_bridge.ratelimit import SharedRateLimiter
from cloud_bridge.reuse.consents import check_consent
from cloud_bridge.reuse.credentials import Client, client_for_token, issue_token
from cloud_bridge.uploads import read_body, verify_upload

logger = logging.getLogger(__name__)

PREFIX = "/api/reuse/v1"
TOKEN_URL = f"{PREFIX}/token"
BEARER = "Bearer"


class TokenAnswer(BaseModel):
    """An OAuth2 access token response."""

    access_token: str
    token_type: str
    expires_in: int


class ReusedCopy(BaseModel):
    """What a service learns about a copy it has consent for."""

    copy_id: str
    status: str
    office_code: str
    issued_on: str
    document_type: str
    cert_number: int
    book: str
    page_count: int
    pdf_sha256: str | None
    pdf_url: str


def reuse_router(bridge: Any) -> APIRouter:
    """Return the reuse API's routes over a bridge."""
    router = APIRouter(prefix=PREFIX, tags=["reuse"])
    scheme = OAuth2(
        flows=OAuthFlows(
            clientCredentials=OAuthFlowClientCredentials(tokenUrl=TOKEN_URL)
        ),
        auto_error=False,
    )
    engine = bridge.store.engine
    limiter = SharedRateLimiter(
        engine, "reuse", bridge.config.reuse.requests_per_minute
    )
    lookup = CopyLookup(bridge.store, bridge.archive)

    def client(authorization: Annotated[str | None, Depends(scheme)]) -> Client:
        scheme_name, _, token = (authorization or "").partition(" ")
        if scheme_name.lower() != "bearer" or not token:
            raise HTTPException(
                401,
                "send 'Authorization: Bearer TOKEN' from the token endpoint",
                headers={"WWW-Authenticate": "Bearer"},
            )
        try:
            found = client_for_token(engine, token.strip())
        except AuthError as exc:
            raise HTTPException(
                401, str(exc), headers={"WWW-Authenticate": "Bearer"}
            ) from exc
        if not limiter.allow(found.client_id, found.requests_per_minute):
            retry = limiter.retry_after(found.client_id, found.requests_per_minute)
            raise HTTPException(
                429,
                f"rate limit of {found.requests_per_minute} requests a minute "
                f"reached; retry in {retry} s",
                headers={"Retry-After": str(retry)},
            )
        return found

    def consented(caller: Client, copy_id: str, consent: str | None) -> None:
        try:
            check_consent(engine, copy_id, consent)
        except ConsentError as exc:
            audit.record(engine, caller.client_id, "reuse.refused", copy_id, {})
            raise HTTPException(403, str(exc)) from exc

    @router.post("/token", response_model=TokenAnswer)
    def token(
        grant_type: Annotated[str, Form()],
        client_id: Annotated[str, Form(max_length=64)],
        client_secret: Annotated[str, Form(max_length=200)],
    ) -> TokenAnswer:
        """Trade client credentials for a short-lived bearer token."""
        if grant_type != "client_credentials":
            raise HTTPException(400, "grant_type must be client_credentials")
        if not limiter.allow("token:" + client_id, 20):
            raise HTTPException(429, "too many token requests; wait a minute")
        ttl = bridge.config.reuse.token_ttl_s
        try:
            value, _ = issue_token(engine, client_id, client_secret, ttl)
        except AuthError as exc:
            raise HTTPException(401, str(exc)) from exc
        return TokenAnswer(access_token=value, token_type=BEARER, expires_in=ttl)

    @router.get("/copies/{copy_id}", response_model=ReusedCopy)
    def fetch_copy(
        copy_id: str,
        caller: Annotated[Client, Depends(client)],
        x_consent_token: Annotated[str | None, Header(max_length=64)] = None,
    ) -> ReusedCopy:
        """Return a copy's particulars, with the citizen's consent token."""
        consented(caller, copy_id, x_consent_token)
        record = lookup.public(copy_id)
        if record is None:
            raise HTTPException(404, "no issued copy has this identifier")
        audit.record(engine, caller.client_id, "reuse.fetch", copy_id, {})
        return ReusedCopy(
            copy_id=record.copy_id,
            status="revoked" if record.revoked else "valid",
            office_code=record.office_code,
            issued_on=record.issued_on.isoformat(),
            document_type=record.document_type,
            cert_number=record.cert_number,
            book=record.book,
            page_count=record.page_count,
            pdf_sha256=record.pdf_sha256,
            pdf_url=f"{PREFIX}/copies/{record.copy_id}/pdf",
        )

    @router.get("/copies/{copy_id}/pdf", response_class=Response)
    def fetch_pdf(
        copy_id: str,
        caller: Annotated[Client, Depends(client)],
        x_consent_token: Annotated[str | None, Header(max_length=64)] = None,
    ) -> Response:
        """Return a copy's signed PDF, with the citizen's consent token."""
        consented(caller, copy_id, x_consent_token)
        record = lookup.public(copy_id)
        if record is None:
            raise HTTPException(404, "no issued copy has this identifier")
        audit.record(engine, caller.client_id, "reuse.pdf", copy_id, {})
        return Response(lookup.pdf(record), media_type="application/pdf")

    @router.post("/verify")
    async def verify(
        request: Request, caller: Annotated[Client, Depends(client)]
    ) -> JSONResponse:
        """Verify a PDF the service received (the request body is the PDF)."""
        data = await read_body(request, bridge.config.http.max_upload_bytes)
        registry = StoreRegistry(bridge.store)
        result = await run_in_threadpool(verify_upload, data, bridge, registry)
        subject = str(result.get("copy_id") or "unknown")
        audit.record(engine, caller.client_id, "reuse.verify", subject, {})
        return JSONResponse(result)

    return router
