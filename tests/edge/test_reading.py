"""Page reading on the OCR models: generated pages, the review, the request."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from edge.reading import ModelDocumentReader, combine
from edge.simulation import SAMPLE_QR
from edge.speech import RecordingSpeaker
from edge.visit import Step
from edge.web.app import AgentUi
from models.id_card import parse_id_card_qr
from models.manifest import Manifest
from models.ocr.page import PageReader
from models.ocr.synthetic import available_fonts, camera_version, render_page
from tests.edge.conftest import Rig
from tests.edge.test_visit import REVIEW
from tests.models.conftest import manifest, model_dir  # noqa: F401


@pytest.fixture(scope="module")
def page_reader(manifest: Manifest, model_dir: Path) -> PageReader:  # noqa: F811
    """The OCR models on one thread."""
    return PageReader.from_manifest(manifest, model_dir, threads=1)


@pytest.fixture
def reader(page_reader: PageReader) -> ModelDocumentReader:
    """The kiosk's page reading with the default confidence floor."""
    return ModelDocumentReader(lambda: page_reader)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_generated_pages_give_their_type_and_fields(
    reader: ModelDocumentReader, seed: int
) -> None:
    clean = render_page(seed, available_fonts()[0])
    for page in (clean, camera_version(clean, seed)):
        reading = reader.read(np.ascontiguousarray(page.image[:, :, ::-1]), None)
        assert reading.readable, reading
        assert reading.document_type == clean.document_type
        name = reading.fields["full_name"]
        assert name.value.casefold() == clean.fields["full_name"].casefold()
        assert 0.0 < name.confidence <= 1.0
        if "id_number" in clean.fields:
            number = clean.fields["id_number"]
            assert (
                reading.fields["id_number"].value
                == number[:3] + "******" + (number[-3:])
            )
            assert number not in json.dumps(reading.as_data())


def test_blank_and_doubtful_pages_are_unreadable(
    reader: ModelDocumentReader, page_reader: PageReader
) -> None:
    blank = reader.read(np.full((960, 1280, 3), 250, np.uint8), None)
    assert not blank.readable and blank.document_type is None and not blank.fields
    page = render_page(1, available_fonts()[0])
    rgb = np.ascontiguousarray(page.image[:, :, ::-1])
    strict = ModelDocumentReader(lambda: page_reader, min_confidence=0.9999)
    assert reader.read(rgb, None).readable
    assert not strict.read(rgb, None).readable


def test_fields_are_compared_with_the_id_card(reader: ModelDocumentReader) -> None:
    card = parse_id_card_qr(SAMPLE_QR)
    page = render_page(1, available_fonts()[0])  # someone else's certificate
    reading = reader.read(np.ascontiguousarray(page.image[:, :, ::-1]), card)
    assert "full_name" in reading.mismatches
    merged = combine([reading.as_data(), {"fields": {}, "document_type": "diploma"}])
    assert merged["document_type"] == page.document_type
    assert merged["mismatches"] == sorted(reading.mismatches)


speaker = RecordingSpeaker()


def _rig_with_reader(rig: Rig, reader: ModelDocumentReader) -> TestClient:
    rig.controller = rig.make_controller()
    rig.controller.reader = reader
    ui = AgentUi(rig.controller, rig.cameras, speaker, lambda: True)
    return TestClient(ui.app)


def test_visit_shows_what_was_read_and_sends_masked_fields(
    rig: Rig, reader: ModelDocumentReader
) -> None:
    client = _rig_with_reader(rig, reader)
    c = rig.controller
    c.begin("welcome")
    c.read_card("identify")
    c.check_face("face")
    c.take_page("capture")
    assert c.step is Step.PAGE
    assert 'id="page-read"' in client.get("/").text
    c.use_page("page")
    c.pages_done("capture")
    document = c.view().data["document"]
    assert document["document_type"] == "birth_certificate"
    assert document["mismatches"] == [] and document["unreadable"] == []
    screen = client.get("/").text
    assert "NGUYỄN VĂN AN" in screen and "001******345" in screen
    assert "15/03/1992" in screen
    assert '<option value="birth_certificate" selected>' in screen
    c.save_review("review", REVIEW)
    c.submit("confirm")
    payload = json.loads(rig.store.entries()[0].payload)
    assert payload["fields"]["full_name"] == "NGUYỄN VĂN AN"
    assert payload["fields"]["id_number"] == "001******345"
    assert "001092012345" not in rig.store.entries()[0].payload
    assert payload["mismatches"] == []


def test_unreadable_page_asks_for_a_retake_and_tells_staff(
    rig: Rig, page_reader: PageReader
) -> None:
    client = _rig_with_reader(
        rig, ModelDocumentReader(lambda: page_reader, min_confidence=0.9999)
    )
    c = rig.controller
    c.begin("welcome")
    c.read_card("identify")
    c.check_face("face")
    c.take_page("capture")
    assert "cannot read this page" not in client.get("/").text  # Vietnamese first
    assert "Máy không đọc được trang này" in client.get("/").text
    client.post("/action/speech_on", data={"step": "page"})
    assert client.post("/api/speak").json() == {"spoken": True}
    assert "Máy không đọc được trang này" in speaker.spoken[-1][0]
    client.post("/action/lang_en", data={"step": "page"})
    assert "The kiosk cannot read this page. Please retake it." in client.get("/").text
    c.use_page("page")
    c.pages_done("capture")
    assert c.view().data["document"]["unreadable"] == [1]
    assert "Pages not read: 1. Staff will check them." in client.get("/").text
    c.save_review("review", REVIEW)
    c.submit("confirm")
    payload = json.loads(rig.store.entries()[0].payload)
    assert "unreadable_page_1" in payload["quality"]
