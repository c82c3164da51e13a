"""``kiosk run``: the whole system on one machine, on its embedded defaults.

It starts a TLS Mosquitto with the generated ACL, the bridge (trust
services, the public HTTP server with the officer console, the fleet pages
and the OTA repository, the kiosk intake over MQTT and its HTTPS endpoint
that requires client certificates), enrolls one kiosk with a one-time token
as a real kiosk would, and runs its agent with simulated devices. With
``--auto-approve`` (the default) a stand-in officer approves every request
at once, so a new user can walk through a whole visit in a browser; without
it, requests wait in the officer console.

This module imports both sides, which no other part may do: it is the
development stack, not something a kiosk or an office deploys.
"""

from __future__ import annotations

import logging
import os
import signal
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import click

from kiosk.errors import KioskError

logger = logging.getLogger(__name__)

KIOSK_ID = "kiosk-demo-01"
PUBLIC_PORT = 8443
KIOSK_LINK_PORT = 8444
AGENT_PORT = 8080


@click.command("run")
@click.option(
    "--auto-approve/--no-auto-approve",
    default=True,
    show_default=True,
    help="Approve every request at once as a stand-in officer.",
)
def run_command(auto_approve: bool) -> None:
    """Run the embedded default stack: broker, bridge and one kiosk agent."""
    stack = Stack()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        stack.start(auto_approve)
        _print_addresses(auto_approve)
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        click.echo("stopping")
        stack.stop()


