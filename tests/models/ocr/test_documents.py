"""Tests of the invented documents and their rendering."""

from __future__ import annotations

import random

import numpy as np

from models.id_card import check_id_number
from models.ocr.documents import DOCUMENT_TYPES, invent_document, invent_person
from models.ocr.lexicon import load_lexicon
from models.ocr.synthetic import available_fonts, camera_version, render_page


def test_people_have_structurally_valid_id_numbers() -> None:
    rng = random.Random(7)
    for _ in range(200):
        person = invent_person(rng)
        assert len(person.id_number) == 12
        problems = check_id_number(person.id_number, person.date_of_birth, person.sex)
        assert problems == []


def test_names_come_from_the_lists() -> None:
    lexicon = load_lexicon()
    rng = random.Random(3)
    for _ in range(50):
        family, *_, given = invent_person(rng).full_name.split()
        assert family in lexicon.names["family"]
        assert given in lexicon.names["given"]


def test_every_type_has_its_fields_in_its_lines() -> None:
    rng = random.Random(1)
    for document_type in DOCUMENT_TYPES:
        document = invent_document(rng, document_type)
        text = "\n".join(document.lines)
        assert document.fields["full_name"] in text
        assert document.fields["date_of_birth"][:4] in text
        if document.upper_name:
            assert document.fields["full_name"].isupper()


def test_camera_version_is_smaller_darker_and_keeps_the_truth() -> None:
    page = render_page(1, available_fonts()[0])
    camera = camera_version(page, 1)
    assert camera.image.shape[1] < page.image.shape[1]
    assert camera.image.mean() < page.image.mean()
    assert camera.lines == page.lines and camera.fields == page.fields
    assert camera.image.dtype == np.uint8
