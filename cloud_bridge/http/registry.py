"""Answer "what is this copy's status?" from the bridge's own database."""

from __future__ import annotations

from cloud_bridge.errors import NotFoundError
from cloud_bridge.store import CopyStore
from cloud_bridge.verify import RegistryAnswer


class StoreRegistry:
    """A :class:`~cloud_bridge.verify.CopyRegistry` over the bridge database."""

    def __init__(self, store: CopyStore) -> None:
        self._store = store

    def status(self, copy_id: str, pdf_sha256: str) -> RegistryAnswer:
        """Return the copy's status and whether this file is the archived one."""
        try:
            record = self._store.get_copy(copy_id)
        except NotFoundError:
            return RegistryAnswer(known=False)
        if not record.issued:
            return RegistryAnswer(known=False)
        return RegistryAnswer(
            known=True,
            revoked=record.revoked,
            revoked_at=record.revoked_at,
            revocation_reason=record.revocation_reason,
            archive_match=record.pdf_sha256 == pdf_sha256.lower(),
        )