class Stack:
    """The processes and threads of the development stack."""

    def __init__(self, var: Path = Path("var")) -> None:
        self.var = var
        self._stops: list[Any] = []

    def start(self, auto_approve: bool) -> None:
        """Start everything, in dependency order."""
        from cloud_bridge.config import IntakeSection, load_bridge_config
        from cloud_bridge.fleet.ca import (
            BRIDGE_CERTIFICATE,
            BRIDGE_KEY,
            CA_CERTIFICATE,
            ensure_kiosk_ca,
        )

        config = load_bridge_config(None)
        ca_dir = config.path(config.fleet.ca_dir)
        ensure_kiosk_ca(ca_dir, ["127.0.0.1"])
        self._start_broker(ca_dir, config.fleet.broker_port)
        intake = IntakeSection(
            mqtt_host="127.0.0.1",
            mqtt_port=config.fleet.broker_port,
            ca_file=(ca_dir / CA_CERTIFICATE).absolute(),
            cert_file=(ca_dir / BRIDGE_CERTIFICATE).absolute(),
            key_file=(ca_dir / BRIDGE_KEY).absolute(),
        )
        config = config.model_copy(update={"intake": intake})
        bridge = self._start_bridge(config, ca_dir)
        if auto_approve:
            self._start_officer(bridge)
        self._start_kiosk(bridge)

    def stop(self) -> None:
        """Stop everything, in reverse order."""
        for stop in reversed(self._stops):
            try:
                stop()
            except Exception:  # keep stopping the rest
                logger.exception("stopping a part of the stack failed")

    def _start_broker(self, ca_dir: Path, port: int) -> None:
        from cloud_bridge.fleet.broker_config import write_broker_config

        run_as = "root" if os.geteuid() == 0 else None
        files = write_broker_config(
            self.var / "broker", ca_dir, "127.0.0.1", port, run_as=run_as
        )
        broker = subprocess.Popen(["mosquitto", "-c", str(files.config)])
        self._stops.append(lambda: _terminate(broker))
        time.sleep(0.5)
        if broker.poll() is not None:
            raise click.ClickException(
                f"Mosquitto did not start (exit {broker.returncode}); is port "
                f"{port} taken by another broker?"
            )

    def _start_bridge(self, config: Any, ca_dir: Path) -> Any:
        from cloud_bridge.context import Bridge
        from cloud_bridge.fleet.ca import BROKER_CERTIFICATE, BROKER_KEY, CA_CERTIFICATE
        from cloud_bridge.http.app import create_app
        from cloud_bridge.http.routers import bridge_routers
        from cloud_bridge.intake.blobs import intake_router
        from cloud_bridge.intake.consumer import IntakeConsumer
        from cloud_bridge.trust_services import start_trust_services

        trust = start_trust_services(config)
        self._stops.append(trust.stop)
        bridge = Bridge(config)
        self._stops.append(bridge.close)
        public = create_app(bridge, routers=bridge_routers(bridge))
        self._serve(public, PUBLIC_PORT)
        link = create_app(bridge)
        link.include_router(intake_router(bridge))
        self._serve(
            link,
            KIOSK_LINK_PORT,
            ssl_keyfile=str(ca_dir / BROKER_KEY),
            ssl_certfile=str(ca_dir / BROKER_CERTIFICATE),
            ssl_ca_certs=str(ca_dir / CA_CERTIFICATE),
            ssl_cert_reqs=ssl.CERT_REQUIRED,
        )
        consumer = IntakeConsumer(bridge)
        consumer.start()
        self._stops.append(consumer.stop)
        if not consumer.connected.wait(15):
            raise click.ClickException("the bridge could not connect to Mosquitto")
        return bridge

    def _start_officer(self, bridge: Any) -> None:
        from cloud_bridge.copies import Officer
        from cloud_bridge.decisions import OutboxDecisionSink

        office = bridge.config.office()
        officer = Officer(office.officer_name, office.officer_title)
        sink = OutboxDecisionSink(bridge.store.engine)
        done = threading.Event()

        def approve_pending() -> None:
            while not done.wait(0.2):
                for record in bridge.store.list_requests(state="pending"):
                    try:
                        issued = bridge.copies.certify(record.request_id, officer)
                    except KioskError:  # shown in the log; the loop goes on
                        logger.exception("approving %s failed", record.request_id)
                        continue
                    sink.approved(record, issued)

        thread = threading.Thread(target=approve_pending, daemon=True)
        thread.start()
        self._stops.append(done.set)

    def _start_kiosk(self, bridge: Any) -> None:
        from edge.agent import build_agent
        from edge.config import load_agent_config

        identity = self._enroll(bridge)
        agent_config = load_agent_config(None)
        office = agent_config.office.model_copy(
            update={
                "mqtt_port": identity.broker_port,
                "https_url": f"https://127.0.0.1:{KIOSK_LINK_PORT}",
                "ca_file": identity.ca_path.absolute(),
                "cert_file": identity.certificate_path.absolute(),
                "key_file": identity.key_path.absolute(),
            }
        )
        agent_config = agent_config.model_copy(
            update={"kiosk_id": identity.kiosk_id, "office": office}
        )
        agent = build_agent(agent_config)
        agent.start()
        self._stops.append(agent.stop)
        self._serve(agent.ui.app, AGENT_PORT)

    def _enroll(self, bridge: Any) -> Any:
        """Enroll the demo kiosk through the real endpoint, once."""
        from datetime import timedelta

        import httpx

        from cloud_bridge.fleet.service import Fleet
        from provisioning.enroll import provision
        from provisioning.errors import ProvisioningError
        from provisioning.identity import load_identity

        directory = self.var / "kiosk" / "identity"
        try:
            return load_identity(directory)
        except ProvisioningError:
            logger.info("enrolling %s", KIOSK_ID)
        fleet = Fleet(bridge.config)
        token = fleet.registry.create_token(KIOSK_ID, timedelta(hours=1))
        with httpx.Client(timeout=10) as http:
            return provision(directory, f"http://127.0.0.1:{PUBLIC_PORT}", token, http)

    def _serve(self, app: Any, port: int, **tls: Any) -> None:
        import uvicorn

        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **tls)
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise click.ClickException(f"nothing could listen on port {port}")
            time.sleep(0.05)

        def stop() -> None:
            server.should_exit = True
            thread.join(10)

        self._stops.append(stop)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def _print_addresses(auto_approve: bool) -> None:
    public = f"http://127.0.0.1:{PUBLIC_PORT}"
    click.echo("The embedded stack is running. Open:")
    click.echo(f"  the kiosk's screen:     http://127.0.0.1:{AGENT_PORT}/")
    click.echo(f"  the officer console:    {public}/console/")
    click.echo(f"  the fleet pages:        {public}/fleet/")
    click.echo(f"  verify a copy:          {public}/verify")
    click.echo(f"  look up a copy:         {public}/c/<identifier>")
    click.echo(f"  API description:        {public}/api/docs")
    if auto_approve:
        click.echo("A stand-in officer approves every request at once.")
    click.echo(
        "Add a console user: .venv/bin/kiosk console add-user NAME --role officer"
    )
    click.echo("Stop with Ctrl+C.")
