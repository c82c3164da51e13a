"""Write the Mosquitto configuration and ACL the fleet relies on.

TLS only, client certificates required and issued by the kiosk CA, the
certificate's common name as the user name, the kiosk CRL, no anonymous
clients; a kiosk writes only below ``kiosk/<cn>/`` and reads only
``office/<cn>/``; the bridge's own certificate may do anything.

Mosquitto reads the CRL when it starts and when it gets SIGHUP, so after a
revocation :func:`reload_broker` tells it to, through its pid file or a
command (``systemctl reload mosquitto``); the CRL itself is replaced
atomically, so the broker never reads half a file.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cloud_bridge.errors import FleetError
from cloud_bridge.fleet.ca import (
    BRIDGE_USERNAME,
    BROKER_CERTIFICATE,
    BROKER_KEY,
    CA_CERTIFICATE,
    CRL_FILE,
    write_file,
)

logger = logging.getLogger(__name__)

CONFIG_NAME = "mosquitto.conf"
ACL_NAME = "mosquitto.acl"
MAX_PACKET_BYTES = 262_144
RELOAD_TIMEOUT_S = 30


@dataclass(frozen=True)
class BrokerFiles:
    """The configuration and ACL files written for the broker."""

    config: Path
    acl: Path


def acl_text() -> str:
    """Return the ACL: the bridge reads and writes all, kiosks only their own."""
    return (
        f"user {BRIDGE_USERNAME}\n"
        "topic readwrite #\n"
        "\n"
        "pattern write kiosk/%u/#\n"
        "pattern read office/%u/#\n"
    )


def config_text(
    ca_dir: Path,
    acl: Path,
    host: str,
    port: int,
    *,
    run_as: str | None = None,
    max_connections: int = -1,
    persistence_dir: Path | None = None,
    pid_file: Path | None = None,
) -> str:
    """Return the Mosquitto configuration for one TLS listener.

    With ``persistence_dir`` the broker keeps the bridge's persistent session
    (and the messages queued for it) across its own restarts.
    """
    persistence = (
        ["persistence true", f"persistence_location {persistence_dir}/"]
        if persistence_dir
        else ["persistence false"]
    )
    lines = [
        "# Written by 'kiosk bridge broker-config'; regenerate rather than edit.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"acl_file {acl}",
        *persistence,
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        f"max_packet_size {MAX_PACKET_BYTES}",
        # The bridge's session may queue a burst of the whole fleet's
        # messages while it restarts; bounded by bytes rather than count.
        "max_queued_messages 0",
        "max_queued_bytes 1000000000",
        f"listener {port} {host}",
        "protocol mqtt",
        f"cafile {ca_dir / CA_CERTIFICATE}",
        f"certfile {ca_dir / BROKER_CERTIFICATE}",
        f"keyfile {ca_dir / BROKER_KEY}",
        f"crlfile {ca_dir / CRL_FILE}",
        "require_certificate true",
        "use_identity_as_username true",
        "tls_version tlsv1.2",
        f"max_connections {max_connections}",
    ]
    if run_as:
        lines.insert(1, f"user {run_as}")
    if pid_file:
        lines.insert(1, f"pid_file {pid_file}")
    return "\n".join(lines) + "\n"


def write_broker_config(
    out_dir: Path,
    ca_dir: Path,
    host: str,
    port: int,
    *,
    run_as: str | None = None,
    pid_file: Path | None = None,
) -> BrokerFiles:
    """Write ``mosquitto.conf`` and ``mosquitto.acl`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    acl = out_dir / ACL_NAME
    conf = out_dir / CONFIG_NAME
    data = (out_dir / "data").absolute()
    data.mkdir(exist_ok=True)
    write_file(acl, acl_text().encode("ascii"), 0o644)
    text = config_text(
        ca_dir.absolute(),
        acl.absolute(),
        host,
        port,
        run_as=run_as,
        persistence_dir=data,
        pid_file=pid_file.absolute() if pid_file else None,
    )
    write_file(conf, text.encode("ascii"), 0o644)
    logger.info("broker configuration written to %s", conf)
    return BrokerFiles(conf, acl)


def reload_broker(pid_file: Path | None, command: Sequence[str] = ()) -> str | None:
    """Make the broker read its CRL again; return how, or None if unconfigured.

    ``command`` wins when given; otherwise the process in ``pid_file`` gets
    SIGHUP.

    Raises:
        FleetError: the command failed, or the pid file names no running broker.
    """
    if command:
        _run_reload(command)
        return " ".join(command)
    if pid_file is None:
        return None
    pid = _read_pid(pid_file)
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError as exc:
        raise FleetError(
            f"no broker runs as process {pid} (from {pid_file}); start Mosquitto "
            "or fix fleet.broker_pid_file, then run 'kiosk fleet crl'"
        ) from exc
    except PermissionError as exc:
        raise FleetError(
            f"not allowed to signal the broker (process {pid}); run the bridge as "
            "the broker's user or set fleet.broker_reload_command"
        ) from exc
    logger.info("sent the broker (process %s) SIGHUP to read the CRL", pid)
    return f"SIGHUP to process {pid}"


def _read_pid(pid_file: Path) -> int:
    try:
        text = pid_file.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise FleetError(
            f"cannot read the broker's pid file {pid_file}: {exc.strerror}; is "
            "Mosquitto running with that pid_file?"
        ) from exc
    if not text.isdigit() or int(text) <= 1:
        raise FleetError(f"the broker's pid file {pid_file} holds no process id")
    return int(text)


def _run_reload(command: Sequence[str]) -> None:
    try:
        result = subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            timeout=RELOAD_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FleetError(f"the broker reload command could not run: {exc}") from exc
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()[:300]
        raise FleetError(
            f"the broker reload command failed (exit {result.returncode}): {output}"
        )
    logger.info("broker told to read the CRL with %s", command[0])
