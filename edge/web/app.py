"""Serve the visit's screens: server-rendered pages, one task per screen.

Every action is a form POST naming the step it was pressed on, answered by
a redirect to ``/``, which renders the current step; so a reload, a double
tap or a touch during a transition never repeats an action. The little
JavaScript there is keeps the session alive while touched, shows the idle
warning, refreshes the camera feedback and asks for speech.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from drivers.camera import MJPEG_BOUNDARY, Camera
from drivers.errors import DriverError
from edge.capture import assess
from edge.errors import StorageError
from edge.speech import VOLUMES, Speaker
from edge.texts import money, text
from edge.visit import DOCUMENT_TYPES, Step, View, VisitController

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
STEP_NUMBER = {
    Step.IDENTIFY: 1,
    Step.FACE: 2,
    Step.STAFF: 2,
    Step.CAPTURE: 3,
    Step.PAGE: 3,
    Step.REVIEW: 4,
    Step.CONFIRM: 5,
    Step.WAITING: 6,
    Step.PRINTING: 6,
    Step.APPROVED: 6,
    Step.REJECTED: 6,
}
SPOKEN = {
    Step.WELCOME: ("welcome_title", "welcome_body", "consent_what", "consent_why"),
    Step.IDENTIFY: ("identify_title", "identify_body"),
    Step.FACE: ("face_title", "face_ready"),
    Step.STAFF: ("staff_title", "staff_body"),
    Step.CAPTURE: ("capture_title", "capture_body"),
    Step.PAGE: ("page_body",),
    Step.REVIEW: ("review_title", "document_type", "copies", "delivery"),
    Step.CONFIRM: ("confirm_title",),
    Step.WAITING: ("waiting_title", "waiting_body"),
    Step.PRINTING: ("printing_title",),
    Step.APPROVED: ("approved_title", "approved_body"),
    Step.REJECTED: ("rejected_title",),
}
ACTIONS = {
    "start": VisitController.begin,
    "read_card": VisitController.read_card,
    "check_face": VisitController.check_face,
    "staff_checked": VisitController.staff_checked,
    "take_page": VisitController.take_page,
    "use_page": VisitController.use_page,
    "retake_page": VisitController.retake_page,
    "pages_done": VisitController.pages_done,
    "submit": VisitController.submit,
    "back": VisitController.back,
}


def speech_text(view: View) -> str:
    """Return what speech mode reads for a screen: instructions only."""
    language = view.data.get("language", "vi")
    keys = list(SPOKEN.get(view.step, ()))
    keys += [str(code) for code in view.data.get("errors", {}).values()]
    if view.step is Step.FACE:
        keys.append(str(view.data.get("challenge", "face_hold")))
    if view.step is Step.PAGE and _page_unreadable(view):
        keys.append("page_unreadable")
    if view.step is Step.APPROVED and view.data.get("print_error"):
        keys.append(str(view.data["print_error"]))
    parts = [text(key, language, left=_tries_left(view), n="") for key in keys]
    return " ".join(part for part in parts if part)


def _page_unreadable(view: View) -> bool:
    readings = view.data.get("readings", {})
    for page in view.pages:
        if page.position == view.data.get("page"):
            reading = readings.get(page.sha256)
            return reading is not None and not reading.get("readable")
    return False


def _tries_left(view: View) -> int:
    return max(0, 3 - int(view.data.get("face_tries", 0)))


class AgentUi:
    """The FastAPI app of the kiosk's screens."""

    def __init__(
        self,
        controller: VisitController,
        cameras: dict[str, Camera],
        speaker: Speaker,
        online: Callable[[], bool] = lambda: False,
        offline_after_s: float = 15.0,
    ) -> None:
        self.controller = controller
        self.online = online
        self.cameras = cameras
        self.speaker = speaker
        self.offline_after_s = offline_after_s
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals["t"] = text
        self.templates.env.globals["money"] = money
        self.templates.env.filters["field_label"] = _field_label
        self.templates.env.filters["shown_value"] = _shown_value
        self.app = FastAPI(title="kiosk", docs_url=None, redoc_url=None)
        self.app.mount("/static", StaticFiles(directory=str(HERE / "static")))
        self.app.include_router(self._router())
        self.app.add_exception_handler(StorageError, self._storage_failed)

    def _router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route("/", self.screen, response_class=HTMLResponse)
        router.add_api_route("/action/{name}", self.action, methods=["POST"])
        router.add_api_route("/api/state", self.state)
        router.add_api_route("/api/touch", self.touch, methods=["POST"])
        router.add_api_route("/api/speak", self.speak, methods=["POST"])
        router.add_api_route("/api/feedback", self.feedback)
        router.add_api_route("/camera/{name}.mjpg", self.camera)
        router.add_api_route("/page/{position}.jpg", self.page_image)
        return router

    def screen(self, request: Request) -> Response:
        """Render the current step."""
        self.controller.expire_if_idle()
        view = self.controller.view()
        language = view.data.get("language", "vi")
        context: dict[str, Any] = {
            "view": view,
            "step": view.step.value,
            "lang": language,
            "data": view.data,
            "errors": view.data.get("errors", {}),
            "step_number": STEP_NUMBER.get(view.step),
            "document_types": DOCUMENT_TYPES,
            "labels": _document_labels(language),
            "offline": self._offline(view),
            "tries_left": _tries_left(view),
            "asleep": self.controller.asleep(),
            "max_copies": self.controller.config.session.max_copies,
            "auto_capture": self.controller.config.session.auto_capture,
            "idle": {
                "warning_s": self.controller.config.session.warning_s,
                "idle_s": self.controller.config.session.idle_s,
            },
        }
        return self.templates.TemplateResponse(
            request, f"{view.step.value}.html", context
        )

    async def action(self, request: Request, name: str) -> Response:
        """Do one action, then show whatever step the visit is at."""
        form = {key: str(value) for key, value in (await request.form()).items()}
        await run_in_threadpool(self._do, name, form)
        return RedirectResponse("/", status_code=303)

    def _do(self, name: str, form: dict[str, str]) -> None:
        controller = self.controller
        step = form.get("step", "")
        controller.touch()
        self.speaker.stop()
        handler = ACTIONS.get(name)
        if handler is not None:
            handler(controller, step)
        elif name == "finish":
            controller.finish()
        elif name in ("cancel", "timeout"):
            controller.cancel()
        elif name == "wake":
            logger.debug("the attract screen was touched")
        elif name in ("text_large", "text_normal"):
            controller.set_large_text(name == "text_large")
        elif name == "call_staff":
            controller.call_staff()
        elif name.startswith("lang_"):
            controller.set_language(name[5:])
        elif name in ("speech_on", "speech_off"):
            controller.set_speech(name == "speech_on")
        elif name in ("louder", "quieter"):
            controller.set_speech(True, 1 if name == "louder" else -1)
        elif name.startswith("change_"):
            controller.change(step, name[7:])
        elif name.startswith("delete_") and name[7:].isdigit():
            controller.delete_page(step, int(name[7:]))
        elif name == "review":
            controller.save_review(step, form)
        else:
            raise HTTPException(404, f"no action {name!r}")

    def _storage_failed(self, request: Request, exc: Exception) -> Response:
        """Say plainly that the kiosk cannot save, and offer staff."""
        logger.error("the kiosk store failed: %s", exc)
        language = self.controller.view().data.get("language", "vi")
        message = text("storage_full", language)
        page = (
            f'<!DOCTYPE html><html lang="{language}"><head><meta charset="utf-8">'
            f'<title>{message}</title><link rel="stylesheet" href="/static/kiosk.css">'
            f'</head><body><main><h1>{message}</h1><form method="post" '
            f'action="/action/call_staff"><button class="staff">'
            f"{text('call_staff', language)}</button></form></main></body></html>"
        )
        return HTMLResponse(page, status_code=503)

    def state(self) -> JSONResponse:
        """Tell the page the step, the idle warning and the link state."""
        expired = self.controller.expire_if_idle()
        view = self.controller.view()
        left = self.controller.seconds_left()
        return JSONResponse(
            {
                "step": view.step.value,
                "warning": self.controller.warning_due(),
                "seconds_left": None if left is None else round(left),
                "expired": expired,
                "speech": bool(view.data.get("speech")),
                "large_text": bool(view.data.get("large_text")),
                "asleep": self.controller.asleep(),
            }
        )

    def touch(self) -> JSONResponse:
        """Keep the session alive."""
        self.controller.touch()
        return JSONResponse({"ok": True})

    def speak(self, idle: bool = False) -> JSONResponse:
        """Read the screen aloud in speech mode; the idle warning always."""
        view = self.controller.view()
        language = view.data.get("language", "vi")
        volume = VOLUMES[int(view.data.get("volume", 2))]
        if idle:
            seconds = int(self.controller.seconds_left() or 0)
            warning = " ".join(
                (text("idle_title", language), text("idle_body", language, s=seconds))
            )
            self.speaker.say(warning, language, volume)
            return JSONResponse({"spoken": True})
        if not view.data.get("speech"):
            return JSONResponse({"spoken": False})
        self.speaker.say(speech_text(view), language, volume)
        return JSONResponse({"spoken": True})

    def feedback(self) -> JSONResponse:
        """Judge the document camera's latest frame for the live message."""
        camera = self.cameras.get("document")
        view = self.controller.view()
        language = view.data.get("language", "vi")
        frame = camera.latest_frame() if camera is not None else None
        if frame is None or view.step is not Step.CAPTURE:
            return JSONResponse({"codes": [], "message": ""})
        codes = assess(frame.image)
        message = text(codes[0], language) if codes else text("good_frame", language)
        return JSONResponse({"codes": codes, "message": message})

    def camera(self, name: str) -> StreamingResponse:
        """Stream a camera's preview as MJPEG."""
        camera = self.cameras.get(name)
        if camera is None:
            raise HTTPException(404, "no such camera")
        return StreamingResponse(
            _mjpeg(camera),
            media_type=f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}",
        )

    def page_image(self, position: int) -> Response:
        """Return one captured page of the current session."""
        for page in self.controller.view().pages:
            if page.position == position:
                return Response(page.jpeg, media_type="image/jpeg")
        raise HTTPException(404, "no such page")

    def _offline(self, view: View) -> bool:
        if view.step is not Step.WAITING or view.data.get("acked"):
            return False
        submitted = float(view.data.get("submitted_at", time.time()))
        return not self.online() or (time.time() - submitted > self.offline_after_s)


