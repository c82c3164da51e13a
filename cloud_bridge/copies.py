"""Turn an approved request's pages into a signed, archived certified copy.

The order of the steps is what keeps the stores consistent after a crash at
any point:

1. The pages are checked in memory; bad input is refused before anything is
   written.
2. The page images go into the archive (content-addressed, so a retry writes
   nothing new) and the request is recorded with their digests.
3. A certification number is reserved in the same transaction that records
   the copy as ``reserved``: a crash before the commit takes no number.
4. The seal is signed, the PDF rendered, signed and timestamped, and stored.
5. The copy is marked ``issued`` with the PDF's digest.

A copy that fails in step 4 (the HSM or the timestamp service is down) keeps
its number; :meth:`CopyService.resume` finishes it later with the same number
and a fresh access code, so no number is lost or given to another copy. The
HSM is asked for a session before step 3, so an absent token or a refused PIN
does not reserve a number at all.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date

from cloud_bridge.archive import BlobStore
from cloud_bridge.config import BridgeConfig
from cloud_bridge.errors import InputError, NotFoundError
from cloud_bridge.pages import Page, load_pages, stored_pages
from cloud_bridge.render import CopyContent, render_copy
from cloud_bridge.signing import CopySigner, signature_text
from cloud_bridge.store import (
    CopyDraft,
    CopyRecord,
    CopyStore,
    RequestDraft,
    RequestRecord,
    Reservation,
)
from cloud_bridge.store.copies import to_reservation
from protocol.identifier import hash_access_code, new_access_code, new_copy_id
from protocol.seal import (
    SealClaims,
    combine_page_digests,
    encode_qr_payload,
    sign_seal,
)

logger = logging.getLogger(__name__)

DOCUMENT_LABELS = {
    "citizen_id_card": "Căn cước công dân",
    "birth_certificate": "Giấy khai sinh",
    "diploma": "Bằng tốt nghiệp",
    "residence_confirmation": "Giấy xác nhận thông tin cư trú",
    "marriage_certificate": "Giấy chứng nhận kết hôn",
    "transcript": "Bảng điểm",
    "land_use_certificate": "Giấy chứng nhận quyền sử dụng đất",
    "other": "Giấy tờ khác",
}


@dataclass(frozen=True)
class SealKey:
    """The office's seal key: its key id and a raw ES256 signing function."""

    kid: bytes
    sign: Callable[[bytes], bytes]


@dataclass(frozen=True)
class Officer:
    """The justice officer who approves and is named on the copy."""

    name: str
    title: str


@dataclass(frozen=True)
class CopyRequest:
    """What a kiosk (or an operator) asks to be certified."""

    document_type: str
    citizen_name: str
    citizen_id_number: str = field(repr=False)
    page_count: int
    office_code: str
    kiosk_id: str = "cli"
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True)
class IssuedCopy:
    """A signed copy, with the access code only its recipient may see."""

    record: CopyRecord
    access_code: str = field(repr=False)
    pdf: bytes = field(repr=False)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def copy_id(self) -> str:
        """The copy's identifier."""
        return self.record.copy_id


