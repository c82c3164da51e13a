"""Prometheus figures for the fleet and the bridge's ingestion."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from cloud_bridge.fleet.alerts import ALERTS
from cloud_bridge.fleet.service import Fleet


class FleetCollector(Collector):
    """Collect kiosk states, alerts and ingestion counters on each scrape."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """Yield the fleet's metric families."""
        views = self.fleet.views()
        states = GaugeMetricFamily(
            "kiosk_fleet_kiosks", "Kiosks by state.", labels=["state"]
        )
        counted = Counter(v.state for v in views)
        for state in ("online", "offline", "revoked"):
            states.add_metric([state], counted[state])
        yield states
        alerts = GaugeMetricFamily(
            "kiosk_fleet_alerts", "Kiosks raising each alert.", labels=["alert"]
        )
        raised = Counter(a for v in views for a in v.alerts)
        for alert in ALERTS:
            alerts.add_metric([alert], raised[alert])
        yield alerts
        yield from self._ingestion()

    def _ingestion(self) -> Iterator[CounterMetricFamily]:
        received = CounterMetricFamily(
            "kiosk_bridge_messages_received",
            "Valid kiosk messages received by this process.",
            labels=["schema"],
        )
        dropped = CounterMetricFamily(
            "kiosk_bridge_messages_dropped",
            "Kiosk messages dropped by this process.",
            labels=["reason"],
        )
        stored = CounterMetricFamily(
            "kiosk_bridge_messages_stored", "Kiosk messages written to the database."
        )
        totals_in: Counter[str] = Counter()
        totals_out: Counter[str] = Counter()
        written = 0
        for stats in self.fleet.ingest_stats:
            totals_in.update(stats.received)
            totals_out.update(stats.dropped)
            written += stats.stored
        for schema_name, value in sorted(totals_in.items()):
            received.add_metric([schema_name], value)
        for reason in ("malformed", "oversized", "spoofed", "revoked"):
            dropped.add_metric([reason], totals_out[reason])
        stored.add_metric([], written)
        yield received
        yield dropped
        yield stored


def render_metrics(fleet: Fleet) -> bytes:
    """Return the Prometheus text exposition of the fleet's figures."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(fleet))
    return generate_latest(registry)
