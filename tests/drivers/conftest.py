"""Fixtures for the driver tests: a private cupsd with a cups-pdf queue.

cupsd runs in the foreground with its own configuration, state, spool and
cache directories under a temporary directory, listening on a free port.
cups-pdf reads ``/etc/cups/cups-pdf-<NAME>.conf`` for a queue whose device
URI is ``cups-pdf:/NAME`` (cups-pdf 3's multiple instances), so each run
writes a configuration of its own there, pointing the output at its
temporary directory, and removes it afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port

PPD = Path("/usr/share/ppd/cups-pdf/CUPS-PDF_opt.ppd")
CUPS_PDF_BACKEND = Path("/usr/lib/cups/backend/cups-pdf")


@dataclass
class CupsServer:
    """A running private cupsd and its cups-pdf queue."""

    host: str
    port: int
    queue: str
    root: Path
    output_dirs: tuple[Path, ...]

    def lpadmin(self, *args: str) -> None:
        """Run lpadmin against this server."""
        subprocess.run(
            ["lpadmin", "-h", f"{self.host}:{self.port}", *args],
            check=True,
            capture_output=True,
            timeout=20,
        )

    def printed(self, job_id: int, timeout: float = 10.0) -> Path:
        """Return the PDF cups-pdf wrote for ``job_id``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for folder in self.output_dirs:
                found = sorted(folder.rglob(f"*job_{job_id}.pdf"))
                if found and found[0].stat().st_size > 0:
                    return found[0]
            time.sleep(0.05)
        raise AssertionError(f"cups-pdf wrote no file for job {job_id}")


def _write_cupsd_conf(root: Path, port: int) -> None:
    (root / "cupsd.conf").write_text(
        f"Listen 127.0.0.1:{port}\nLogLevel warn\nWebInterface No\n"
        "Browsing No\nDefaultAuthType None\n"
        "<Location />\n  Order allow,deny\n  Allow all\n</Location>\n"
        "<Location /admin>\n  Order allow,deny\n  Allow all\n</Location>\n"
        "<Policy default>\n  <Limit All>\n    Order deny,allow\n  </Limit>\n"
        "</Policy>\n"
    )
    (root / "cups-files.conf").write_text(
        f"ServerRoot {root}\nStateDir {root}/state\nRequestRoot {root}/spool\n"
        f"CacheDir {root}/cache\nTempDir {root}/spool/tmp\n"
        f"ErrorLog {root}/log/error_log\nAccessLog {root}/log/access_log\n"
        f"PageLog {root}/log/page_log\nServerBin /usr/lib/cups\n"
        "DataDir /usr/share/cups\nFileDevice No\n"
    )


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"cupsd exited with {process.returncode}")
        result = subprocess.run(
            ["lpstat", "-h", f"127.0.0.1:{port}", "-r"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        if "is running" in result.stdout:
            return
        time.sleep(0.1)
    raise AssertionError("cupsd did not start listening within 15 s")


@pytest.fixture(scope="module")
def cups_server() -> Iterator[CupsServer]:
    """A private cupsd with a cups-pdf queue writing into a temporary folder."""
    for needed in ("cupsd", "lpadmin", "lpstat"):
        if shutil.which(needed) is None:
            pytest.fail(f"{needed} is missing: apt install cups")
    if not PPD.exists() or not CUPS_PDF_BACKEND.exists():
        pytest.fail("cups-pdf is missing: apt install printer-driver-cups-pdf")
    if os.geteuid() != 0:
        pytest.fail("the CUPS tests run cupsd and cups-pdf, which need root")
    # cups-pdf runs Ghostscript as 'nobody' for an unknown user: the folders
    # on its way must be traversable, the anonymous one writable by all.
    root = Path(tempfile.mkdtemp(prefix="kiosk-cups-"))
    root.chmod(0o755)
    for sub in ("state", "spool/tmp", "cache", "log", "out", "anon", "pdfspool"):
        (root / sub).mkdir(parents=True)
    (root / "anon").chmod(0o1777)
    port = free_port()
    queue = f"kiosktest-{uuid.uuid4().hex[:8]}"
    conf = Path(f"/etc/cups/cups-pdf-{queue}.conf")
    conf.write_text(
        f"Out {root}/out\nAnonDirName {root}/anon\nSpool {root}/pdfspool\n"
        f"Log {root}/log\nLabel 1\nAnonUMask 0000\n"
    )
    _write_cupsd_conf(root, port)
    process = subprocess.Popen(
        [
            "cupsd",
            "-f",
            "-c",
            str(root / "cupsd.conf"),
            "-s",
            str(root / "cups-files.conf"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, process)
        server = CupsServer(
            "127.0.0.1", port, queue, root, (root / "anon", root / "out")
        )
        server.lpadmin("-p", queue, "-v", f"cups-pdf:/{queue}", "-E", "-P", str(PPD))
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        conf.unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)
