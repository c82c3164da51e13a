"""The archive of signed copies: an append-only directory addressed by SHA-256.

A blob lives at ``sha256/ab/cd/<hex>`` under the root. It is written to a
temporary file under ``tmp/`` (same file system), flushed with fsync, then
hard-linked into place and the directory fsynced. A hard link, unlike a
rename, fails when the name exists, so a stored blob is never overwritten;
storing the same bytes again verifies the blob and returns its digest.
Every read checks the hash. A writer holds an flock on its temporary file,
so :meth:`Archive.remove_temporaries` deletes only files left by a writer
that died, even while other bridge processes share the archive.

This directory serves one bridge machine (or several sharing one file
system). At city scale the archive lives in an S3-compatible object store
behind the same :class:`BlobStore` protocol (:mod:`cloud_bridge.object_archive`,
``[archive] backend = "s3"``).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from cloud_bridge.errors import ArchiveError, NotFoundError

logger = logging.getLogger(__name__)

Writer = Callable[[int, memoryview], int]

_HEX = re.compile(r"^[0-9a-f]{64}$")
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class BlobStore(Protocol):
    """Where signed copies are kept, by the SHA-256 of their bytes."""

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its SHA-256 (hex)."""
        ...

    def get(self, digest: str) -> bytes:
        """Return the verified bytes stored under ``digest``."""
        ...

    def exists(self, digest: str) -> bool:
        """Return True when a blob with this digest is stored."""
        ...

    def digests(self) -> Iterator[str]:
        """Yield the digest of every stored blob."""
        ...


