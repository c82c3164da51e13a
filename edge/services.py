"""The agent's background services: telemetry, certificate renewal and updates.

:func:`build_services` makes them from the agent's configuration and the
kiosk's identity (``kiosk provision``); :class:`AgentServices` starts and
stops them together. Without an identity the agent runs without them and
logs why. The parts meet here and nowhere else:

- the update client reports each install through the telemetry outbox,
  and update notices arriving on the telemetry connection go to its worker;
- after a certificate renewal, the telemetry connection and the agent's
  own links (anything with ``reload_certificate()``) load the new files;
- when the kiosk key is on a token, the telemetry connection goes through
  the agent's TLS tunnel, which reloads first after a renewal, and renewal
  certifies the same token key again;
- a watcher notices each visit's end, counts it for the health report and
  runs the commands deferred during the visit (the visit's events come from
  the controller, see :mod:`edge.events`).
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Protocol

import httpx

from edge.config import AgentConfig, ServicesSection
from edge.telemetry.commands import Action
from edge.telemetry.health import HealthSources, ReportsHealth
from edge.telemetry.outbox import Outbox
from edge.telemetry.service import TelemetryService
from edge.tunnel import TlsTunnel
from ota.client import UpdateClient
from ota.health import ModelHealthCheck
from ota.service import UpdateService
from protocol.commands import ArgValue
from protocol.updates import InstallReport
from provisioning.errors import ProvisioningError
from provisioning.identity import KioskIdentity, load_identity
from provisioning.keys import token_key_opener
from provisioning.renewal import CertificateRenewer

logger = logging.getLogger(__name__)

WATCH_S = 1.0
RECONNECT_AFTER_ANSWER_S = 2.0
OUTBOX_FILE = "telemetry-outbox.db"


class ReloadsCertificate(Protocol):
    """A link that can switch to the renewed certificate files."""

    def reload_certificate(self) -> None:
        """Load the certificate and key files as they are now."""


@dataclass
class AgentServices:
    """The background services of one agent, started and stopped together."""

    telemetry: TelemetryService | None = None
    renewer: CertificateRenewer | None = None
    updates: UpdateService | None = None
    links: list[ReloadsCertificate] = field(default_factory=list)
    busy: Callable[[], bool] = lambda: False
    http: httpx.Client | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _watcher: threading.Thread | None = None

    def start(self) -> None:
        """Start every configured service and the visit watcher."""
        if self.telemetry is not None:
            self.telemetry.start()
            self.telemetry.event("agent_started")
        if self.renewer is not None:
            self.renewer.start()
        if self.updates is not None:
            self.updates.start()
        self._watcher = threading.Thread(
            target=self._watch, name="visit-watch", daemon=True
        )
        self._watcher.start()

    def stop(self) -> None:
        """Stop every service; what is queued stays in the outbox."""
        self._stop.set()
        if self.updates is not None:
            self.updates.stop()
        if self.renewer is not None:
            self.renewer.stop()
        if self.telemetry is not None:
            self.telemetry.stop()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        if self.http is not None:
            self.http.close()

    def certificate_renewed(self, identity: KioskIdentity) -> None:
        """Make every connection use the renewed certificate."""
        logger.info("certificate renewed; reconnecting with it")
        users: list[ReloadsCertificate] = list(self.links)
        if self.telemetry is not None:
            users.append(self.telemetry)
        for user in users:
            try:
                user.reload_certificate()
            except Exception:  # the other links must still get the new files
                logger.exception("%s could not load the new certificate", user)

    def report_install(self, report: InstallReport) -> None:
        """Send an update's install report through the telemetry outbox."""
        if self.telemetry is not None:
            self.telemetry.send_install_report(report)

    def _watch(self) -> None:
        was_busy = False
        while not self._stop.wait(WATCH_S):
            try:
                busy = self.busy()
                if busy != was_busy:
                    self._visit_changed(busy)
                was_busy = busy
            except Exception:
                logger.exception("the visit watcher failed; it carries on")

    def _visit_changed(self, busy: bool) -> None:
        # The visit's own events come from the controller (edge.events); here
        # the end of a visit only counts it and runs the deferred commands.
        telemetry = self.telemetry
        if telemetry is None or busy:
            return
        telemetry.sources.counters.visits += 1
        telemetry.visit_finished()


