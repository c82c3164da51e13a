"""The fleet manager's view, enrollment endpoints and ``/metrics``.

:func:`fleet_router` returns a FastAPI ``APIRouter`` for the bridge app.
Enrollment (``/fleet/enroll``, ``/fleet/renew``) is authenticated by the
one-time token or the kiosk's current key; the CA certificate and CRL are
public. The pages, the JSON list and ``/metrics`` need ``fleet.api_token``
as a bearer token or as the password of HTTP Basic (any user name), until
the officer console's role-based sign-in replaces it; they show devices,
never citizens' data.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from cloud_bridge.errors import EnrollmentError, FleetError, NotFoundError
from cloud_bridge.fleet.alerts import ALERTS, KioskView
from cloud_bridge.fleet.charts import line_chart
from cloud_bridge.fleet.enrollment import Enrolled, EnrollRequest, RenewRequest
from cloud_bridge.fleet.metrics import render_metrics
from cloud_bridge.fleet.service import Fleet
from protocol.commands import COMMAND_NAMES, ArgValue

logger = logging.getLogger(__name__)

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
COLUMNS = (
    ("kiosk", "Kiosk"),
    ("state", "Status"),
    ("last_seen", "Last seen"),
    ("version", "Software / model"),
    ("alerts", "Alerts"),
)
# Direction of each column's sort, for the header's aria-sort.
SORT_DIRECTIONS = {"alerts": "descending"}
BUTTONS = tuple(name for name in COMMAND_NAMES if name != "set_config")
PEM = "application/x-pem-file"
STYLESHEET = Path(__file__).parent / "templates" / "fleet.css"


@dataclass(frozen=True)
class Manager:
    """Who is using the fleet pages.

    A console session has a name and a CSRF token every form must return;
    a caller with the API token sends no cookie, so needs no CSRF token.
    """

    name: str
    csrf_token: str | None = None


API_CALLER = Manager("fleet API token")


def fleet_router(
    fleet: Fleet, signed_in: Callable[[Request], Manager | None] | None = None
) -> APIRouter:
    """Return the router serving enrollment, the fleet pages and /metrics.

    ``signed_in`` returns the console session of a fleet manager or
    administrator the request carries, if any; the API token is accepted too
    (for Prometheus and scripts).
    """
    router = APIRouter()
    check = _manager_check(fleet, signed_in)
    manager = Depends(check)
    caller = Depends(check)  # annotations are strings here: no local aliases

    @router.get("/fleet/static/fleet.css")
    def stylesheet() -> Response:
        """Serve the pages' style sheet (the CSP allows no inline style)."""
        return Response(STYLESHEET.read_text(encoding="utf-8"), media_type="text/css")

    @router.post("/fleet/enroll")
    def enroll(body: EnrollRequest) -> Enrolled:
        """Enroll a kiosk with a one-time token and a CSR."""
        return _enrollment(lambda: fleet.enrollment.enroll(body))

    @router.post("/fleet/renew")
    def renew(body: RenewRequest) -> Enrolled:
        """Renew a kiosk's certificate, proven by its current key."""
        return _enrollment(lambda: fleet.enrollment.renew(body))

    @router.get("/fleet/ca.pem")
    def ca_certificate() -> Response:
        """Return the kiosk CA certificate."""
        return Response(fleet.ca.ca_pem, media_type=PEM)

    @router.get("/fleet/crl.pem")
    def crl() -> Response:
        """Return the kiosk CRL."""
        return Response(fleet.ca.crl_path.read_bytes(), media_type=PEM)

    @router.get("/fleet/", response_class=HTMLResponse, dependencies=[manager])
    def kiosk_list(
        state: str = "", alert: str = "", q: str = "", sort: str = "kiosk"
    ) -> HTMLResponse:
        """List kiosks, filtered and sorted."""
        if sort not in dict(COLUMNS):
            sort = "kiosk"
        views = filter_views(fleet.views(), state=state, alert=alert, text=q)
        views = sort_views(views, sort)
        counts = Counter(v.state for v in fleet.views())
        html = TEMPLATES.get_template("fleet_list.html").render(
            views=views,
            counts={s: counts[s] for s in ("online", "offline", "revoked")},
            columns=COLUMNS,
            alerts=ALERTS,
            state=state,
            alert=alert,
            q=q,
            sort=sort,
            sort_label=dict(COLUMNS)[sort].lower(),
            sort_direction=SORT_DIRECTIONS.get(sort, "ascending"),
        )
        return HTMLResponse(html)

    @router.get("/fleet/kiosks/{kiosk_id}", response_class=HTMLResponse)
    def kiosk_page(
        kiosk_id: str, sent: str = "", who: Manager = caller
    ) -> HTMLResponse:
        """Show one kiosk with charts, commands and events."""
        return HTMLResponse(_kiosk_page(fleet, kiosk_id, sent, who.csrf_token or ""))

    @router.post("/fleet/kiosks/{kiosk_id}/commands")
    def send_command(
        kiosk_id: str,
        name: Annotated[str, Form()],
        key: Annotated[str, Form()] = "",
        value: Annotated[str, Form()] = "",
        urgent: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
        who: Manager = caller,
    ) -> RedirectResponse:
        """Send a command in the sender's name and return to the kiosk's page."""
        if who.csrf_token is not None and not secrets.compare_digest(
            csrf_token.encode(), who.csrf_token.encode()
        ):
            raise HTTPException(
                403, "the form has expired; reload the kiosk's page and send again"
            )
        _send(fleet, kiosk_id, name, key, value, urgent=bool(urgent), by=who.name)
        return RedirectResponse(f"../{kiosk_id}?sent={name}", status_code=303)

    @router.get("/fleet/api/kiosks", dependencies=[manager])
    def kiosks_json() -> list[dict[str, Any]]:
        """Return every kiosk with state and alerts as JSON."""
        return [view_json(v) for v in fleet.views()]

    @router.get("/metrics", dependencies=[manager])
    def metrics() -> Response:
        """Return Prometheus figures."""
        return Response(render_metrics(fleet), media_type="text/plain; version=0.0.4")

    return router


