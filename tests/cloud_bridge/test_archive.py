"""The content-addressed archive: round trip, dedup, corruption, full disk."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import multiprocessing
import os
import subprocess
import time
from collections.abc import Iterator
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from cloud_bridge.archive import Archive, BlobStore
from cloud_bridge.errors import ArchiveError, NotFoundError

FORK = multiprocessing.get_context("fork")
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40


def files_under(root: Path) -> list[Path]:
    """Return every regular file under ``root``."""
    return sorted(path for path in root.rglob("*") if path.is_file())


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    """An empty archive in a temporary directory."""
    return Archive(tmp_path / "archive", min_free_bytes=0)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs, mounted for the test and unmounted afterwards."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_archive_is_a_blob_store(archive: Archive) -> None:
    store: BlobStore = archive
    assert store.exists(store.put(b"x"))


def test_round_trip_stores_under_the_sha256(archive: Archive) -> None:
    digest = archive.put(PDF)

    assert digest == hashlib.sha256(PDF).hexdigest()
    assert archive.path(digest) == (
        archive.root / "sha256" / digest[:2] / digest[2:4] / digest
    )
    assert archive.get(digest) == PDF
    assert archive.exists(digest)
    assert list(archive.digests()) == [digest]
    assert files_under(archive.root / "tmp") == []


def test_same_bytes_twice_are_stored_once_and_not_rewritten(
    archive: Archive,
) -> None:
    digest = archive.put(PDF)
    inode = archive.path(digest).stat().st_ino

    assert archive.put(PDF) == digest

    assert archive.path(digest).stat().st_ino == inode
    assert len(files_under(archive.root)) == 1


def _put_after(root: Path, data: bytes, start: Event) -> None:
    archive = Archive(root)
    start.wait(30)
    assert archive.put(data) == hashlib.sha256(data).hexdigest()


def test_processes_storing_the_same_bytes_at_once_all_succeed(
    archive: Archive,
) -> None:
    data = os.urandom(2_000_000)
    start = FORK.Event()
    writers = [
        FORK.Process(target=_put_after, args=(archive.root, data, start))
        for _ in range(4)
    ]
    for writer in writers:
        writer.start()
    start.set()
    for writer in writers:
        writer.join(60)

    assert [writer.exitcode for writer in writers] == [0, 0, 0, 0]
    assert archive.get(hashlib.sha256(data).hexdigest()) == data
    assert len(files_under(archive.root)) == 1


def test_corrupt_blob_is_detected_on_read_and_not_overwritten(
    archive: Archive,
) -> None:
    digest = archive.put(PDF)
    target = archive.path(digest)
    target.chmod(0o644)
    target.write_bytes(PDF[:-1] + b"X")

    with pytest.raises(ArchiveError, match="corrupt"):
        archive.get(digest)
    with pytest.raises(ArchiveError, match="restore it from the backup"):
        archive.put(PDF)
    assert target.read_bytes().endswith(b"X")


def test_absent_blob_is_not_found(archive: Archive) -> None:
    with pytest.raises(NotFoundError):
        archive.get("0" * 64)
    assert not archive.exists("0" * 64)


def test_malformed_digest_cannot_leave_the_archive(archive: Archive) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        archive.get("../../etc/passwd")


def test_too_little_free_space_refuses_before_writing(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    archive = Archive(root, min_free_bytes=2**62)

    with pytest.raises(ArchiveError, match="the archive disk is full"):
        archive.put(PDF)
    assert files_under(root) == []


def test_no_space_while_writing_leaves_no_partial_file(tmp_path: Path) -> None:
    calls = []

    def full_after_first_chunk(fd: int, data: memoryview) -> int:
        calls.append(len(data))
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.write(fd, data[:100])

    root = tmp_path / "archive"
    archive = Archive(root, writer=full_after_first_chunk)

    with pytest.raises(ArchiveError, match="the archive disk is full"):
        archive.put(PDF)
    assert len(calls) == 2
    assert files_under(root) == []


def test_genuinely_full_disk_leaves_no_partial_file(tiny_disk: Path) -> None:
    archive = Archive(tiny_disk / "archive", min_free_bytes=0)

    with pytest.raises(ArchiveError, match="the archive disk is full") as caught:
        archive.put(os.urandom(200_000))

    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.__cause__.errno == errno.ENOSPC
    assert files_under(tiny_disk) == []
    assert archive.get(archive.put(b"small")) == b"small"


def test_temporaries_of_dead_writers_are_removed_and_live_ones_kept(
    archive: Archive,
) -> None:
    temporary = archive.root / "tmp"
    (temporary / "dead.tmp").write_bytes(b"half a pdf")
    live = temporary / "live.tmp"
    live.write_bytes(b"being written")
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        other = Archive(archive.root)  # a second process sharing the archive
        assert other.remove_temporaries() == 1
    finally:
        os.close(fd)

    assert [path.name for path in files_under(temporary)] == ["live.tmp"]


def test_orphans_are_blobs_no_copy_references(archive: Archive) -> None:
    kept = archive.put(b"issued copy")
    orphan = archive.put(b"written before a crash")

    assert archive.orphans({kept}) == [orphan]
    assert archive.sweep({kept}, min_age_s=3600) == []

    old = time.time() - 7200
    os.utime(archive.path(orphan), (old, old))
    assert archive.sweep({kept}, min_age_s=3600) == [orphan]
    assert not archive.exists(orphan) and archive.get(kept) == b"issued copy"
