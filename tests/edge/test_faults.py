"""A full disk and a printer out of paper: clear outcomes, nothing lost."""

from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path

from PIL import Image

from drivers.document_printer import SimulatedDocumentPrinter
from edge.visit import Step
from tests.edge.conftest import Rig
from tests.edge.test_events import Recorder
from tests.edge.test_visit import walk_to_confirm


def one_page_pdf() -> bytes:
    """Return a small one-page PDF."""
    buffer = io.BytesIO()
    Image.new("RGB", (620, 877), "white").save(buffer, "PDF", resolution=75.0)
    return buffer.getvalue()


def test_full_disk_refuses_new_visits_and_keeps_submitted_ones(rig: Rig) -> None:
    walk_to_confirm(rig, pages=1)
    rig.controller.submit("confirm")
    before = rig.store.entries()
    assert len(before) == 1
    rig.controller.cancel()  # the citizen leaves; the request stays queued

    session = rig.config.session.model_copy(update={"min_free_mb": 10**6})
    rig.controller.config = rig.config.model_copy(update={"session": session})
    rig.controller.begin("welcome")
    view = rig.controller.view()
    assert view.step is Step.WELCOME
    assert view.data["errors"] == {"start": "disk_full"}
    assert rig.store.load_session() is None
    after = rig.store.entries()
    assert [(e.request_id, e.payload) for e in after] == [
        (e.request_id, e.payload) for e in before
    ]

    rig.controller.config = rig.config
    rig.controller.begin("welcome")
    assert rig.controller.step is Step.IDENTIFY


def test_a4_paper_out_is_told_and_reported(tmp_path: Path) -> None:
    pdf = one_page_pdf()
    rig = Rig(tmp_path, fetch=lambda digest: pdf)
    try:
        printer = rig.devices.document_printer
        assert isinstance(printer, SimulatedDocumentPrinter)
        printer.paper_out = True
        recorder = Recorder()
        rig.controller.events.sink = recorder
        walk_to_confirm(rig, pages=1)
        rig.controller.submit("confirm")
        request_id = rig.controller.view().data["request_id"]
        rig.controller.on_decision(
            {
                "request_id": request_id,
                "approved": True,
                "copy_id": "ABCD-EFGH-JKLM-NPQR",
                "access_code": "123456",
                "pdf_sha256": hashlib.sha256(pdf).hexdigest(),
            }
        )
        deadline = time.monotonic() + 10
        while rig.controller.step is not Step.APPROVED:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert rig.controller.view().data["print_error"] == "paper_out_a4"
        failed = [d for k, d in recorder.events if k == "print_failed"]
        assert failed == [
            {
                "visit": failed[0]["visit"],
                "n": failed[0]["n"],
                "request_id": request_id,
                "reason": "paper_out_a4",
            }
        ]
        assert not list((tmp_path / "printed").glob("*.pdf"))
    finally:
        rig.close()
