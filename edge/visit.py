"""One citizen's visit as a state machine persisted in SQLite.

Every action names the step it was pressed on; an action from another step
(a double tap, a touch during a transition, a stale page) changes nothing.
Each step's answers are written before the screen moves on. After a crash
:meth:`VisitController.recover` resumes a submitted session still waiting
for its decision and wipes anything else, so the next citizen never sees
half a session; the face reference lives only in memory and dies with the
process.
"""

from __future__ import annotations

import enum
import logging
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from drivers.camera import Camera, Frame
from drivers.errors import DriverError
from edge.capture import shoot_page
from edge.config import AgentConfig
from edge.errors import IdentityError, StorageError
from edge.events import EventSink, VisitEvents, no_events
from edge.face import FaceChecker, FaceReference, pick_challenge
from edge.fees import visit_fee
from edge.identity import read_id_card
from edge.printing import CopyPrinter
from edge.reading import DocumentReader, combine
from edge.speech import DEFAULT_VOLUME
from edge.store import AgentStore, StoredPage
from kiosk.memory import give_back_free_memory
from models.id_card import IdCard
from protocol.envelope import new_message
from protocol.requests import (
    CertificationRequest,
    Delivery,
    FaceResult,
    LivenessResult,
    RequestAck,
)

logger = logging.getLogger(__name__)

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
RESUME_WINDOW_S = 300.0
FACE_FRAMES_MAX = 300  # a bound on one try's frames whatever the camera's rate
DOCUMENT_TYPES = (
    "birth_certificate",
    "diploma",
    "residence_confirmation",
    "marriage_certificate",
    "transcript",
    "land_use_certificate",
    "citizen_id_card",
    "other",
)


class Step(enum.StrEnum):
    """The screens of a visit, in order."""

    WELCOME = "welcome"
    IDENTIFY = "identify"
    FACE = "face"
    STAFF = "staff"
    CAPTURE = "capture"
    PAGE = "page"
    REVIEW = "review"
    CONFIRM = "confirm"
    WAITING = "waiting"
    PRINTING = "printing"
    APPROVED = "approved"
    REJECTED = "rejected"


NOT_IDLE = {Step.WELCOME, Step.WAITING, Step.PRINTING}
BACK = {
    Step.IDENTIFY: Step.WELCOME,
    Step.FACE: Step.IDENTIFY,
    Step.CAPTURE: Step.FACE,
    Step.PAGE: Step.CAPTURE,
    Step.REVIEW: Step.CAPTURE,
    Step.CONFIRM: Step.REVIEW,
}
SCENES = {Step.IDENTIFY: "card", Step.CAPTURE: "pages", Step.PAGE: "pages"}


@dataclass
class View:
    """What the screen shows: the step, the answers and the pages."""

    step: Step
    data: dict[str, Any]
    pages: list[StoredPage] = field(default_factory=list)


@dataclass(frozen=True)
class Devices:
    """What the visit uses of the kiosk's devices."""

    document_camera: Camera
    face_camera: Camera
    show_scene: Callable[[str, str], None] = lambda camera, scene: None


