"""Messages of a certification request: the request, its receipt, the decision.

A kiosk publishes a :class:`CertificationRequest` on ``kiosk/<id>/requests``
after uploading its page images over HTTPS; the office answers on
``office/<id>/decisions`` with a :class:`RequestAck` once the request is
stored, and later with a :class:`Decision`. The request id is the
idempotency key: the same request sent twice is stored once and acknowledged
twice. Face images and full ID numbers never travel: only the masked number,
scores and results.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from protocol.envelope import Envelope, MessageError

REQUEST_ID = r"^[0-9a-f]{32}$"
SHA256 = r"^[0-9a-f]{64}$"


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FaceResult(_Part):
    """How the live face compared with the card's portrait."""

    matched: bool = Field(description="Whether the faces matched.")
    score: float = Field(ge=-1.0, le=1.0, description="Similarity score.")
    tries: int = Field(ge=0, le=10, description="Attempts the citizen needed.")
    staff_checked: bool = Field(
        False, description="Staff checked the citizen in person instead."
    )


class LivenessResult(_Part):
    """Whether the face in front of the camera was a live person."""

    passed: bool = Field(description="Whether every challenge was met.")
    challenge: str = Field(max_length=40, description="The challenge asked.")


class Delivery(_Part):
    """Where the signed copy goes, and how many paper copies print."""

    email: str | None = Field(None, max_length=254, description="Email address.")
    wallet: bool = Field(False, description="Send to the citizen's wallet app.")
    copies: int = Field(1, ge=1, le=10, description="Paper copies to print.")


class CertificationRequest(Envelope):
    """A kiosk's request that an officer certify the pages it scanned."""

    SCHEMA = "certification_request"
    VERSION = 1

    request_id: str = Field(pattern=REQUEST_ID, description="Idempotency key.")
    kiosk_id: str = Field(max_length=63, description="The sending kiosk.")
    sequence: int = Field(ge=1, description="The kiosk's outbox order.")
    office_code: str = Field(max_length=32, description="The certifying office.")
    document_type: str = Field(max_length=40, description="What the pages are.")
    citizen_name: str = Field(min_length=1, max_length=120)
    citizen_id_masked: str = Field(
        max_length=12, description="The ID number with its middle digits hidden."
    )
    page_sha256: list[str] = Field(
        min_length=1, max_length=200, description="Digests of the uploaded pages."
    )
    fields: dict[str, str] = Field(
        default_factory=dict, description="Fields read from the document."
    )
    face: FaceResult
    liveness: LivenessResult
    quality: list[str] = Field(
        default_factory=list, description="Capture findings the citizen accepted."
    )
    mismatches: list[str] = Field(
        default_factory=list, description="Fields that disagree with the ID card."
    )
    fee_vnd: int = Field(ge=0, le=10_000_000, description="The fee shown.")
    delivery: Delivery
    language: Literal["vi", "en"] = "vi"


class RequestAck(Envelope):
    """The office's receipt of a request: stored, or refused with a reason."""

    SCHEMA = "request_ack"
    VERSION = 1

    request_id: str = Field(pattern=REQUEST_ID)
    accepted: bool = Field(description="Whether the request was stored.")
    reason: str | None = Field(None, max_length=500, description="Why refused.")
    queue_position: int | None = Field(
        None, ge=0, description="Requests ahead of this one for the office."
    )


class Decision(Envelope):
    """The officer's decision; an approval carries what the kiosk prints."""

    SCHEMA = "decision"
    VERSION = 1

    request_id: str = Field(pattern=REQUEST_ID)
    approved: bool
    reason: str | None = Field(None, max_length=500, description="Why rejected.")
    copy_id: str | None = Field(None, max_length=40)
    access_code: str | None = Field(None, max_length=40)
    lookup_url: str | None = Field(None, max_length=300)
    pdf_sha256: str | None = Field(None, pattern=SHA256)


def schema_of(payload: bytes) -> str:
    """Return a message's schema name, so a receiver picks the parser.

    Raises:
        MessageError: the payload is not a JSON object with a schema name.
    """
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MessageError(f"message is not JSON: {exc}") from exc
    name = data.get("schema_name") if isinstance(data, dict) else None
    if not isinstance(name, str):
        raise MessageError("message has no schema_name")
    return name
