"""The ``kiosk ota`` commands: set up, bundle, publish, watch and measure updates."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from ota.errors import OtaError

if TYPE_CHECKING:
    from cloud_bridge.config import BridgeConfig
    from cloud_bridge.context import Bridge
    from cloud_bridge.hsm import HsmToken
    from ota.director import Director, Release

logger = logging.getLogger(__name__)

T = TypeVar("T")

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Bridge configuration file (embedded defaults when omitted).",
)


@click.group("ota")
def ota_group() -> None:
    """Publish signed model updates and follow their rollout."""


@ota_group.command("init")
@config_option
def init_command(config_path: Path | None) -> None:
    """Create the signing keys and version 1 of the update repository."""
    from ota.repository import init_repository

    config = _bridge_config(config_path)
    settings = config.ota
    with _online_token(config) as token:
        repository = _run(
            lambda: init_repository(
                config.path(settings.repo_dir),
                config.path(settings.root_key_dir),
                config.path(settings.key_dir),
                settings,
                token=token,
            )
        )
    click.echo(f"update repository created in {repository.repo_dir}")
    click.echo(
        f"move {config.path(settings.root_key_dir)} to offline media now; kiosks "
        f"trust {repository.metadata_dir / '1.root.json'}"
    )


@ota_group.command("bundle")
@click.argument("out", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--version", "version", required=True, help="Bundle version.")
@click.option(
    "--model-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("var/models"),
    show_default=True,
    help="Fetched model files.",
)
@click.option("--face-threshold", type=float, help="New face-match threshold.")
def bundle_command(
    out: Path, version: str, model_dir: Path, face_threshold: float | None
) -> None:
    """Build a bundle of the manifest's models (and optional configuration)."""
    from models.manifest import load_manifest
    from ota.bundle import BundleConfig, build_bundle

    manifest = load_manifest()
    config = BundleConfig(face_threshold=face_threshold)
    _run(lambda: build_bundle(out, model_dir, list(manifest.model), version, config))
    click.echo(f"bundle {version} written to {out} ({out.stat().st_size} bytes)")


