"""Fetch update metadata and targets over HTTP(S), resuming interrupted targets.

:class:`HttpFetcher` is the network seam of TUF's ``Updater``: it takes an
``httpx.Client`` (mutual TLS in production, an in-process client in tests).
:func:`download_resumable` fetches a target into a ``.part`` file with HTTP
Range requests, so a cut connection or a power cut costs only what was not
yet written; it never writes more than the length signed in the metadata.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
from tuf.api.exceptions import DownloadHTTPError

from ota.errors import DiskFullError, UpdateDownloadError, UpdateRefusedError
from ota.tufapi import FetcherInterface

logger = logging.getLogger(__name__)

CHUNK = 256 * 1024
CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


class HttpFetcher(FetcherInterface):
    """Download metadata for TUF's ``Updater`` through an injected httpx client."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def _fetch(self, url: str) -> Iterator[bytes]:
        request = self.client.build_request("GET", url)
        response = self.client.send(request, stream=True)
        if response.status_code != httpx.codes.OK:
            response.close()
            raise DownloadHTTPError(
                f"{url} answered {response.status_code}", response.status_code
            )
        return _chunks(response)


def _chunks(response: httpx.Response) -> Iterator[bytes]:
    try:
        yield from response.iter_bytes(CHUNK)
    finally:
        response.close()


def download_resumable(client: httpx.Client, url: str, part: Path, length: int) -> int:
    """Complete ``part`` from ``url`` up to ``length`` bytes; return bytes fetched.

    Raises:
        UpdateRefusedError: the server sends more than ``length`` bytes.
        DiskFullError: the disk filled up while writing.
        UpdateDownloadError: the connection failed or the answer was wrong;
            what was written is kept and the next attempt resumes from it.
    """
    offset = part.stat().st_size if part.exists() else 0
    if offset > length:
        part.unlink()
        offset = 0
    if offset == length:
        return 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        with client.stream("GET", url, headers=headers) as response:
            offset = _starting_offset(response, offset, part)
            return _append(response, part, offset, length)
    except httpx.HTTPError as exc:
        raise UpdateDownloadError(
            f"download of {url} was interrupted ({exc}); it resumes at the next try"
        ) from exc


def _starting_offset(response: httpx.Response, offset: int, part: Path) -> int:
    if response.status_code == httpx.codes.PARTIAL_CONTENT:
        match = CONTENT_RANGE.match(response.headers.get("content-range", ""))
        if not match or int(match.group(1)) != offset:
            raise UpdateDownloadError("the server answered a different byte range")
        return offset
    if response.status_code == httpx.codes.OK:
        if offset:
            logger.info("the server ignored the range request; starting again")
            part.write_bytes(b"")
        return 0
    raise UpdateDownloadError(
        f"the update server answered {response.status_code} for {response.url}"
    )


def _append(response: httpx.Response, part: Path, offset: int, length: int) -> int:
    fetched = 0
    try:
        with part.open("ab") as out:
            for chunk in response.iter_bytes():
                if offset + fetched + len(chunk) > length:
                    raise UpdateRefusedError(
                        f"the server sent more than the {length} bytes the signed "
                        "metadata allows; download stopped"
                    )
                out.write(chunk)
                fetched += len(chunk)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskFullError(
                f"the disk filled up while downloading {part.name}; free space "
                "and the update is retried"
            ) from exc
        raise UpdateDownloadError(f"cannot write {part}: {exc}") from exc
    return fetched