class Stopwatch:
    """Record how long each named step takes, in milliseconds."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}

    @contextmanager
    def lap(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.laps[name] = (time.perf_counter() - start) * 1000


class CopyService:
    """Make, resume and revoke certified copies."""

    def __init__(
        self,
        config: BridgeConfig,
        store: CopyStore,
        archive: BlobStore,
        signer: CopySigner,
        seal_key: SealKey,
        check_hsm: Callable[[], None] = lambda: None,
        today: Callable[[], date] = date.today,
    ) -> None:
        self._config = config
        self._store = store
        self._archive = archive
        self._signer = signer
        self._seal_key = seal_key
        self._check_hsm = check_hsm
        self._today = today

    def make_copy(
        self, sources: Sequence[bytes], request: CopyRequest, officer: Officer
    ) -> IssuedCopy:
        """Certify ``sources`` (page images or one PDF) for ``request``.

        Raises:
            InputError: the pages or the request's metadata are not acceptable.
            HsmError, TimestampError, SigningError, ArchiveError, StoreError:
                the copy could not be finished; a reserved number is kept
                for :meth:`resume`.
        """
        watch = Stopwatch()
        record = self.submit(sources, request, watch)
        return self._certify(record, officer, watch)

    def submit(
        self,
        sources: Sequence[bytes],
        request: CopyRequest,
        watch: Stopwatch | None = None,
    ) -> RequestRecord:
        """Check and store a request's pages; the request waits for an officer.

        Submitting the same request again (same id and content) is a no-op.

        Raises:
            InputError: the pages or the request's metadata are not acceptable.
            ArchiveError, StoreError: the pages could not be stored.
        """
        watch = watch or Stopwatch()
        self._check_request(request)
        with watch.lap("pages"):
            pages = load_pages(sources, self._config.copies)
        if len(pages) != request.page_count:
            raise InputError(
                f"the request says {request.page_count} pages but "
                f"{len(pages)} were scanned; rescan or correct the page count"
            )
        with watch.lap("store_pages"):
            page_hashes = [self._archive.put(page.image) for page in pages]
            return self._record_request(request, page_hashes)

    def certify(self, request_id: str, officer: Officer) -> IssuedCopy:
        """Approve a stored request in ``officer``'s name and issue its copy.

        Raises:
            InputError: the request was rejected, or already certified.
            NotFoundError: no such request.
            HsmError, TimestampError, SigningError, ArchiveError, StoreError:
                the copy could not be finished; a reserved number is kept
                for :meth:`resume`.
        """
        return self._certify(self._store.get_request(request_id), officer, Stopwatch())

    def _certify(
        self, record: RequestRecord, officer: Officer, watch: Stopwatch
    ) -> IssuedCopy:
        if record.state == "rejected":
            raise InputError(
                f"request {record.request_id} was rejected; it cannot be certified"
            )
        pages = self._stored_pages(record)
        self._check_hsm()
        access_code = new_access_code()
        with watch.lap("reserve"):
            reservation = self._reserve(record, pages, officer, access_code)
        if not reservation.new:
            return self._existing(reservation, pages, access_code, watch)
        issued = self._issue(reservation, pages, access_code, watch)
        logger.info(
            "issued copy %s, number %s in book %s",
            issued.copy_id,
            issued.record.cert_number,
            issued.record.book,
        )
        return issued

    def resume(self) -> list[IssuedCopy]:
        """Finish every copy whose number is reserved but which was not issued."""
        finished = []
        for record in self._store.reserved_copies():
            if record.request_id is None:
                logger.warning("reserved copy %s has no request", record.copy_id)
                continue
            request = self._store.get_request(record.request_id)
            pages = self._stored_pages(request)
            access_code = self._new_access_code(record.copy_id)
            reservation = to_reservation(record, new=False)
            finished.append(
                self._issue(reservation, pages, access_code, Stopwatch(), record)
            )
            logger.info("resumed copy %s", record.copy_id)
        return finished

    def revoke(self, copy_id: str, reason: str, revoked_by: str) -> CopyRecord:
        """Revoke a copy; verification reports it revoked from then on."""
        record = self._store.revoke_copy(copy_id, reason, revoked_by)
        logger.info("copy %s revoked by %s", copy_id, revoked_by)
        return record

    def _check_request(self, request: CopyRequest) -> None:
        allowed = self._config.copies.document_types
        if request.document_type not in allowed:
            raise InputError(
                f"document type {request.document_type!r} is not certified "
                f"here; choose one of: {', '.join(allowed)}"
            )
        if request.office_code not in self._config.offices:
            raise InputError(
                f"office {request.office_code!r} is not configured; known: "
                f"{', '.join(sorted(self._config.offices))}"
            )
        if not 1 <= request.page_count <= self._config.copies.max_pages:
            raise InputError(
                f"a copy has 1 to {self._config.copies.max_pages} pages, "
                f"not {request.page_count}"
            )
        if not request.citizen_name.strip():
            raise InputError("the citizen's name is empty")

    def _record_request(
        self, request: CopyRequest, page_hashes: list[str]
    ) -> RequestRecord:
        self._store.add_request(
            RequestDraft(
                request_id=request.request_id,
                kiosk_id=request.kiosk_id,
                office_code=request.office_code,
                document_type=request.document_type,
                citizen_name=request.citizen_name,
                citizen_id_number=request.citizen_id_number,
                page_count=request.page_count,
                metadata={"pages": page_hashes},
            )
        )
        return self._store.get_request(request.request_id)

    def _reserve(
        self,
        request: RequestRecord,
        pages: Sequence[Page],
        officer: Officer,
        access_code: str,
    ) -> Reservation:
        office = self._config.office(request.office_code)
        salt = secrets.token_bytes(16)
        draft = CopyDraft(
            copy_id=new_copy_id(),
            office_code=request.office_code,
            book=office.book,
            issued_on=self._today(),
            document_type=request.document_type,
            page_count=len(pages),
            officer_name=officer.name,
            officer_title=officer.title,
            access_code_salt=salt.hex(),
            access_code_hash=hash_access_code(access_code, salt),
            request_id=request.request_id,
            pages_digest=combine_page_digests([p.sha256 for p in pages]).hex(),
        )
        if request.state == "pending":
            return self._store.approve_and_reserve(
                request.request_id, officer.name, draft
            )
        return self._store.reserve_copy(draft)

    def _existing(
        self,
        reservation: Reservation,
        pages: Sequence[Page],
        access_code: str,
        watch: Stopwatch,
    ) -> IssuedCopy:
        record = self._store.get_copy(reservation.copy_id)
        if record.issued:
            raise InputError(
                f"request {record.request_id} was already certified as copy "
                f"{record.copy_id}; it is not certified twice"
            )
        access_code = self._new_access_code(record.copy_id)
        return self._issue(reservation, pages, access_code, watch, record)

    def _new_access_code(self, copy_id: str) -> str:
        code = new_access_code()
        salt = secrets.token_bytes(16)
        self._store.replace_access_code(
            copy_id, salt.hex(), hash_access_code(code, salt)
        )
        return code

    def _issue(
        self,
        reservation: Reservation,
        pages: Sequence[Page],
        access_code: str,
        watch: Stopwatch,
        record: CopyRecord | None = None,
    ) -> IssuedCopy:
        record = record or self._store.get_copy(reservation.copy_id)
        office = self._config.office(reservation.office_code)
        with watch.lap("seal"):
            claims = SealClaims(
                copy_id=reservation.copy_id,
                certification_number=reservation.cert_number,
                book=reservation.book,
                issue_date=reservation.issued_on,
                office_code=reservation.office_code,
                document_type=record.document_type,
                page_count=len(pages),
                pages_digest=combine_page_digests([p.sha256 for p in pages]),
            )
            seal = sign_seal(claims, self._seal_key.sign, self._seal_key.kid)
            lookup_url = self._config.copies.lookup_url
            qr_payload = encode_qr_payload(lookup_url, reservation.copy_id, seal)
        with watch.lap("render"):
            # The renderer's PDF/A check re-reads its output (40-60 ms); the
            # tests check every kind of page it makes, so production skips it.
            pdf = render_copy(
                CopyContent(
                    copy_id=reservation.copy_id,
                    access_code=access_code,
                    certification_number=reservation.cert_number,
                    book=reservation.book,
                    issue_date=reservation.issued_on,
                    office_name=office.name,
                    officer_name=record.officer_name,
                    officer_title=record.officer_title,
                    document_type_label=DOCUMENT_LABELS.get(
                        record.document_type, record.document_type
                    ),
                    pages=list(pages),
                    qr_payload=qr_payload,
                    watermark=self._config.copies.watermark,
                    lookup_url=lookup_url.rstrip("/") + "/" + reservation.copy_id,
                ),
                validate=False,
                signature=signature_text(
                    office.name, record.officer_name, record.copy_id
                ),
            )
        with watch.lap("sign"):
            signed = self._signer.sign_prepared(pdf)
            del pdf  # a copy of several megabytes: free it before archiving
        with watch.lap("archive"):
            digest = self._archive.put(signed)
            issued = self._store.complete_copy(
                reservation.copy_id, digest, len(signed), claims.pages_digest.hex()
            )
        return IssuedCopy(
            record=issued, access_code=access_code, pdf=signed, timings_ms=watch.laps
        )

    def _stored_pages(self, request: RequestRecord) -> list[Page]:
        hashes = request.metadata.get("pages")
        if not isinstance(hashes, list) or not hashes:
            raise NotFoundError(
                f"request {request.request_id} has no stored pages to resume from"
            )
        return stored_pages(
            [(self._archive.get(str(digest)), str(digest)) for digest in hashes]
        )