def filter_views(
    views: list[KioskView], *, state: str = "", alert: str = "", text: str = ""
) -> list[KioskView]:
    """Keep the kiosks in ``state``, raising ``alert``, whose id holds ``text``."""
    return [
        v
        for v in views
        if (not state or v.state == state)
        and (not alert or alert in v.alerts)
        and (not text or text.lower() in v.kiosk_id)
    ]


def sort_views(views: list[KioskView], key: str) -> list[KioskView]:
    """Sort by a column key; unknown keys sort by kiosk id."""
    keys: dict[str, Any] = {
        "state": lambda v: (v.state, v.kiosk_id),
        "last_seen": lambda v: (v.record.last_seen is not None, v.record.last_seen),
        "version": lambda v: (v.record.software_version or "", v.kiosk_id),
        "alerts": lambda v: (-len(v.alerts), v.kiosk_id),
    }
    return sorted(views, key=keys.get(key, lambda v: v.kiosk_id))


def view_json(v: KioskView) -> dict[str, Any]:
    """Return a kiosk's JSON form for the API and ``kiosk fleet ls --json``."""
    record = v.record
    health = record.last_health or {}
    return {
        "kiosk_id": v.kiosk_id,
        "state": v.state,
        "last_seen": record.last_seen.isoformat() if record.last_seen else None,
        "software_version": record.software_version,
        "model_version": record.model_version,
        "paper_percent": health.get("paper_percent"),
        "certificate_expires_at": (
            record.certificate_expires_at.isoformat()
            if record.certificate_expires_at
            else None
        ),
        "alerts": list(v.alerts),
    }


def _manager_check(
    fleet: Fleet, signed_in: Callable[[Request], Manager | None] | None
) -> Callable[[Request], Manager]:
    def check(request: Request) -> Manager:
        session = signed_in(request) if signed_in is not None else None
        if session is not None:
            return session
        configured = fleet.config.fleet.api_token
        if configured is None:
            raise HTTPException(
                503, "the fleet pages are off: set fleet.api_token in the bridge config"
            )
        offered = _offered_token(request.headers.get("authorization", ""))
        expected = configured.get_secret_value().encode()
        if offered is None or not secrets.compare_digest(offered, expected):
            raise HTTPException(
                401,
                "sign in with the fleet token",
                headers={"WWW-Authenticate": 'Basic realm="fleet"'},
            )
        return API_CALLER

    return check


def _offered_token(header: str) -> bytes | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip().encode()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
        return decoded.partition(b":")[2]
    return None


def _enrollment(action: Any) -> Enrolled:
    try:
        result: Enrolled = action()
    except EnrollmentError as exc:
        logger.warning("enrollment refused: %s", exc)
        raise HTTPException(403, str(exc)) from exc
    return result


def _kiosk_page(fleet: Fleet, kiosk_id: str, sent: str, csrf_token: str) -> str:
    try:
        record = fleet.registry.kiosk(kiosk_id)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc
    v = next(x for x in fleet.views() if x.kiosk_id == record.kiosk_id)
    rows = fleet.registry.health_history(kiosk_id)
    charts = [
        line_chart("Paper (%)", [r["paper_percent"] for r in rows], 100),
        line_chart("CPU temperature (°C)", [r["cpu_temp_c"] for r in rows]),
        line_chart("Load (1 min)", [r["load_1m"] for r in rows]),
        line_chart("Memory used (%)", [r["memory_used_percent"] for r in rows], 100),
        line_chart("Outbox depth", [float(r["outbox_depth"]) for r in rows]),
    ]
    devices = (record.last_health or {}).get("devices") or {}
    return TEMPLATES.get_template("fleet_kiosk.html").render(
        v=v,
        devices=devices,
        charts=charts,
        command_names=BUTTONS,
        sent=sent if sent in COMMAND_NAMES else "",
        commands=fleet.registry.commands_for(kiosk_id),
        csrf_token=csrf_token,
        events=fleet.registry.recent_events(kiosk_id),
    )


def _send(
    fleet: Fleet,
    kiosk_id: str,
    name: str,
    key: str,
    value: str,
    *,
    urgent: bool,
    by: str,
) -> None:
    if name not in COMMAND_NAMES:
        raise HTTPException(400, f"unknown command {name!r}")
    try:
        fleet.registry.kiosk(kiosk_id)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc
    args: dict[str, ArgValue] = (
        {"key": key, "value": value} if name == "set_config" else {}
    )
    try:
        fleet.commander.send(kiosk_id, name, args, urgent=urgent, requested_by=by)
    except FleetError as exc:
        raise HTTPException(503, str(exc)) from exc
