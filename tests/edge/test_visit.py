"""The visit's state machine on simulated cameras, without the office."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edge.visit import Step
from tests.edge.conftest import Rig

REVIEW = {
    "document_type": "birth_certificate",
    "copies": "2",
    "delivery": "email",
    "email": "an@example.vn",
}


def current_step(controller: Any) -> Step:
    """Return the step now (a call, so the type checker does not narrow it)."""
    step: Step = controller.step
    return step


def walk_to_confirm(rig: Rig, pages: int = 2) -> None:
    """Drive a visit from the welcome screen to check-your-answers."""
    c = rig.controller
    c.begin("welcome")
    c.read_card("identify")
    assert c.step is Step.FACE, c.view().data
    c.check_face("face")
    assert current_step(c) is Step.CAPTURE, c.view().data
    for _ in range(pages):
        c.take_page("capture")
        assert current_step(c) is Step.PAGE
        c.use_page("page")
    c.pages_done("capture")
    c.save_review("review", REVIEW)
    assert current_step(c) is Step.CONFIRM, c.view().data["errors"]


def test_whole_visit_puts_one_request_in_the_outbox(rig: Rig) -> None:
    walk_to_confirm(rig, pages=3)
    view = rig.controller.view()
    assert view.data["fee_vnd"] == 2 * (2000 + 2000 + 1000)
    assert view.data["card"]["masked_id"] == "001******345"
    rig.controller.submit("confirm")
    rig.controller.submit("confirm")
    rig.controller.submit("waiting")

    entries = rig.store.entries()
    assert len(entries) == 1
    payload = json.loads(entries[0].payload)
    assert payload["sequence"] == 1
    assert len(payload["page_sha256"]) == 3
    assert payload["citizen_id_masked"] == "001******345"
    assert "001092012345" not in entries[0].payload
    assert payload["face"]["matched"] and payload["liveness"]["passed"]
    assert payload["delivery"] == {
        "email": "an@example.vn",
        "wallet": False,
        "copies": 2,
    }
    assert len(rig.store.outbox_pages(entries[0].request_id)) == 3
    assert rig.controller.step is Step.WAITING


def test_review_errors_are_listed_and_progress_kept_across_languages(rig: Rig) -> None:
    walk_to_confirm(rig)
    c = rig.controller
    c.change("confirm", "delivery")
    c.set_language("en")
    c.save_review("review", {"document_type": "", "copies": "9", "delivery": "email"})
    view = c.view()
    assert view.step is Step.REVIEW
    assert view.data["language"] == "en"
    assert set(view.data["errors"]) == {"document_type", "copies", "email"}
    assert len(view.pages) == 2


def test_stale_and_double_actions_change_nothing(rig: Rig) -> None:
    c = rig.controller
    c.begin("welcome")
    c.begin("welcome")
    c.take_page("capture")
    assert c.step is Step.IDENTIFY
    assert rig.store.pages(c.view().data.get("x", "")) == []


def test_card_without_face_and_foreign_qr_are_refused(rig: Rig, tmp_path: Path) -> None:
    from edge.simulation import draw_id_card

    c = rig.controller
    c.begin("welcome")
    draw_id_card(with_face=False).save(rig.media["card"] / "card.png")
    rig.scenes["document"]._players["card"]._cache.clear()
    c.read_card("identify")
    assert c.view().data["errors"] == {"card": "card_no_face"}
    draw_id_card("https://example.vn/not-a-card").save(rig.media["card"] / "card.png")
    rig.scenes["document"]._players["card"]._cache.clear()
    c.read_card("identify")
    assert c.view().data["errors"] == {"card": "card_not_citizen_id"}
    assert c.step is Step.IDENTIFY


def test_three_failed_face_checks_hand_over_to_staff(rig: Rig) -> None:
    c = rig.controller
    c.begin("welcome")
    c.read_card("identify")
    rig.scenes["face"].show("idle")
    rig.controller.devices = rig.controller.devices.__class__(
        rig.cameras["document"], rig.cameras["face"], lambda camera, scene: None
    )
    for _attempt in range(3):
        c.check_face("face")
    assert c.step is Step.STAFF
    c.staff_checked("staff")
    assert current_step(c) is Step.CAPTURE
    assert c.view().data["staff_checked"] is True


def test_restart_wipes_an_unsubmitted_session(rig: Rig) -> None:
    c = rig.controller
    c.begin("welcome")
    c.read_card("identify")
    c.check_face("face")
    c.take_page("capture")
    again = rig.make_controller()
    again.recover()
    assert again.step is Step.WELCOME
    assert rig.store.load_session() is None
    assert again.view().pages == []


def test_restart_resumes_a_submitted_session(rig: Rig) -> None:
    walk_to_confirm(rig)
    rig.controller.submit("confirm")
    again = rig.make_controller()
    again.recover()
    assert again.step is Step.WAITING
    assert len(rig.store.entries()) == 1


def test_idle_session_is_wiped_but_waiting_is_not_idle(rig: Rig) -> None:
    now = [1000.0]
    c = rig.controller
    c.clock = lambda: now[0]
    c.touch()
    c.begin("welcome")
    now[0] += 61
    assert c.warning_due()
    left = c.seconds_left()
    assert left is not None and left >= 20
    c.touch()
    assert not c.warning_due()
    now[0] += 200
    assert c.expire_if_idle()
    assert c.step is Step.WELCOME and rig.store.load_session() is None
