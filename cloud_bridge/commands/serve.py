"""``kiosk bridge serve`` and ``kiosk bridge run`` (the embedded default stack)."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from urllib.parse import urlsplit

import click
import uvicorn

from cloud_bridge.commands import config_option
from cloud_bridge.config import BridgeConfig, load_bridge_config

logger = logging.getLogger(__name__)


@click.command("serve")
@config_option
@click.option("--port", type=int, help="Port (default: http.port).")
def serve_command(config_path: Path | None, port: int | None) -> None:
    """Serve the bridge's HTTP API and pages."""
    config = load_bridge_config(config_path)
    _serve(config, port or config.http.port)


@click.command("run")
@config_option
def run_command(config_path: Path | None) -> None:
    """Run the embedded default stack: trust services and the bridge."""
    from cloud_bridge.trust_services import serve_trust_services

    config = load_bridge_config(config_path)
    trust = urlsplit(config.timestamp.url)
    host, port = trust.hostname or "127.0.0.1", trust.port or 80
    with serve_trust_services(config, host, port):
        base = f"http://{config.http.host}:{config.http.port}"
        click.echo("The embedded stack is running. Open:")
        click.echo(f"  verify a copy:      {base}/verify")
        click.echo(f"  look up a copy:     {base}/c/<identifier>")
        click.echo(f"  API description:    {base}/api/docs")
        click.echo(f"  seal trust list:    {base}/trust-list.json")
        click.echo(f"  timestamp service:  {config.timestamp.url}")
        click.echo("Make a copy in another shell with:")
        click.echo("  .venv/bin/kiosk copy make PAGE.jpg --out copy.pdf")
        click.echo("Stop with Ctrl+C.")
        _serve(config, config.http.port)


def _serve(config: BridgeConfig, port: int) -> None:
    from cloud_bridge.context import Bridge
    from cloud_bridge.http.app import create_app
    from cloud_bridge.http.routers import bridge_routers

    bridge = Bridge(config)
    try:
        uvicorn.run(
            create_app(bridge, routers=bridge_routers(bridge)),
            host=config.http.host,
            port=port,
            log_level="warning",
            access_log=False,
        )
    finally:
        bridge.close()


@click.command("intake")
@config_option
@click.option("--port", default=8444, show_default=True, help="HTTPS port.")
@click.option(
    "--cert",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The server certificate kiosks see (PEM).",
)
@click.option(
    "--key",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Its private key (PEM).",
)
@click.option(
    "--client-ca",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The kiosk CA: only kiosks it certified may connect.",
)
def intake_command(
    config_path: Path | None, port: int, cert: Path, key: Path, client_ca: Path
) -> None:
    """Take kiosks' requests over MQTT and their page images over mutual TLS."""
    from cloud_bridge.context import Bridge
    from cloud_bridge.http.app import create_app
    from cloud_bridge.intake.blobs import intake_router
    from cloud_bridge.intake.consumer import IntakeConsumer

    config = load_bridge_config(config_path)
    if config.intake.cert_file is None:
        raise click.ClickException(
            "intake.cert_file, intake.key_file and intake.ca_file must name the "
            "bridge's MQTT client certificate (see 'kiosk bridge broker-config')"
        )
    bridge = Bridge(config)
    consumer = IntakeConsumer(bridge)
    consumer.start()
    app = create_app(bridge)
    app.include_router(intake_router(bridge))
    try:
        uvicorn.run(
            app,
            host=config.http.host,
            port=port,
            log_level="warning",
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            ssl_ca_certs=str(client_ca),
            ssl_cert_reqs=ssl.CERT_REQUIRED,
        )
    finally:
        consumer.stop()
        bridge.close()