def is_digest(name: str) -> bool:
    """Tell whether ``name`` is a lower-case hex SHA-256 (a blob's name)."""
    return _HEX.match(name) is not None


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is a lower-case hex SHA-256, else ValueError."""
    if not is_digest(digest):
        raise ValueError(f"not a lower-case hex SHA-256 digest: {digest!r}")
    return digest


class Archive:
    """A content-addressed, append-only directory of blobs.

    Args:
        root: the archive directory (created when missing).
        min_free_bytes: refuse to write when less space than this is free.
        writer: writes bytes to a file descriptor like ``os.write`` (a seam
            for tests that simulate a full disk).
    """

    def __init__(
        self, root: Path, min_free_bytes: int = 0, *, writer: Writer = os.write
    ) -> None:
        self.root = root
        self.min_free_bytes = min_free_bytes
        self._writer = writer
        self._blobs = root / "sha256"
        self._temporary = root / "tmp"
        try:
            self._blobs.mkdir(parents=True, exist_ok=True)
            self._temporary.mkdir(exist_ok=True)
        except OSError as exc:
            raise ArchiveError(
                f"cannot create the archive at {root}: {exc.strerror}; check the "
                "[archive] path and its permissions"
            ) from exc

    def path(self, digest: str) -> Path:
        """Return where the blob ``digest`` is (or would be) stored."""
        check_digest(digest)
        return self._blobs / digest[:2] / digest[2:4] / digest

    def exists(self, digest: str) -> bool:
        """Return True when the blob ``digest`` is stored (not verified)."""
        return self.path(digest).is_file()

    def put(self, data: bytes) -> str:
        """Store ``data`` durably and return its SHA-256 (hex).

        Raises:
            ArchiveError: the disk is full or unwritable, or a stored blob
                with this digest is corrupt (it is left as it is).
        """
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.is_file():
            self._verify(target, digest)
            return digest
        self._check_free_space()
        self._make_parents(target)
        self._store_new(data, target, digest)
        _fsync_directory(target.parent)
        logger.debug("archived blob %s (%s bytes)", digest, len(data))
        return digest

    def get(self, digest: str) -> bytes:
        """Return the blob ``digest`` after checking its hash.

        Raises:
            NotFoundError: no such blob.
            ArchiveError: the blob is unreadable or its bytes do not match.
        """
        target = self.path(digest)
        try:
            data = target.read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError(f"the archive has no blob {digest}") from exc
        except OSError as exc:
            raise ArchiveError(
                f"cannot read {target}: {exc.strerror}; check the archive disk"
            ) from exc
        _require_digest(target, data, digest)
        return data

    def digests(self) -> Iterator[str]:
        """Yield the digest of every stored blob."""
        for candidate in self._blobs.glob("??/??/*"):
            if is_digest(candidate.name) and candidate.is_file():
                yield candidate.name

    def orphans(self, known: set[str]) -> list[str]:
        """Return stored blobs not in ``known``, e.g. written before a crash.

        ``known`` must hold every digest the database refers to (PDFs and
        page images: ``CopyStore.referenced_digests()``).
        """
        return sorted(digest for digest in self.digests() if digest not in known)

    def sweep(self, known: set[str], min_age_s: float = 3600.0) -> list[str]:
        """Delete orphans older than ``min_age_s`` and return their digests.

        The age limit spares a blob whose copy is being committed right now.
        """
        limit = time.time() - min_age_s
        removed = []
        for digest in self.orphans(known):
            target = self.path(digest)
            if target.stat().st_mtime <= limit:
                target.unlink(missing_ok=True)
                removed.append(digest)
        if removed:
            logger.info("swept %s orphan blobs from %s", len(removed), self.root)
        return removed

    def remove_temporaries(self) -> int:
        """Delete temporary files left by writers that died; return how many."""
        removed = 0
        for candidate in self._temporary.iterdir():
            if _unlink_if_abandoned(candidate):
                removed += 1
        if removed:
            logger.warning(
                "removed %s unfinished archive files from %s", removed, self._temporary
            )
        return removed

    def _check_free_space(self) -> None:
        free = shutil.disk_usage(self.root).free
        if free < self.min_free_bytes:
            raise ArchiveError(
                f"the archive disk is full: {free} bytes free on {self.root}, "
                f"{self.min_free_bytes} required; free space on it, then retry"
            )

    def _make_parents(self, target: Path) -> None:
        for directory in (target.parent.parent, target.parent):
            if not directory.is_dir():
                directory.mkdir(exist_ok=True)
                _fsync_directory(directory.parent)

    def _store_new(self, data: bytes, target: Path, digest: str) -> None:
        for attempt in (1, 2):
            try:
                self._link_new(data, target)
                return
            except FileExistsError:
                # Another process stored the same bytes in the meantime.
                self._verify(target, digest)
                return
            except FileNotFoundError as exc:
                # Another process's remove_temporaries() took our file in the
                # instant between its creation and its lock: write it again.
                if attempt == 2:
                    raise self._write_error(exc) from exc

    def _link_new(self, data: bytes, target: Path) -> None:
        temporary = self._write_temporary(data)
        try:
            os.link(temporary, target)
        except (FileExistsError, FileNotFoundError):
            raise
        except OSError as exc:
            raise self._write_error(exc) from exc
        finally:
            temporary.unlink(missing_ok=True)

    def _write_temporary(self, data: bytes) -> Path:
        temporary = self._temporary / f"{uuid.uuid4().hex}.tmp"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        except OSError as exc:
            raise self._write_error(exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._write_all(fd, memoryview(data))
            os.fsync(fd)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise self._write_error(exc) from exc
        finally:
            os.close(fd)
        return temporary

    def _write_all(self, fd: int, view: memoryview) -> None:
        while view:
            written = self._writer(fd, view)
            view = view[written:]

    def _write_error(self, exc: OSError) -> ArchiveError:
        if exc.errno in _FULL_ERRNOS:
            return ArchiveError(
                f"the archive disk is full: free space on {self.root}, then retry"
            )
        return ArchiveError(
            f"cannot write to the archive at {self.root}: {exc.strerror}; check "
            "the disk and its permissions, then retry"
        )

    def _verify(self, target: Path, digest: str) -> None:
        _require_digest(target, target.read_bytes(), digest)


def _require_digest(target: Path, data: bytes, digest: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != digest:
        logger.error("archive blob %s is corrupt (hashes to %s)", target, actual)
        raise ArchiveError(
            f"the archived blob {target} is corrupt (its bytes hash to {actual}); "
            "restore it from the backup"
        )


def _unlink_if_abandoned(candidate: Path) -> bool:
    try:
        fd = os.open(candidate, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # a live writer holds it
    else:
        candidate.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
