"""``kiosk fleet ...`` and ``kiosk bridge broker-config`` commands."""

from __future__ import annotations

import json
import logging
import signal
import threading
from datetime import timedelta
from pathlib import Path

import click

from cloud_bridge.commands import config_option
from cloud_bridge.config import BridgeConfig, load_bridge_config
from cloud_bridge.errors import FleetError
from cloud_bridge.fleet.broker_config import reload_broker, write_broker_config
from cloud_bridge.fleet.ca import KioskCa
from cloud_bridge.fleet.ingest import Ingestor
from cloud_bridge.fleet.mqtt_client import BrokerAddress
from cloud_bridge.fleet.retention import (
    DEFAULT_BATCH_ROWS,
    configured_retention,
    prune,
)
from cloud_bridge.fleet.service import Fleet
from cloud_bridge.fleet.web import view_json

logger = logging.getLogger(__name__)


def _fleet(config_path: Path | None) -> Fleet:
    return Fleet(load_bridge_config(config_path))


@click.group("fleet")
def fleet_group() -> None:
    """Enroll, list and revoke kiosks; run the telemetry consumer."""


@fleet_group.command("ls")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def ls_command(config_path: Path | None, as_json: bool) -> None:
    """List kiosks with their state, last contact and alerts."""
    fleet = _fleet(config_path)
    try:
        rows = [view_json(v) for v in fleet.views()]
    finally:
        fleet.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'KIOSK':<24} {'STATE':<8} {'LAST SEEN':<20} ALERTS")
    for row in rows:
        seen = (row["last_seen"] or "never")[:19]
        alerts = ", ".join(row["alerts"]) or "-"
        click.echo(f"{row['kiosk_id']:<24} {row['state']:<8} {seen:<20} {alerts}")


@fleet_group.command("enroll-token")
@config_option
@click.argument("kiosk_id")
@click.option("--hours", type=click.IntRange(1, 720), default=None, help="Lifetime.")
def enroll_token_command(
    config_path: Path | None, kiosk_id: str, hours: int | None
) -> None:
    """Print a one-time enrollment token for KIOSK_ID."""
    fleet = _fleet(config_path)
    try:
        lifetime = timedelta(hours=hours or fleet.config.fleet.token_hours)
        token = fleet.registry.create_token(kiosk_id, lifetime)
    finally:
        fleet.close()
    click.echo(token)


@fleet_group.command("revoke")
@config_option
@click.argument("kiosk_id")
def revoke_command(config_path: Path | None, kiosk_id: str) -> None:
    """Revoke KIOSK_ID's certificates, rewrite the CRL and reload the broker."""
    fleet = _fleet(config_path)
    try:
        crl = fleet.enrollment.revoke(kiosk_id)
    finally:
        fleet.close()
    click.echo(f"kiosk {kiosk_id} revoked; CRL written to {crl}")
    _push_crl(fleet.config)


@fleet_group.command("crl")
@config_option
def crl_command(config_path: Path | None) -> None:
    """Rewrite the kiosk CRL and reload the broker (run daily from a timer)."""
    fleet = _fleet(config_path)
    try:
        path = fleet.enrollment.write_crl()
    finally:
        fleet.close()
    click.echo(f"CRL written to {path}")
    _push_crl(fleet.config)


def _push_crl(config: BridgeConfig) -> None:
    """Make the broker read the new CRL, or say how to."""
    section = config.fleet
    pid_file = config.path(section.broker_pid_file) if section.broker_pid_file else None
    try:
        how = reload_broker(pid_file, section.broker_reload_command)
    except FleetError as exc:
        raise click.ClickException(
            f"the CRL is written but the broker did not reload: {exc}"
        ) from exc
    if how is None:
        click.echo(
            "set fleet.broker_pid_file or fleet.broker_reload_command so the broker "
            "reloads by itself; until then send it SIGHUP"
        )
    else:
        click.echo(f"broker reloaded ({how}); revoked kiosks are refused from now on")


@fleet_group.command("prune")
@config_option
@click.option(
    "--batch-rows",
    type=click.IntRange(1, 1_000_000),
    default=DEFAULT_BATCH_ROWS,
    show_default=True,
    help="Rows deleted per transaction.",
)
def prune_command(config_path: Path | None, batch_rows: int) -> None:
    """Delete telemetry older than fleet.*_retention_days (run daily)."""
    fleet = _fleet(config_path)
    section = fleet.config.fleet
    days = configured_retention(
        section.health_retention_days,
        section.events_retention_days,
        section.commands_retention_days,
    )
    try:
        deleted = prune(fleet.registry.engine, days, batch_rows)
    finally:
        fleet.close()
    for name, count in deleted.items():
        click.echo(f"{name}: {count} rows older than {days[name]} days deleted")


@fleet_group.command("ingest")
@config_option
@click.option("--client-id", default=None, help="MQTT client id of this instance.")
def ingest_command(config_path: Path | None, client_id: str | None) -> None:
    """Consume kiosk telemetry into the database until stopped (SIGTERM)."""
    config = load_bridge_config(config_path)
    fleet = Fleet(config)
    ingestor = _ingestor(config, fleet, client_id)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ingestor.start()
    click.echo(f"consuming kiosk telemetry from {config.fleet.broker_host}")
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        ingestor.stop()
        fleet.close()


def _ingestor(config: BridgeConfig, fleet: Fleet, client_id: str | None) -> Ingestor:
    from ota.notices import AnnouncingDirector

    section = config.fleet
    ingestor = Ingestor(
        fleet.registry,
        BrokerAddress.for_bridge(config),
        share_group=section.share_group,
        batch_size=section.batch_size,
        batch_wait_ms=section.batch_wait_ms,
        max_payload_bytes=section.max_payload_bytes,
        client_id=client_id,
    )
    # Install reports advance or halt the rollouts they concern; a wider
    # cohort is told at once.
    ingestor.director = AnnouncingDirector(
        fleet.registry.engine,
        config.ota,
        BrokerAddress.for_bridge(config),
        lambda: [k.kiosk_id for k in fleet.registry.kiosks() if k.revoked_at is None],
    )
    return ingestor


@click.command("broker-config")
@config_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var/broker"),
    show_default=True,
    help="Directory for mosquitto.conf and mosquitto.acl.",
)
@click.option("--host", default=None, help="Listen address (fleet.broker_host).")
def broker_config_command(
    config_path: Path | None, out_dir: Path, host: str | None
) -> None:
    """Write the Mosquitto configuration (TLS, client certificates, ACL, CRL)."""
    config = load_bridge_config(config_path)
    ca = KioskCa.from_config(config)
    listen = host or config.fleet.broker_host
    pid_file = config.fleet.broker_pid_file
    files = write_broker_config(
        out_dir,
        ca.dir,
        listen,
        config.fleet.broker_port,
        pid_file=config.path(pid_file) if pid_file else None,
    )
    click.echo(
        f"wrote {files.config} and {files.acl}; start: mosquitto -c {files.config}"
    )