class VisitController:
    """Run the visit: one citizen at a time, every step persisted."""

    def __init__(
        self,
        config: AgentConfig,
        store: AgentStore,
        devices: Devices,
        faces: FaceChecker,
        printer: CopyPrinter,
        notify_outbox: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        reader: DocumentReader | None = None,
        events: EventSink = no_events,
    ) -> None:
        self.config = config
        self.store = store
        self.devices = devices
        self.faces = faces
        self.printer = printer
        self.notify_outbox = notify_outbox
        self.clock = clock
        self.reader = reader
        self.events = VisitEvents(events)
        self._lock = threading.RLock()
        self._reference: FaceReference | None = None
        self._card: IdCard | None = None  # in memory only, like the reference
        self._headphones = False  # the jack's state outlives the visits
        self._last_touch = clock()
        self._session_id = ""
        self._step = Step.WELCOME
        self._data: dict[str, Any] = self._fresh_data("vi")

    # ----- reading and persistence

    def view(self) -> View:
        """Return the current screen's content."""
        with self._lock:
            pages = self.store.pages(self._session_id) if self._session_id else []
            return View(self._step, dict(self._data), pages)

    @property
    def step(self) -> Step:
        """The current step."""
        return self._step

    def _fresh_data(self, language: str) -> dict[str, Any]:
        headphones = self._headphones
        return {
            "language": language,
            "speech": headphones,
            "headphones": headphones,
            "large_text": False,
            "volume": DEFAULT_VOLUME,
            "errors": {},
            "face_tries": 0,
        }

    def _save(self) -> None:
        self.store.save_session(self._session_id, self._step.value, self._data)
        self._show_scene()

    def _go(self, step: Step) -> None:
        previous, self._step = self._step, step
        self._data["errors"] = {}
        self._save()
        if previous is not step:
            self.events.emit("visit_step", step=step.value, from_step=previous.value)

    def _show_scene(self) -> None:
        scene = SCENES.get(self._step, "idle")
        self.devices.show_scene("document", scene)
        self.devices.show_scene("face", "face" if self._step is Step.FACE else "idle")

    def recover(self) -> None:
        """Resume a submitted session still waiting; wipe any other."""
        with self._lock:
            row = self.store.load_session()
            if row is None:
                return
            fresh = time.time() - row.updated_at < RESUME_WINDOW_S
            if row.step == Step.WAITING.value and fresh:
                self._session_id = row.session_id
                self._step = Step.WAITING
                self._data = row.data
                logger.info(
                    "resumed session %s waiting for its decision", row.session_id
                )
                entry = self.store.entry(str(row.data.get("request_id")))
                if entry is not None and entry.decision is not None:
                    self._apply_decision(entry.decision)
                return
            logger.info(
                "ended the interrupted session %s at %s", row.session_id, row.step
            )
            self.events.start(row.session_id)
            self.events.emit("visit_finished", outcome="interrupted", step=row.step)
            self._wipe()

    # ----- session-wide actions

    def touch(self) -> None:
        """Note that the citizen is there."""
        self._last_touch = self.clock()

    def seconds_left(self) -> float | None:
        """Return the seconds before the session is wiped, None when not idle."""
        if self._step in NOT_IDLE:
            return None
        idle = self.clock() - self._last_touch
        limit = self.config.session.idle_s + self.config.session.warning_s
        return max(0.0, limit - idle)

    def warning_due(self) -> bool:
        """Tell whether the idle warning should be on screen."""
        left = self.seconds_left()
        return left is not None and left <= self.config.session.warning_s

    def expire_if_idle(self) -> bool:
        """Wipe the session when its idle time ran out; True when it did."""
        with self._lock:
            left = self.seconds_left()
            if left is None or left > 0:
                return False
            logger.info("session timed out at %s", self._step)
            self._end("timed_out")
            return True

    def set_language(self, language: str) -> None:
        """Switch the language; progress is kept."""
        with self._lock:
            self.touch()
            if language in ("vi", "en"):
                self._data["language"] = language
                if self._session_id:
                    self._save()

    def set_speech(self, on: bool, volume_step: int = 0) -> None:
        """Turn speech mode on or off and change the volume."""
        with self._lock:
            self.touch()
            self._data["speech"] = on
            volume = int(self._data.get("volume", DEFAULT_VOLUME)) + volume_step
            self._data["volume"] = max(0, min(4, volume))
            if self._session_id:
                self._save()

    def set_large_text(self, on: bool) -> None:
        """Turn large text on or off for the rest of the visit."""
        with self._lock:
            self.touch()
            self._data["large_text"] = on
            if self._session_id:
                self._save()

    def set_headphones(self, plugged: bool) -> None:
        """Headphones in: speech mode on; out: speech mode off."""
        with self._lock:
            if plugged == self._headphones:
                return
            self._headphones = plugged
            self._data["headphones"] = plugged
            logger.info("headphones %s", "plugged in" if plugged else "unplugged")
            self._data["speech"] = plugged
            if self._session_id:
                self._save()

    def asleep(self) -> bool:
        """Tell whether the welcome screen has been alone long enough to attract."""
        if self._step is not Step.WELCOME:
            return False
        return self.clock() - self._last_touch >= self.config.screen.attract_after_s

    def call_staff(self) -> None:
        """Ask for staff; the screen says someone is coming."""
        with self._lock:
            self._data["staff_called"] = True
            logger.info("citizen asked for staff at step %s", self._step)
            if self._session_id:
                self._save()

    def cancel(self) -> None:
        """End the visit and wipe everything about the citizen."""
        with self._lock:
            if self._step in (Step.WAITING, Step.PRINTING):
                # The request stays in the outbox: the copy goes digitally.
                logger.info("citizen left while step %s", self._step)
            self._end("cancelled")

    def finish(self) -> None:
        """End the visit after its result."""
        with self._lock:
            done = self._step in (Step.APPROVED, Step.REJECTED)
            self._end("done" if done else "cancelled")

    def _end(self, outcome: str) -> None:
        if self._session_id:
            self.events.emit("visit_finished", outcome=outcome, step=self._step.value)
        self._wipe()

    def back(self, step: str) -> None:
        """Go back one screen."""
        with self._lock:
            if step == self._step.value and self._step in BACK:
                self.touch()
                self._go(BACK[self._step])

    def _wipe(self) -> None:
        self.store.wipe_session()
        self._reference = None
        self._card = None
        language = "vi"
        self._session_id = ""
        self._step = Step.WELCOME
        self._data = self._fresh_data(language)
        self._show_scene()
        # the visit's frames, pages and inference buffers are free now
        give_back_free_memory()

    # ----- the steps

    def begin(self, step: str) -> None:
        """Agree and start: a new session at the ID card step."""
        with self._lock:
            if step != Step.WELCOME.value or self._step is not Step.WELCOME:
                return
            self.touch()
            if not self._room_for_a_visit():
                self._data["errors"] = {"start": "disk_full"}
                return
            self._session_id = uuid.uuid4().hex
            self.events.start(self._session_id)
            self.events.emit("visit_started")
            self._go(Step.IDENTIFY)

    def read_card(self, step: str) -> None:
        """Read the ID card under the document camera."""
        with self._lock:
            if not self._at(step, Step.IDENTIFY):
                return
            try:
                image = self.devices.document_camera.capture_still().image
                reading = read_id_card(image, self.faces)
            except IdentityError as exc:
                self._error("card", str(exc))
                return
            except DriverError:
                self._error("card", "card_unreadable")
                return
            card = reading.card
            self._reference = reading.reference
            self._card = card
            self._data["card"] = {
                "name": card.full_name,
                "masked_id": card.masked_id_number,
                "born": card.date_of_birth.isoformat(),
                "consistent": card.consistent,
            }
            self._data["face_tries"] = 0
            self._data["challenge"] = pick_challenge()
            self._go(Step.FACE)

    def check_face(self, step: str) -> None:
        """Compare live frames with the card's portrait; three tries."""
        with self._lock:
            if not self._at(step, Step.FACE) or self._reference is None:
                if self._step is Step.FACE and self._reference is None:
                    self._go(Step.IDENTIFY)
                return
            outcome = self.faces.check(
                self._reference, self._face_frames(), str(self._data.get("challenge"))
            )
            tries = int(self._data.get("face_tries", 0)) + 1
            self._data["face_tries"] = tries
            self._data["face"] = {
                "matched": outcome.matched,
                "live": outcome.live,
                "score": outcome.score,
            }
            logger.info(
                "face try %s: matched %s, live %s", tries, outcome.matched, outcome.live
            )
            self.events.emit(
                "face_checked",
                **{"try": tries},
                matched=outcome.matched,
                live=outcome.live,
                score=outcome.score,
                reason=outcome.reason,
            )
            if outcome.matched and outcome.live:
                self._reference = None
                self._go(Step.CAPTURE)
            elif tries >= self.config.session.face_tries:
                self._reference = None
                self._go(Step.STAFF)
            else:
                self._data["challenge"] = pick_challenge()
                self._error("face", outcome.reason or "face_failed")

    def staff_checked(self, step: str) -> None:
        """Continue after staff checked the citizen in person."""
        with self._lock:
            if self._at(step, Step.STAFF):
                self._data["staff_checked"] = True
                self._go(Step.CAPTURE)

    def take_page(self, step: str) -> None:
        """Capture a page and show it large."""
        with self._lock:
            if not self._at(step, Step.CAPTURE):
                return
            count = len(self.store.pages(self._session_id))
            if count >= self.config.session.max_pages:
                self._error("pages", "too_many_pages")
                return
            try:
                image = self.devices.document_camera.capture_still().image
            except DriverError:
                self._error("pages", "no_document")
                return
            shot = shoot_page(image)
            page = StoredPage(count + 1, shot.sha256, shot.jpeg, shot.findings)
            if self.reader is not None:
                reading = self.reader.read(image, self._card)
                readings = self._data.setdefault("readings", {})
                readings[shot.sha256] = reading.as_data()
            self.store.add_page(self._session_id, page)
            self._data["page"] = count + 1
            self._go(Step.PAGE)

    def use_page(self, step: str) -> None:
        """Keep the page just taken."""
        with self._lock:
            if self._at(step, Step.PAGE):
                self._go(Step.CAPTURE)

    def retake_page(self, step: str) -> None:
        """Drop the page just taken and go back to the camera."""
        with self._lock:
            if self._at(step, Step.PAGE):
                self.store.delete_page(self._session_id, int(self._data["page"]))
                self._go(Step.CAPTURE)

    def delete_page(self, step: str, position: int) -> None:
        """Delete one of the pages taken."""
        with self._lock:
            if self._at(step, Step.CAPTURE):
                self.store.delete_page(self._session_id, position)
                self._save()

    def pages_done(self, step: str) -> None:
        """Move on to the review once at least one page is taken."""
        with self._lock:
            if not self._at(step, Step.CAPTURE):
                return
            pages = self.store.pages(self._session_id)
            if not pages:
                self._error("pages", "no_pages")
                return
            self._read_document(pages)
            self._go(Step.REVIEW)

    def _read_document(self, pages: list[StoredPage]) -> None:
        if self.reader is None:
            return
        readings = self._data.get("readings", {})
        kept = {p.sha256: readings[p.sha256] for p in pages if p.sha256 in readings}
        self._data["readings"] = kept
        document = combine([kept[p.sha256] for p in pages if p.sha256 in kept])
        document["unreadable"] = [
            p.position for p in pages if not kept.get(p.sha256, {}).get("readable")
        ]
        self._data["document"] = document
        review = self._data.setdefault("review", {})
        if not review.get("document_type") and document["document_type"]:
            review["document_type"] = document["document_type"]

    def save_review(self, step: str, form: dict[str, str]) -> None:
        """Check the review form; show errors or the check-your-answers screen."""
        with self._lock:
            if not self._at(step, Step.REVIEW):
                return
            review, errors = self._read_review(form)
            self._data["review"] = review
            if errors:
                self._data["errors"] = errors
                self._save()
                return
            pages = len(self.store.pages(self._session_id))
            self._data["fee_vnd"] = visit_fee(pages, review["copies"], self.config.fees)
            self._go(Step.CONFIRM)

    def change(self, step: str, what: str) -> None:
        """Go from the check-your-answers screen to the step that sets ``what``."""
        with self._lock:
            if self._at(step, Step.CONFIRM):
                self._go(Step.CAPTURE if what == "pages" else Step.REVIEW)

    def submit(self, step: str) -> None:
        """Put the request in the outbox; from now on it cannot be lost."""
        with self._lock:
            if not self._at(step, Step.CONFIRM):
                return
            request_id = str(self._data.setdefault("request_id", uuid.uuid4().hex))
            pages = self.store.pages(self._session_id)
            self._data["page_count"] = len(pages)
            self._data["errors"] = {}
            try:
                seq = self.store.submit(
                    self._session_id,
                    request_id,
                    lambda seq: self._request(seq, request_id, pages).model_dump_json(),
                    Step.WAITING.value,
                    {**self._data, "submitted_at": time.time()},
                )
            except StorageError:
                self._error("submit", "storage_full")
                return
            self._data["submitted_at"] = time.time()
            self._step = Step.WAITING
            self._show_scene()
            logger.info("request %s queued as number %s", request_id, seq)
            self.events.emit(
                "request_submitted",
                request_id=request_id,
                sequence=seq,
                pages=len(pages),
                copies=int(self._data["review"]["copies"]),
            )
            self.events.emit("visit_step", step=Step.WAITING.value, from_step="confirm")
        self.notify_outbox()

    # ----- the office's answers

    def on_ack(self, ack: RequestAck) -> None:
        """Show the place in the queue once the office has the request."""
        with self._lock:
            if self._data.get("request_id") == ack.request_id:
                self._data["queue_position"] = ack.queue_position
                self._data["acked"] = True
                if ack.accepted is False:
                    self._data["refused"] = ack.reason
                self._save()

    def on_decision(self, decision: dict[str, Any]) -> None:
        """Print an approved copy for the waiting citizen, or show the reason."""
        with self._lock:
            if self._step is not Step.WAITING:
                return
            if self._data.get("request_id") != decision.get("request_id"):
                return
            self._apply_decision(decision)

    def _apply_decision(self, decision: dict[str, Any]) -> None:
        self._data["decision"] = decision
        if not decision.get("approved"):
            self._go(Step.REJECTED)
            return
        self._go(Step.PRINTING)
        threading.Thread(
            target=self._print, args=(decision,), name="print-copy", daemon=True
        ).start()

    def _print(self, decision: dict[str, Any]) -> None:
        request_id = str(decision["request_id"])
        copies = int(self._data.get("review", {}).get("copies", 1))
        if not self.store.mark_printed(request_id):
            logger.warning("copy of request %s was already printed", request_id)
            error: str | None = "print_failed"
        else:
            error = self.printer.print_copy(decision, copies)
        with self._lock:
            if error is None:
                self.events.emit("copy_printed", request_id=request_id, copies=copies)
            else:
                self.events.emit("print_failed", request_id=request_id, reason=error)
            if self._data.get("request_id") != request_id:
                return
            self._data["print_error"] = error
            self.touch()
            self._go(Step.APPROVED)

    # ----- helpers

    def _room_for_a_visit(self) -> bool:
        """Tell whether the disk has room for a new visit's pages."""
        where = self.config.data_dir.absolute()
        while not where.exists() and where != where.parent:
            where = where.parent  # not made yet: its disk is the parent's
        try:
            free = shutil.disk_usage(where).free
        except OSError as exc:
            logger.error("the free disk space cannot be read: %s", exc)
            return False
        if free >= self.config.session.min_free_mb * 1_000_000:
            return True
        logger.error(
            "only %s MB free under %s (%s MB needed): no new visits; free some "
            "space, submitted requests are kept",
            free // 1_000_000,
            self.config.data_dir,
            self.config.session.min_free_mb,
        )
        return False

    def _at(self, step: str, expected: Step) -> bool:
        self.touch()
        return step == expected.value and self._step is expected

    def _error(self, where: str, code: str) -> None:
        self._data["errors"] = {where: code}
        self._save()

    def _face_frames(self) -> Iterator[Frame]:
        """Yield the face camera's new frames until the checker has enough."""
        camera = self.devices.face_camera
        sequence = -1
        for _ in range(FACE_FRAMES_MAX):
            try:
                frame = camera.next_frame(sequence, timeout=2.0)
            except DriverError:
                return
            sequence = frame.sequence
            yield frame

    def _read_review(
        self, form: dict[str, str]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        errors: dict[str, str] = {}
        document_type = form.get("document_type", "")
        if document_type not in DOCUMENT_TYPES:
            errors["document_type"] = "err_document_type"
        try:
            copies = int(form.get("copies", "1"))
        except ValueError:
            copies = 0
        if not 1 <= copies <= self.config.session.max_copies:
            errors["copies"] = "err_copies"
        delivery = form.get("delivery", "")
        email = form.get("email", "").strip()
        if delivery not in ("email", "wallet"):
            errors["delivery"] = "err_delivery"
        elif delivery == "email" and not EMAIL.match(email):
            errors["email"] = "err_email"
        review = {
            "document_type": document_type,
            "copies": copies if copies > 0 else 1,
            "delivery": delivery,
            "email": email if delivery == "email" else "",
        }
        return review, errors

    def _request(
        self, seq: int, request_id: str, pages: list[StoredPage]
    ) -> CertificationRequest:
        data = self._data
        card = data.get("card", {})
        face = data.get("face", {})
        review = data["review"]
        findings = sorted({code for page in pages for code in page.findings})
        document = data.get("document", {})
        mismatches = [] if card.get("consistent", True) else ["id_card"]
        mismatches += list(document.get("mismatches", []))
        findings += [f"unreadable_page_{n}" for n in document.get("unreadable", [])]
        return new_message(
            CertificationRequest,
            request_id=request_id,
            kiosk_id=self.config.kiosk_id,
            sequence=seq,
            office_code=self.config.office_code,
            document_type=review["document_type"],
            citizen_name=card.get("name", "?"),
            citizen_id_masked=card.get("masked_id", ""),
            page_sha256=[page.sha256 for page in pages],
            fields={
                name: str(value["value"])
                for name, value in document.get("fields", {}).items()
            },
            face=FaceResult(
                matched=bool(face.get("matched")),
                score=float(face.get("score", 0.0)),
                tries=int(data.get("face_tries", 0)),
                staff_checked=bool(data.get("staff_checked")),
            ),
            liveness=LivenessResult(
                passed=bool(face.get("live")),
                challenge=str(data.get("challenge", "")),
            ),
            quality=findings,
            mismatches=mismatches,
            fee_vnd=int(data.get("fee_vnd", 0)),
            delivery=Delivery(
                email=review["email"] or None,
                wallet=review["delivery"] == "wallet",
                copies=review["copies"],
            ),
            language=data.get("language", "vi"),
        )
