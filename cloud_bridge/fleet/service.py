"""The fleet's collaborators for one bridge process, opened on first use."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property

from cloud_bridge.config import BridgeConfig
from cloud_bridge.fleet.alerts import KioskView, view
from cloud_bridge.fleet.ca import KioskCa
from cloud_bridge.fleet.commander import Commander
from cloud_bridge.fleet.enrollment import EnrollmentService
from cloud_bridge.fleet.ingest import IngestStats
from cloud_bridge.fleet.mqtt_client import BrokerAddress
from cloud_bridge.fleet.registry import FleetRegistry


class Fleet:
    """Registry, CA, enrollment and commands built from the bridge configuration."""

    def __init__(
        self, config: BridgeConfig, registry: FleetRegistry | None = None
    ) -> None:
        self.config = config
        self._registry = registry
        self.ingest_stats: list[IngestStats] = []

    @cached_property
    def registry(self) -> FleetRegistry:
        """The fleet tables, migrated on first use."""
        return self._registry or FleetRegistry.open(self.config.database_url())

    @cached_property
    def ca(self) -> KioskCa:
        """The kiosk CA (created when absent)."""
        return KioskCa.from_config(self.config)

    @cached_property
    def enrollment(self) -> EnrollmentService:
        """Enrollment, renewal and revocation."""
        fleet = self.config.fleet
        return EnrollmentService(
            self.ca, self.registry, fleet.public_broker_host, fleet.broker_port
        )

    @cached_property
    def commander(self) -> Commander:
        """The publisher of signed commands (connects on first command)."""
        return Commander(
            self.registry,
            BrokerAddress.for_bridge(self.config),
            self.ca.command_key(),
            timedelta(seconds=self.config.fleet.command_ttl_s),
        )

    def views(self) -> list[KioskView]:
        """Return every kiosk with its state and alerts."""
        return [view(record, self.config.fleet) for record in self.registry.kiosks()]

    def close(self) -> None:
        """Disconnect and release the database."""
        if "commander" in self.__dict__:
            self.commander.close()
        if "registry" in self.__dict__ and self._registry is None:
            self.registry.close()
