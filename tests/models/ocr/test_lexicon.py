"""Tests of the closed sets of syllables and names."""

from __future__ import annotations

from models.ocr.lexicon import folded, load_lexicon, read_list, toneless


def test_keys_keep_or_drop_marks() -> None:
    assert toneless("HIẾU") == "hiêu"
    assert toneless("Đặng") == "đăng"
    assert folded("Đặng") == "dang"
    assert len(folded("Nguyễn")) == len("Nguyễn")


def test_lists_are_loaded_most_common_first() -> None:
    lexicon = load_lexicon()
    assert lexicon.names["family"][0] == "Nguyễn"
    assert len(lexicon.names["family"]) >= 50
    assert len(lexicon.names["given"]) >= 100
    assert lexicon.is_syllable("HƯƠNG")
    assert not lexicon.is_syllable("HIÊU")


def test_candidates_restore_marks_but_never_letters() -> None:
    lexicon = load_lexicon()
    assert lexicon.candidates("HIÊU", "given") == ("Hiếu",)
    assert "Hương" in lexicon.candidates("HUONG", "given")
    assert lexicon.candidates("HUONG", "given", loose=False)
    assert lexicon.candidates("HƯƠG", "given") == ()
    for candidate in lexicon.candidates("thanh"):
        assert folded(candidate) == "thanh"


def test_data_files_have_no_duplicates() -> None:
    for name in ("family_names.txt", "given_names_male.txt", "given_names_female.txt"):
        entries = read_list(name)
        assert len(entries) == len(set(entries)), name
