"""Build sealed certified copies for tests, with a throwaway seal key."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from cloud_bridge.config import CopySection
from cloud_bridge.pages import Page, load_pages
from cloud_bridge.render import CopyContent
from protocol.identifier import new_access_code, new_copy_id
from protocol.seal import (
    SealClaims,
    certificate_kid,
    ecdsa_signer,
    encode_qr_payload,
    pages_digest,
    sign_seal,
)

ISSUE_DATE = date(2026, 12, 3)
OFFICE_CODE = "PHUONG-MAU"
LOOKUP_URL = "https://chungthuc.example.vn/c/"


def sealed_copy(
    sources: Sequence[bytes],
    key: ec.EllipticCurvePrivateKey,
    certificate: x509.Certificate,
) -> CopyContent:
    """Return the content of a copy of ``sources`` with a real seal."""
    pages: list[Page] = load_pages(sources, CopySection.model_validate({}))
    copy_id = new_copy_id()
    claims = SealClaims(
        copy_id=copy_id,
        certification_number=4321,
        book="01/SCT/BS",
        issue_date=ISSUE_DATE,
        office_code=OFFICE_CODE,
        document_type="birth_certificate",
        page_count=len(pages),
        pages_digest=pages_digest([page.image for page in pages]),
    )
    seal = sign_seal(claims, ecdsa_signer(key), certificate_kid(certificate))
    return CopyContent(
        copy_id=copy_id,
        access_code=new_access_code(),
        certification_number=claims.certification_number,
        book=claims.book,
        issue_date=ISSUE_DATE,
        office_name="Ủy ban nhân dân Phường Mẫu",
        officer_name="Nguyễn Thị Hương",
        officer_title="Công chức Tư pháp - Hộ tịch",
        document_type_label="Giấy khai sinh",
        pages=pages,
        qr_payload=encode_qr_payload(LOOKUP_URL, copy_id, seal),
        watermark="TTPVHCC",
        lookup_url=LOOKUP_URL + copy_id,
    )
