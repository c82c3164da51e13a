"""The archive in an S3-compatible object store, for offices at city scale.

Blobs are keyed as in the directory archive, ``<prefix>sha256/ab/cd/<hex>``.
A blob is written once: the PUT carries ``If-None-Match: *``, so the store
refuses to replace an existing key, and its SHA-256 checksum, so a store
that checks checksums (S3 does) refuses bytes damaged on the way. Storing
the same bytes again finds the key taken, reads the blob back and checks
its hash. Every read checks the hash. With ``retention_days`` each blob is
put under Object Lock in COMPLIANCE mode, so that nobody, administrators
included, can delete or overwrite a copy before its retention ends; the
bucket must have been created with Object Lock (and so versioning) on.

Object stores need no temporary files: a PUT is all or nothing. Stores
that ignore ``If-None-Match`` overwrite a key with the same bytes, which
content addressing makes harmless (under Object Lock the first version is
kept). Tested against moto's S3 server; no vendor's store runs here.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cloud_bridge.archive import check_digest, is_digest
from cloud_bridge.config import ObjectStoreSection, resolve
from cloud_bridge.errors import ArchiveError, NotFoundError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

_MISSING = {"404", "NoSuchKey", "NotFound"}
_TAKEN = {"412", "PreconditionFailed"}
_REFUSED_KEYS = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}


class ObjectArchive:
    """A content-addressed, write-once archive in one bucket."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        prefix: str = "",
        retention_days: int = 0,
        endpoint: str = "",
    ) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix
        self.retention_days = retention_days
        self._where = f"bucket {bucket} at {endpoint or 'the object store'}"

    @classmethod
    def from_section(cls, section: ObjectStoreSection, data_dir: Path) -> ObjectArchive:
        """Connect to the store ``section`` names (no request is made yet)."""
        client = boto3.client(
            "s3",
            endpoint_url=section.endpoint_url,
            region_name=section.region,
            aws_access_key_id=section.access_key_id,
            aws_secret_access_key=section.read_secret(data_dir),
            verify=str(resolve(data_dir, section.ca_file)) if section.ca_file else None,
            config=Config(
                connect_timeout=section.timeout_s,
                read_timeout=section.timeout_s,
                retries={"max_attempts": section.attempts, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        )
        return cls(
            client,
            section.bucket,
            section.prefix,
            section.retention_days,
            section.endpoint_url,
        )

    def key(self, digest: str) -> str:
        """Return the object key of the blob ``digest``."""
        check_digest(digest)
        return f"{self.prefix}sha256/{digest[:2]}/{digest[2:4]}/{digest}"

    def check(self) -> None:
        """Make sure the bucket exists and the keys may use it.

        Raises:
            ArchiveError: the store is unreachable, the bucket is missing or
                the keys are refused.
        """
        self._call("check", lambda: self._client.head_bucket(Bucket=self.bucket))

    def put(self, data: bytes) -> str:
        """Store ``data`` once and return its SHA-256 (hex).

        Raises:
            ArchiveError: the store is unreachable or refused the blob, or a
                stored blob with this digest is corrupt.
        """
        digest_bytes = hashlib.sha256(data).digest()
        digest = digest_bytes.hex()
        request: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.key(digest),
            "Body": data,
            "ChecksumAlgorithm": "SHA256",
            "ChecksumSHA256": base64.b64encode(digest_bytes).decode("ascii"),
            "ContentType": "application/octet-stream",
            "IfNoneMatch": "*",
        }
        if self.retention_days:
            request["ObjectLockMode"] = "COMPLIANCE"
            request["ObjectLockRetainUntilDate"] = datetime.now(UTC) + timedelta(
                days=self.retention_days
            )
        try:
            self._client.put_object(**request)
        except ClientError as exc:
            if _code(exc) not in _TAKEN:
                raise self._error("store", exc) from exc
            self.get(digest)  # stored before: check it is whole
            return digest
        except BotoCoreError as exc:
            raise self._error("store", exc) from exc
        logger.debug("archived blob %s (%s bytes)", digest, len(data))
        return digest

    def get(self, digest: str) -> bytes:
        """Return the blob ``digest`` after checking its hash.

        Raises:
            NotFoundError: no such blob.
            ArchiveError: the store failed or the bytes do not match.
        """
        key = self.key(digest)
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=key)
            data = answer["Body"].read()
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise NotFoundError(f"the archive has no blob {digest}") from exc
            raise self._error("read", exc) from exc
        except BotoCoreError as exc:
            raise self._error("read", exc) from exc
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            logger.error("archive object %s is corrupt (hashes to %s)", key, actual)
            raise ArchiveError(
                f"the archived object {key} in {self._where} is corrupt (its bytes "
                f"hash to {actual}); restore it from the store's versions or backup"
            )
        return data

    def exists(self, digest: str) -> bool:
        """Return True when the blob ``digest`` is stored (not verified)."""
        key = self.key(digest)
        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return False
            raise self._error("look up", exc) from exc
        except BotoCoreError as exc:
            raise self._error("look up", exc) from exc
        return True

    def digests(self) -> Iterator[str]:
        """Yield the digest of every stored blob."""
        for key, _ in self._objects():
            yield key.rsplit("/", 1)[-1]

    def orphans(self, known: set[str]) -> list[str]:
        """Return stored blobs not in ``known`` (see ``Archive.orphans``)."""
        return sorted(digest for digest in self.digests() if digest not in known)

    def sweep(self, known: set[str], min_age_s: float = 3600.0) -> list[str]:
        """Delete orphans older than ``min_age_s`` and return their digests.

        In a versioned bucket this adds a delete marker; a version under
        Object Lock stays until its retention ends.
        """
        limit = datetime.now(UTC) - timedelta(seconds=min_age_s)
        removed = []
        for key, modified in self._objects():
            digest = key.rsplit("/", 1)[-1]
            if digest in known or modified > limit:
                continue
            self._call(
                "delete",
                lambda k=key: self._client.delete_object(Bucket=self.bucket, Key=k),
            )
            removed.append(digest)
        if removed:
            logger.info("swept %s orphan blobs from %s", len(removed), self._where)
        return sorted(removed)

    def _objects(self) -> Iterator[tuple[str, datetime]]:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}sha256/"
        )
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"]
                    if is_digest(key.rsplit("/", 1)[-1]):
                        yield key, item["LastModified"]
        except (ClientError, BotoCoreError) as exc:
            raise self._error("list", exc) from exc

    def _call(self, action: str, request: Any) -> Any:
        try:
            return request()
        except (ClientError, BotoCoreError) as exc:
            raise self._error(action, exc) from exc

    def _error(self, action: str, exc: Exception) -> ArchiveError:
        code = _code(exc) if isinstance(exc, ClientError) else ""
        if code in ("NoSuchBucket",) or (action == "check" and code in _MISSING):
            hint = "the bucket does not exist; create it with Object Lock on"
        elif code in _REFUSED_KEYS:
            hint = (
                f"the store refused the bridge's keys ({code}); check "
                "archive.s3.access_key_id, the secret key and the bucket policy"
            )
        elif isinstance(exc, BotoCoreError):
            hint = f"{exc}; check archive.s3.endpoint_url and the network, then retry"
        else:
            name = code or type(exc).__name__
            hint = f"{name}: {exc}; retry, then ask the store's operator"
        return ArchiveError(f"cannot {action} in the archive ({self._where}): {hint}")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
