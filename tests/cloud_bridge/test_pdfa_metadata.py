"""The PDF/A-2b declaration written from a template."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone

import pikepdf
import pikepdf.pdfa
import pytest

from cloud_bridge.pdfa_metadata import DocumentInfo, declare_pdfa

HANOI = timezone(timedelta(hours=7))


def info(created: datetime) -> DocumentInfo:
    return DocumentInfo(
        title="Bản sao chứng thực ABCD",
        author="Ủy ban nhân dân",
        subject="Giấy khai sinh",
        producer="ttpvhcc-kiosk",
        created=created,
    )


def test_a_declared_document_passes_and_its_dates_agree() -> None:
    out = io.BytesIO()
    with pikepdf.new() as pdf:
        pdf.add_blank_page()
        declare_pdfa(pdf, info(datetime(2026, 12, 4, 9, 30, 5, 123, tzinfo=HANOI)))
        pdf.save(out, **pikepdf.pdfa.resolve_save_kwargs("2b", min_version="1.7"))
    assert pikepdf.pdfa.validate_written(io.BytesIO(out.getvalue()), "2b").passed
    with pikepdf.open(io.BytesIO(out.getvalue())) as pdf:
        meta = pdf.open_metadata()
        assert meta["xmp:CreateDate"] == "2026-12-04T09:30:05+07:00"
        assert str(pdf.docinfo.CreationDate) == "D:20261204093005+07'00'"
        assert meta["dc:title"] == "Bản sao chứng thực ABCD"
        assert (meta["pdfaid:part"], meta["pdfaid:conformance"]) == ("2", "B")


def test_a_time_without_its_zone_is_refused() -> None:
    with pikepdf.new() as pdf, pytest.raises(ValueError, match="time zone"):
        declare_pdfa(pdf, info(datetime(2026, 12, 4, 9, 30)))


def test_each_document_gets_its_own_output_intent() -> None:
    moment = datetime.now(UTC)
    with pikepdf.new() as first, pikepdf.new() as second:
        declare_pdfa(first, info(moment))
        declare_pdfa(second, info(moment))
        profiles = [
            pdf.Root.OutputIntents[0].DestOutputProfile.read_bytes()
            for pdf in (first, second)
        ]
    assert profiles[0] == profiles[1] and len(profiles[0]) > 1000
