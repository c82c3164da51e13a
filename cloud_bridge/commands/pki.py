"""``kiosk bridge init`` and ``kiosk bridge trust-services``.

``init`` sets up one machine for development, idempotently: the data
directory, a SoftHSM2 token with random PINs, the office's two keys on it,
and the development PKI. Each step prints what it created or found.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import threading
import urllib.parse
from pathlib import Path

import click

from cloud_bridge.commands import config_option
from cloud_bridge.config import BridgeConfig, load_bridge_config
from cloud_bridge.errors import HsmError
from cloud_bridge.hsm import (
    HsmToken,
    create_softhsm_token,
    open_token,
    token_labels,
    write_softhsm_conf,
)
from cloud_bridge.pki import create_dev_pki
from cloud_bridge.store import CopyStore, masked
from cloud_bridge.trust_services import serve_trust_services, service_address

logger = logging.getLogger(__name__)


@click.command("init")
@config_option
def init_command(config_path: Path | None) -> None:
    """Create the development PKI, HSM token, keys and database (idempotent)."""
    config = load_bridge_config(config_path)
    init_data_dir(config)
    with init_token(config) as token:
        init_keys(config, token)
        init_pki(config, token)
    init_database(config)


@click.command("trust-services")
@config_option
@click.option("--host", default=None, help="Address to listen on [pki.revocation_url].")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port to listen on [that of pki.revocation_url].",
)
def trust_services_command(
    config_path: Path | None, host: str | None, port: int | None
) -> None:
    """Serve the local timestamp authority, CRL and OCSP responder."""
    config = load_bridge_config(config_path)
    _warn_if_tsa_elsewhere(config, host, port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    with serve_trust_services(config, host, port) as running:
        click.echo(
            f"serving TSA {running.tsa_url}, CRL and OCSP at {running.url}; "
            "Ctrl-C stops"
        )
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        click.echo("stopping")


def init_data_dir(config: BridgeConfig) -> None:
    """Create the data directory."""
    data_dir = config.data_dir
    _report("data directory", data_dir, created=not data_dir.is_dir())
    data_dir.mkdir(parents=True, exist_ok=True)


def init_token(config: BridgeConfig) -> HsmToken:
    """Create the SoftHSM2 configuration and token if absent; return the token.

    A token of another PKCS#11 module (no ``hsm.softhsm_conf``) must exist.
    """
    hsm = config.hsm
    module = config.path(hsm.module)
    conf = config.path(hsm.softhsm_conf).absolute() if hsm.softhsm_conf else None
    if conf is not None:
        token_dir = config.path(hsm.softhsm_token_dir)
        _report("SoftHSM2 configuration", conf, write_softhsm_conf(conf, token_dir))
    if hsm.token_label in token_labels(module, conf):
        _check_pin_known(config)
        _report("HSM token", hsm.token_label, created=False)
    elif conf is None:
        raise HsmError(
            f"no token labelled {hsm.token_label!r} in {module}; create it with "
            "your HSM's tools, then run 'kiosk bridge init' again"
        )
    else:
        pin = _user_pin(config)
        so_pin = _secret_file(config.path(hsm.so_pin_file), "SO PIN")
        create_softhsm_token(conf, hsm.token_label, pin, so_pin)
        _report("HSM token", hsm.token_label, created=True)
    token = open_token(config)
    token.check()
    return token


def init_keys(config: BridgeConfig, token: HsmToken) -> None:
    """Generate the signing and seal keys on the token if absent."""
    for label in (config.hsm.signing_key_label, config.hsm.seal_key_label):
        exists = token.has_private_key(label)
        if not exists:
            token.generate_ec_key(label)
        _report("key on the token", label, created=not exists)


def init_pki(config: BridgeConfig, token: HsmToken) -> None:
    """Create the development PKI (and store its certificates on the token)."""
    pki = create_dev_pki(config, token)
    for item in pki.created:
        click.echo(f"created {item}")
    _report("development PKI", pki.dir, created=bool(pki.created))


def init_database(config: BridgeConfig) -> None:
    """Create or upgrade the bridge database's schema."""
    store = CopyStore(config.database_url())
    try:
        before = store.schema_version()
        after = store.migrate()
    finally:
        store.close()
    _report(
        f"database schema version {after}",
        masked(config.database_url()),
        created=after != before,
    )


def _user_pin(config: BridgeConfig) -> str:
    hsm = config.hsm
    if hsm.pin is not None:
        return hsm.pin.get_secret_value()
    if hsm.pin_file is None:
        raise HsmError("set hsm.pin or hsm.pin_file so init can give the token a PIN")
    return _secret_file(config.path(hsm.pin_file), "user PIN")


def _check_pin_known(config: BridgeConfig) -> None:
    hsm = config.hsm
    if hsm.pin is not None or hsm.pin_file is None:
        return
    pin_file = config.path(hsm.pin_file)
    if not pin_file.exists():
        raise HsmError(
            f"token {hsm.token_label!r} exists but its PIN file {pin_file} does "
            "not; restore the file, set hsm.pin, or delete the token directory "
            f"{config.path(hsm.softhsm_token_dir)} to start over"
        )


def _secret_file(path: Path, what: str) -> str:
    """Return the secret in ``path``, first writing a random one (mode 0600)."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")
    _report(what, path, created=True)
    return secret


def _report(what: str, where: object, created: bool) -> None:
    click.echo(f"{'created' if created else 'found'} {what}: {where}")


def _warn_if_tsa_elsewhere(
    config: BridgeConfig, host: str | None, port: int | None
) -> None:
    served_host, served_port = service_address(config)
    tsa = urllib.parse.urlsplit(config.timestamp.url)
    if (tsa.hostname, tsa.port) != (host or served_host, port or served_port):
        logger.warning(
            "timestamp.url %s is not served here; copies will be timestamped there",
            config.timestamp.url,
        )