def _mjpeg(camera: Camera) -> Iterator[bytes]:
    try:
        yield from camera.mjpeg(quality=60, timeout=3.0)
    except DriverError as exc:
        logger.debug("preview stream ended: %s", exc)


def _document_labels(language: str) -> dict[str, str]:
    names = {
        "birth_certificate": ("Giấy khai sinh", "Birth certificate"),
        "diploma": ("Bằng tốt nghiệp", "Diploma"),
        "residence_confirmation": ("Giấy xác nhận cư trú", "Residence confirmation"),
        "marriage_certificate": ("Giấy chứng nhận kết hôn", "Marriage certificate"),
        "transcript": ("Bảng điểm", "Transcript"),
        "land_use_certificate": ("Sổ đỏ (quyền sử dụng đất)", "Land use certificate"),
        "citizen_id_card": ("Căn cước công dân", "Citizen ID card"),
        "other": ("Giấy tờ khác", "Other document"),
    }
    return {
        key: pair[1] if language == "en" else pair[0] for key, pair in names.items()
    }


def _field_label(name: str, language: str) -> str:
    return text(f"field_{name}", language)


def _shown_value(value: str, name: str) -> str:
    """Return a read field as the citizen writes it (dates as DD/MM/YYYY)."""
    if name in ("date_of_birth", "issue_date"):
        year, _, rest = value.partition("-")
        month, _, day = rest.partition("-")
        if year.isdigit() and month.isdigit() and day.isdigit():
            return f"{day}/{month}/{year}"
    return value
