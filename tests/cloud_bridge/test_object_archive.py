"""The archive in an S3-compatible object store (moto's S3 server over HTTP)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import httpx
import pytest
from pydantic import ValidationError

from cloud_bridge.archive import BlobStore
from cloud_bridge.config import ArchiveSection, BridgeConfig, ObjectStoreSection
from cloud_bridge.context import Bridge
from cloud_bridge.copies import Officer
from cloud_bridge.errors import ArchiveError, NotFoundError
from cloud_bridge.object_archive import ObjectArchive
from cloud_bridge.trust_services import RunningTrustServices
from tests.cloud_bridge.samples import jpeg_bytes, scan_page
from tests.cloud_bridge.test_copies import request
from tests.conftest import free_port

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

KEY_ID = "bridge-test"
SECRET = "bridge-test-secret"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free port, stopped afterwards."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("moto's S3 server did not start")
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(10)


def section(endpoint: str, bucket: str, **extra: object) -> ObjectStoreSection:
    """An object store section with the test keys."""
    return ObjectStoreSection.model_validate(
        {
            "endpoint_url": endpoint,
            "bucket": bucket,
            "access_key_id": KEY_ID,
            "secret_access_key": SECRET,
            "timeout_s": 2,
            "attempts": 1,
            **extra,
        }
    )


def new_bucket(endpoint: str, locked: bool = False) -> str:
    """Create a bucket with a unique name and return its name."""
    name = f"archive-{uuid.uuid4().hex[:12]}"
    raw(endpoint).create_bucket(Bucket=name, ObjectLockEnabledForBucket=locked)
    return name


def raw(endpoint: str) -> S3Client:
    """A plain S3 client, to act behind the archive's back."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )


@pytest.fixture
def archive(s3_endpoint: str, tmp_path: Path) -> ObjectArchive:
    """An archive in a fresh bucket under a prefix."""
    bucket = new_bucket(s3_endpoint)
    store = ObjectArchive.from_section(
        section(s3_endpoint, bucket, prefix="phuong-mau/"), tmp_path
    )
    store.check()
    return store


def test_round_trip_under_the_sha256(archive: ObjectArchive) -> None:
    blob: BlobStore = archive
    data = b"%PDF-1.7 signed copy"
    digest = blob.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert archive.key(digest) == (
        f"phuong-mau/sha256/{digest[:2]}/{digest[2:4]}/{digest}"
    )
    assert blob.get(digest) == data
    assert blob.exists(digest)
    assert list(blob.digests()) == [digest]
    assert blob.put(data) == digest  # the same bytes again: checked, kept
    assert list(blob.digests()) == [digest]


def test_missing_blob_is_not_found(archive: ObjectArchive) -> None:
    digest = hashlib.sha256(b"never stored").hexdigest()
    assert not archive.exists(digest)
    with pytest.raises(NotFoundError):
        archive.get(digest)
    with pytest.raises(ValueError, match="SHA-256"):
        archive.get("../../etc/passwd")


def test_an_object_changed_behind_the_archive_is_reported(
    archive: ObjectArchive, s3_endpoint: str
) -> None:
    digest = archive.put(b"original bytes")
    client = raw(s3_endpoint)
    client.put_object(
        Bucket=archive.bucket, Key=archive.key(digest), Body=b"tampered bytes"
    )
    with pytest.raises(ArchiveError, match="corrupt"):
        archive.get(digest)
    with pytest.raises(ArchiveError, match="corrupt"):
        archive.put(b"original bytes")  # found taken, read back, refused


def test_retention_locks_every_blob(s3_endpoint: str, tmp_path: Path) -> None:
    bucket = new_bucket(s3_endpoint, locked=True)
    store = ObjectArchive.from_section(
        section(s3_endpoint, bucket, retention_days=30), tmp_path
    )
    digest = store.put(b"kept for thirty days")
    client = raw(s3_endpoint)
    head = client.head_object(Bucket=bucket, Key=store.key(digest))
    assert head["ObjectLockMode"] == "COMPLIANCE"
    until = head["ObjectLockRetainUntilDate"]
    assert until > datetime.now(UTC) + timedelta(days=29)
    with pytest.raises(Exception, match="AccessDenied"):
        client.delete_object(
            Bucket=bucket, Key=store.key(digest), VersionId=head["VersionId"]
        )
    assert store.get(digest) == b"kept for thirty days"


def test_sweep_spares_known_and_recent_blobs(archive: ObjectArchive) -> None:
    kept = archive.put(b"referenced by a copy")
    orphan = archive.put(b"written before a crash")
    assert archive.orphans({kept}) == [orphan]
    assert archive.sweep({kept}, min_age_s=3600) == []
    assert archive.sweep({kept}, min_age_s=0) == [orphan]
    assert list(archive.digests()) == [kept]


def test_missing_bucket_and_bad_endpoint_say_what_to_do(
    s3_endpoint: str, tmp_path: Path
) -> None:
    gone = ObjectArchive.from_section(section(s3_endpoint, "no-such-bucket"), tmp_path)
    with pytest.raises(ArchiveError, match="create it with Object Lock"):
        gone.check()
    closed = f"http://127.0.0.1:{free_port()}"
    down = ObjectArchive.from_section(section(closed, "any-bucket"), tmp_path)
    with pytest.raises(ArchiveError, match="endpoint_url and the network"):
        down.put(b"not stored")


def test_s3_backend_needs_its_keys(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="access_key_id is empty"):
        BridgeConfig.model_validate(
            {"data_dir": str(tmp_path), "archive": {"backend": "s3"}}
        )
    store = ObjectStoreSection.model_validate(
        {"access_key_id": KEY_ID, "secret_access_key_file": "secrets/s3"}
    )
    with pytest.raises(Exception, match="KIOSK_BRIDGE__ARCHIVE__S3"):
        store.read_secret(tmp_path)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "s3").write_text(SECRET + "\n", encoding="utf-8")
    assert store.read_secret(tmp_path) == SECRET


def test_a_certified_copy_is_archived_in_the_bucket(
    s3_endpoint: str,
    bridge_config: BridgeConfig,
    trust_services: RunningTrustServices,
) -> None:
    bucket = new_bucket(s3_endpoint, locked=True)
    store = section(s3_endpoint, bucket, retention_days=1)
    archive = ArchiveSection(backend="s3", s3=store)
    config = bridge_config.model_copy(update={"archive": archive})
    bridge = Bridge(config)
    try:
        issued = bridge.copies.make_copy(
            [jpeg_bytes(scan_page())],
            request(config),
            Officer("Trần Thị B", "Công chức"),
        )
        digest = issued.record.pdf_sha256
        assert digest is not None
        stored = bridge.archive.get(digest)
    finally:
        bridge.close()
    assert stored == issued.pdf
    assert not (config.path(config.archive.path)).exists()