@ota_group.command("publish")
@click.argument("bundle", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--channel", default="stable", show_default=True, help="Channel.")
@click.option(
    "--cohort", type=click.IntRange(1, 100), help="Start at this percent of kiosks."
)
@click.option("--kiosk", "kiosks", multiple=True, help="Only these kiosks (repeat).")
@config_option
def publish_command(
    bundle: Path,
    channel: str,
    cohort: int | None,
    kiosks: tuple[str, ...],
    config_path: Path | None,
) -> None:
    """Sign BUNDLE into the repository and start its staged rollout."""
    from ota.publish import publish_bundle
    from ota.repository import open_repository

    config = _bridge_config(config_path)
    settings = config.ota
    bridge = _bridge(config)
    try:
        from ota.director import Director

        token = bridge.token if settings.key_backend == "pkcs11" else None
        repository = _run(
            lambda: open_repository(
                config.path(settings.repo_dir),
                config.path(settings.key_dir),
                settings,
                token,
            )
        )
        director = Director(bridge.store.engine, settings)
        release = _run(
            lambda: publish_bundle(
                repository,
                director,
                bundle,
                channel,
                cohort,
                list(kiosks) or None,
                settings.max_bundle_bytes,
            )
        )
        who = ", ".join(kiosks) if kiosks else f"{release.percent}% of kiosks"
        click.echo(f"published {release.target} (release {release.sequence}) to {who}")
        _notify(config, bridge, director, release)
    finally:
        bridge.close()


@ota_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
def status_command(as_json: bool, config_path: Path | None) -> None:
    """Show each release's rollout and each kiosk's version, state and last error."""
    from ota.director import Director

    config = _bridge_config(config_path)
    bridge = _bridge(config)
    try:
        director = Director(bridge.store.engine, config.ota)
        releases, states = director.releases(), director.states()
    finally:
        bridge.close()
    if as_json:
        data = {
            "releases": [vars(release) for release in releases],
            "kiosks": [
                {**vars(state), "updated_at": state.updated_at.isoformat()}
                for state in states
            ],
        }
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for release in releases:
        click.echo(
            f"release {release.sequence} {release.target} [{release.channel}] "
            f"{release.state} at {release.percent}% {release.reason}".rstrip()
        )
    for state in states:
        click.echo(
            f"{state.kiosk_id:<24} {state.running_version or '-':<22} "
            f"{state.state:<12} {state.last_error}".rstrip()
        )


@ota_group.command("resign-timestamp")
@click.option(
    "--if-due",
    is_flag=True,
    help="Only re-sign what expires within ota.resign_margin_hours (for timers).",
)
@config_option
def resign_command(if_due: bool, config_path: Path | None) -> None:
    """Sign a fresh timestamp so kiosks do not see frozen metadata.

    Snapshot and targets metadata that expire within ota.resign_margin_hours
    are re-signed too. Run it from a timer (deploy/kiosk-ota-resign.timer).
    """
    from datetime import timedelta

    from ota.repository import open_repository

    config = _bridge_config(config_path)
    settings = config.ota
    margin = timedelta(hours=settings.resign_margin_hours)
    with _online_token(config) as token:
        repository = _run(
            lambda: open_repository(
                config.path(settings.repo_dir),
                config.path(settings.key_dir),
                settings,
                token,
            )
        )
        signed = _run(
            lambda: repository.refresh_expiring(margin, force_timestamp=not if_due)
        )
    for role, version in signed.items():
        click.echo(f"{role} version {version} signed")
    if not signed:
        expires = min(_run(repository.expiries).values())
        click.echo(f"nothing due; the earliest expiry is {expires:%Y-%m-%d %H:%M} UTC")


@ota_group.command("bench")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--model-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("var/models"),
    show_default=True,
    help="Fetched model files.",
)
def bench_command(as_json: bool, model_dir: Path) -> None:
    """Publish and install a bundle of the current models locally; time each phase."""
    from ota.bench import describe, run_bench

    result = _run(lambda: run_bench(model_dir))
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        click.echo(describe(result))


def _notify(
    config: BridgeConfig, bridge: Bridge, director: Director, release: Release
) -> None:
    """Send the release's update notices; a broker outage only delays them."""
    from cloud_bridge.fleet.mqtt_client import BrokerAddress
    from cloud_bridge.fleet.registry import FleetRegistry
    from ota.notices import notify_release

    enrolled = [
        record.kiosk_id
        for record in FleetRegistry(bridge.store.engine).kiosks()
        if record.revoked_at is None
    ]
    known = [state.kiosk_id for state in director.states()]
    try:
        sent = notify_release(
            BrokerAddress.for_bridge(config), director, release, enrolled + known
        )
    except OtaError as exc:
        click.echo(f"warning: {exc}", err=True)
        return
    click.echo(f"update notice sent to {sent} kiosks")


@contextmanager
def _online_token(config: BridgeConfig) -> Iterator[HsmToken | None]:
    """Open the bridge's token when the online OTA keys live on it."""
    if config.ota.key_backend != "pkcs11":
        yield None
        return
    from cloud_bridge.errors import HsmError
    from cloud_bridge.hsm import open_token

    token = open_token(config)
    try:
        token.check()
    except HsmError as exc:
        raise click.ClickException(
            f"the OTA keys' token cannot be used: {exc}"
        ) from exc
    try:
        yield token
    finally:
        token.close()


def _bridge_config(path: Path | None) -> BridgeConfig:
    from cloud_bridge.config import load_bridge_config

    return load_bridge_config(path)


def _bridge(config: BridgeConfig) -> Bridge:
    from cloud_bridge.context import Bridge

    return Bridge(config)


def _run(action: Callable[[], T]) -> T:
    try:
        return action()
    except OtaError as exc:
        raise click.ClickException(str(exc)) from exc
