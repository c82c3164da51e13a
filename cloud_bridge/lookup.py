"""Open a copy with its identifier and access code, as the citizen does."""

from __future__ import annotations

import logging

from cloud_bridge.archive import BlobStore
from cloud_bridge.errors import NotFoundError
from cloud_bridge.store import CopyRecord, CopyStore
from protocol.errors import ProtocolError
from protocol.identifier import (
    check_access_code,
    normalize_access_code,
    parse_copy_id,
)

logger = logging.getLogger(__name__)

NO_MATCH = "no copy matches that identifier and access code"


class CopyLookup:
    """Find issued copies; the full record and PDF need the access code."""

    def __init__(self, store: CopyStore, archive: BlobStore) -> None:
        self._store = store
        self._archive = archive

    def public(self, copy_id: str) -> CopyRecord | None:
        """Return an issued copy by identifier alone, or None.

        Callers show only what is not personal: status, office, date, type.
        """
        try:
            record = self._store.get_copy(parse_copy_id(copy_id))
        except (NotFoundError, ProtocolError):
            return None
        return record if record.issued else None

    def open(self, copy_id: str, access_code: str) -> CopyRecord:
        """Return an issued copy when ``access_code`` is its code.

        Raises:
            NotFoundError: no issued copy has that identifier and code; the
                two cases are not told apart, so guessing reveals nothing.
        """
        record = self.public(copy_id)
        try:
            code = normalize_access_code(access_code)
        except ProtocolError as exc:
            raise NotFoundError(NO_MATCH) from exc
        if record is None:
            raise NotFoundError(NO_MATCH)
        salt = bytes.fromhex(record.access_code_salt)
        if not check_access_code(code, salt, record.access_code_hash):
            logger.info("wrong access code for copy %s", record.copy_id)
            raise NotFoundError(NO_MATCH)
        return record

    def pdf(self, record: CopyRecord) -> bytes:
        """Return the archived PDF of an issued copy."""
        if record.pdf_sha256 is None:
            raise NotFoundError(f"copy {record.copy_id} has no signed PDF yet")
        return self._archive.get(record.pdf_sha256)
