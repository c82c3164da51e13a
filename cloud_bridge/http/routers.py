"""The other parts' routes, assembled for the bridge's HTTP app."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from cloud_bridge.console.web import LoginRequiredError, current_session
from cloud_bridge.fleet.service import Fleet
from cloud_bridge.fleet.web import Manager, fleet_router
from cloud_bridge.ota_routes import ota_router

logger = logging.getLogger(__name__)

FLEET_ROLES = frozenset({"fleet_manager", "administrator"})


def bridge_routers(bridge: Any) -> list[APIRouter]:
    """Return the fleet, OTA and kiosk intake routers for ``bridge``."""

    def fleet_manager_signed_in(request: Request) -> Manager | None:
        try:
            session = current_session(bridge, request, FLEET_ROLES)
        except (LoginRequiredError, HTTPException):
            return None
        return Manager(session.user.username, session.csrf_token)

    return [
        fleet_router(Fleet(bridge.config), fleet_manager_signed_in),
        ota_router(bridge),
    ]
