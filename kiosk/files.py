"""Write files so that a crash leaves either the old content or the new."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(
    path: Path, data: bytes, mode: int = 0o644, *, exclusive: bool = False
) -> None:
    """Replace ``path`` with ``data``, created with ``mode``, fsynced, atomically.

    With ``exclusive`` the file is hard-linked into place instead, which
    fails when ``path`` exists: of several processes writing at once, one
    wins and the others keep what it wrote.

    Raises:
        FileExistsError: ``exclusive`` and ``path`` exists.
        OSError: the file could not be written; no temporary file is left.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            os.link(tmp, path)
        else:
            Path(tmp).replace(path)
    finally:
        Path(tmp).unlink(missing_ok=True)