def build_services(
    config: AgentConfig,
    *,
    busy: Callable[[], bool],
    devices: Callable[[], Mapping[str, ReportsHealth]] = dict,
    links: Sequence[ReloadsCertificate] = (),
    software_version: str = "unknown",
    http: httpx.Client | None = None,
    tunnel: TlsTunnel | None = None,
) -> AgentServices:
    """Build the services ``config.services`` turns on (nothing is started).

    Args:
        busy: whether a citizen's visit is under way (updates and ordinary
            commands wait for it to end).
        devices: the drivers' health report.
        links: the agent's own connections to reload after a renewal.
        http: client for the bridge (renewal, updates); one is made (and
            closed by :meth:`AgentServices.stop`) if None.
        tunnel: the agent's TLS tunnel when its key is on a token (not
            started yet): telemetry is routed through it, and it reloads
            the renewed certificate before the links reconnect.
    """
    section = config.services
    reloaders = [*([tunnel] if tunnel is not None else []), *links]
    services = AgentServices(links=reloaders, busy=busy)
    identity = _identity(config)
    if identity is None:
        return services
    if http is None:
        http = _bridge_http(section)
        services.http = http  # made here, so closed by stop()
    if section.renewal:
        services.renewer = _renewer(config, section, http, services)
    if section.telemetry:
        actions: dict[str, Action] = {}
        if services.renewer is not None:
            actions["renew_certificate"] = _renew_action(services.renewer, services)
        services.telemetry = _telemetry(
            config, identity, devices, software_version, busy, actions
        )
        if tunnel is not None:
            local = tunnel.route(identity.broker_host, identity.broker_port)
            services.telemetry.publisher.use_tunnel(*local)
    if section.updates:
        services.updates = _updates(identity, section, http, busy, services)
    if services.telemetry is not None and services.updates is not None:
        services.telemetry.publisher.on_update = services.updates.notify
        client = services.updates.client
        services.telemetry.sources.model_version = lambda: (
            client.running_version() or "unknown"
        )
    return services


def _identity(config: AgentConfig) -> KioskIdentity | None:
    directory = config.path(config.services.identity_dir)
    try:
        identity = load_identity(directory)
        identity.certificate()
    except ProvisioningError as exc:
        logger.warning("telemetry, certificate renewal and updates are off: %s", exc)
        return None
    if identity.kiosk_id != config.kiosk_id:
        logger.warning(
            "the identity in %s names kiosk %s, the configuration %s; the "
            "services use the identity's",
            directory,
            identity.kiosk_id,
            config.kiosk_id,
        )
    return identity


def _bridge_http(section: ServicesSection) -> httpx.Client:
    verify: ssl.SSLContext | bool = True
    if section.bridge_ca_file is not None:
        verify = ssl.create_default_context(cafile=str(section.bridge_ca_file))
    return httpx.Client(timeout=section.bridge_timeout_s, verify=verify)


def _renewer(
    config: AgentConfig,
    section: ServicesSection,
    http: httpx.Client,
    services: AgentServices,
) -> CertificateRenewer:
    return CertificateRenewer(
        config.path(section.identity_dir),
        http,
        before=timedelta(days=section.renew_before_days),
        check_s=section.renewal_check_s,
        retry_min_s=section.renewal_retry_min_s,
        retry_max_s=section.renewal_retry_max_s,
        on_renewed=services.certificate_renewed,
        open_key=token_key_opener(section.key),
    )


def _telemetry(
    config: AgentConfig,
    identity: KioskIdentity,
    devices: Callable[[], Mapping[str, ReportsHealth]],
    software_version: str,
    busy: Callable[[], bool],
    actions: dict[str, Action],
) -> TelemetryService:
    section = config.services
    sources = HealthSources(
        identity.kiosk_id,
        devices=devices,
        software_version=software_version,
        disk_path=config.data_dir,
    )
    outbox = Outbox(config.path(Path(OUTBOX_FILE)), section.outbox_max_rows)
    return TelemetryService(
        identity,
        outbox,
        sources,
        busy=busy,
        actions=actions,
        interval_s=section.health_interval_s,
    )


def _renew_action(renewer: CertificateRenewer, services: AgentServices) -> Action:
    """Return the ``renew_certificate`` command: renew, answer, then reconnect."""

    def renew(_args: dict[str, ArgValue]) -> dict[str, ArgValue]:
        identity = renewer.renew_now(announce=False)
        # The answer leaves on the current connection; reconnect after it.
        timer = threading.Timer(
            RECONNECT_AFTER_ANSWER_S, services.certificate_renewed, (identity,)
        )
        timer.daemon = True
        timer.start()
        return {"expires_at": identity.expires_at().isoformat()}

    return renew


def _updates(
    identity: KioskIdentity,
    section: ServicesSection,
    http: httpx.Client,
    busy: Callable[[], bool],
    services: AgentServices,
) -> UpdateService | None:
    settings = section.ota
    if (
        not settings.trusted_root.exists()
        and not (settings.ota_dir / "tuf" / "root.json").exists()
    ):
        logger.warning(
            "updates are off: the trusted root metadata %s is missing; install "
            "the office's root.json there",
            settings.trusted_root,
        )
        return None
    client = UpdateClient(
        identity.kiosk_id,
        settings,
        http,
        health_check=ModelHealthCheck(settings),
        busy=busy,
        reporter=services.report_install,
    )
    return UpdateService(client, tick_s=section.update_tick_s)
