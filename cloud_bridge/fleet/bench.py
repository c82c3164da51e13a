"""``kiosk bench fleet``: simulated kiosks against a local TLS Mosquitto.

The bench makes a kiosk CA and one client certificate per simulated kiosk,
starts a private Mosquitto with the generated configuration, starts the
bridge's ingestion (one or more instances on one shared subscription) into
a database (a temporary SQLite file, or ``--database``), then runs the
kiosks in a few worker processes, each driving many paho clients from one
epoll loop. Every kiosk sends a health report every ``--telemetry-s`` and
the fleet sends ``--events-per-s`` events in all. It prints connected
kiosks, messages per second stored, end-to-end lag (kiosk clock to commit)
p50/p95 and lost events (sent and acknowledged by the broker, but not in
the database).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import resource
import selectors
import shutil
import ssl
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import paho.mqtt.client as mqtt
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from paho.mqtt.enums import CallbackAPIVersion

from cloud_bridge.errors import FleetError
from cloud_bridge.fleet import schema
from cloud_bridge.fleet.broker_config import write_broker_config
from cloud_bridge.fleet.ca import CA_CERTIFICATE, KioskCa, ensure_kiosk_ca
from cloud_bridge.fleet.ingest import Ingestor
from cloud_bridge.fleet.mqtt_client import BrokerAddress
from cloud_bridge.fleet.registry import FleetRegistry
from cloud_bridge.store.engine import create_store_engine, write_transaction
from protocol.envelope import new_message
from protocol.telemetry import Event, Health

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
MOSQUITTO = "/usr/sbin/mosquitto"


@dataclass(frozen=True)
class FleetLoad:
    """How many kiosks and how much traffic to simulate."""

    kiosks: int
    seconds: float
    telemetry_s: float
    events_per_s: float
    workers: int
    bridges: int


@dataclass(frozen=True)
class KioskFiles:
    """One simulated kiosk's id and certificate files."""

    kiosk_id: str
    certificate: str
    key: str


@dataclass
class WorkerResult:
    """What one worker process did."""

    connected: int = 0
    health_sent: int = 0
    events_sent: int = 0
    acked: int = 0
    refused: int = 0


@dataclass
class FleetReport:
    """The bench's figures."""

    kiosks: int
    connected: int
    seconds: float
    health_sent: int
    events_sent: int
    messages_stored: int
    stored_per_s: float
    lag_p50_ms: float
    lag_p95_ms: float
    events_lost: int
    dropped: int
    database: str


def run_fleet_bench(load: FleetLoad, database: str | None = None) -> FleetReport:
    """Run the whole bench in a temporary directory and return its figures."""
    _raise_file_limit()
    work = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    broker: subprocess.Popen[bytes] | None = None
    try:
        ca_dir = work / "ca"
        ensure_kiosk_ca(ca_dir, [HOST])
        port, broker = _start_broker(work, ca_dir)
        url = database or f"sqlite:///{work / 'bench.db'}"
        registry = FleetRegistry.open(url)
        files = _kiosk_files(KioskCa(ca_dir), work / "kiosks", load.kiosks)
        _register(registry, [f.kiosk_id for f in files])
        report = _measure(load, registry, ca_dir, port, files, url)
        registry.close()
        return report
    finally:
        if broker is not None:
            broker.terminate()
            broker.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def _measure(
    load: FleetLoad,
    registry: FleetRegistry,
    ca_dir: Path,
    port: int,
    files: list[KioskFiles],
    url: str,
) -> FleetReport:
    address = BrokerAddress(
        HOST,
        port,
        ca_dir / CA_CERTIFICATE,
        ca_dir / "bridge-client.pem",
        ca_dir / "bridge-client.key",
    )
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    queue: Any = context.Queue()
    bridges = [
        context.Process(target=_bridge, args=(url, address, stop, queue), daemon=True)
        for _ in range(load.bridges)
    ]
    for bridge in bridges:
        bridge.start()
    for _ in bridges:
        queue.get(timeout=60)
    started = time.monotonic()
    results = _run_workers(load, files, str(ca_dir / CA_CERTIFICATE), port)
    events_sent = sum(r.events_sent for r in results)
    _wait_for_rows(registry, events_sent)
    elapsed = time.monotonic() - started
    stop.set()
    stats = [queue.get(timeout=120) for _ in bridges]
    for bridge in bridges:
        bridge.join(timeout=30)
    lags = sorted(lag for s in stats for lag in s["lags"])
    stored = sum(s["stored"] for s in stats)
    return FleetReport(
        kiosks=load.kiosks,
        connected=sum(r.connected for r in results),
        seconds=round(elapsed, 1),
        health_sent=sum(r.health_sent for r in results),
        events_sent=events_sent,
        messages_stored=stored,
        stored_per_s=round(stored / load.seconds, 1),
        lag_p50_ms=round(1000 * _quantile(lags, 0.5), 1),
        lag_p95_ms=round(1000 * _quantile(lags, 0.95), 1),
        events_lost=events_sent - registry.count(schema.events),
        dropped=sum(s["dropped"] for s in stats),
        database=sa.make_url(url).get_backend_name(),
    )


def _bridge(url: str, address: BrokerAddress, stop: Any, queue: Any) -> None:
    """Run one bridge instance's ingestion in its own process until ``stop``."""
    registry = FleetRegistry(create_store_engine(url))
    ingestor = Ingestor(registry, address, batch_size=1000, batch_wait_ms=50)
    ingestor.start()
    queue.put({"ready": True})
    stop.wait()
    ingestor.stop()
    registry.close()
    queue.put(
        {
            "stored": ingestor.stats.stored,
            "dropped": sum(ingestor.stats.dropped.values()),
            "lags": list(ingestor.stats.lags_s),
        }
    )


def _run_workers(
    load: FleetLoad, files: list[KioskFiles], ca: str, port: int
) -> list[WorkerResult]:
    context = multiprocessing.get_context("spawn")
    queue: Any = context.Queue()
    share = max(1, -(-len(files) // load.workers))
    start_at = time.time() + 3 + load.kiosks / 400
    processes = []
    for index in range(load.workers):
        chunk = files[index * share : (index + 1) * share]
        if not chunk:
            continue
        process = context.Process(
            target=_worker,
            args=(chunk, ca, port, load, start_at, queue),
            daemon=True,
        )
        process.start()
        processes.append(process)
    results = [WorkerResult(**queue.get(timeout=load.seconds + 300)) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    return results


def _worker(
    files: list[KioskFiles],
    ca: str,
    port: int,
    load: FleetLoad,
    start_at: float,
    queue: Any,
) -> None:
    result = WorkerResult()
    clients = [_connect(f, ca, port, result) for f in files]
    selector = selectors.DefaultSelector()
    for client in clients:
        sock = client.socket()
        if sock is None:
            raise FleetError("a simulated kiosk has no socket; the broker hung up")
        selector.register(sock, selectors.EVENT_READ, client)
    _pump(selector, clients, max(0.0, start_at - time.time()))
    _publish_loop(selector, clients, files, load, result)
    _pump(selector, clients, 3.0)
    for client in clients:
        client.disconnect()
    queue.put(asdict(result))


def _connect(
    files: KioskFiles, ca: str, port: int, result: WorkerResult
) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=files.kiosk_id, protocol=mqtt.MQTTv5
    )
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(files.certificate, files.key)
    client.tls_set_context(context)
    client.max_inflight_messages_set(100)

    def on_connect(*args: Any) -> None:
        result.connected += 1

    def on_publish(_c: Any, _u: Any, _mid: int, code: Any, _p: Any) -> None:
        result.acked += 1
        if code.is_failure:
            result.refused += 1

    client.on_connect = on_connect
    client.on_publish = on_publish
    client.connect(HOST, port, keepalive=120)
    return client


def _publish_loop(
    selector: selectors.BaseSelector,
    clients: list[mqtt.Client],
    files: list[KioskFiles],
    load: FleetLoad,
    result: WorkerResult,
) -> None:
    share = len(clients) / load.kiosks
    event_rate = load.events_per_s * share
    began = time.monotonic()
    next_health = [
        began + load.telemetry_s * i / len(clients) for i in range(len(clients))
    ]
    events_done = 0
    cursor = 0
    while (now := time.monotonic()) - began < load.seconds:
        for i, due in enumerate(next_health):
            if due <= now:
                _send_health(clients[i], files[i].kiosk_id)
                next_health[i] = due + load.telemetry_s
                result.health_sent += 1
        owed = int((now - began) * event_rate) - events_done
        for _ in range(owed):
            cursor = (cursor + 1) % len(clients)
            _send_event(clients[cursor], files[cursor].kiosk_id, events_done)
            events_done += 1
        result.events_sent = events_done
        _pump(selector, clients, 0.005)


def _send_health(client: mqtt.Client, kiosk_id: str) -> None:
    health = new_message(Health, kiosk_id=kiosk_id, paper_percent=55.0, load_1m=0.5)
    client.publish(f"kiosk/{kiosk_id}/telemetry", health.to_bytes(), qos=1)


def _send_event(client: mqtt.Client, kiosk_id: str, n: int) -> None:
    event = new_message(
        Event,
        kiosk_id=kiosk_id,
        event_type="copy_printed",
        occurred_at=datetime.now(UTC),
        detail={"n": n},
    )
    client.publish(f"kiosk/{kiosk_id}/events", event.to_bytes(), qos=1)


def _pump(
    selector: selectors.BaseSelector, clients: list[mqtt.Client], seconds: float
) -> None:
    deadline = time.monotonic() + seconds
    while True:
        for key, _events in selector.select(timeout=0.002):
            key.data.loop_read()
        for client in clients:
            if client.want_write():
                client.loop_write()
        if time.monotonic() >= deadline:
            break
    for client in clients:
        client.loop_misc()


def _wait_for_rows(registry: FleetRegistry, events: int, quiet_s: float = 3.0) -> None:
    last, stable_since = -1, time.monotonic()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        count = registry.count(schema.events)
        if count >= events:
            return
        if count != last:
            last, stable_since = count, time.monotonic()
        elif time.monotonic() - stable_since > quiet_s:
            return
        time.sleep(0.2)


def _kiosk_files(ca: KioskCa, out: Path, count: int) -> list[KioskFiles]:
    out.mkdir(parents=True)
    files = []
    for n in range(count):
        kiosk_id = f"bench-{n:05d}"
        key = ec.generate_private_key(ec.SECP256R1())
        cert = ca.issue_for_key(kiosk_id, key.public_key(), timedelta(days=1))
        key_path, cert_path = out / f"{kiosk_id}.key", out / f"{kiosk_id}.pem"
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files.append(KioskFiles(kiosk_id, str(cert_path), str(key_path)))
    return files


def _register(registry: FleetRegistry, kiosk_ids: list[str]) -> None:
    now = datetime.now(UTC)
    rows = [{"kiosk_id": k, "enrolled_at": now, "status": "unknown"} for k in kiosk_ids]
    with write_transaction(registry.engine) as conn:
        conn.execute(schema.kiosks.insert(), rows)


def _start_broker(work: Path, ca_dir: Path) -> tuple[int, subprocess.Popen[bytes]]:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = int(sock.getsockname()[1])
    run_as = "root" if os.geteuid() == 0 else None
    files = write_broker_config(work / "broker", ca_dir, HOST, port, run_as=run_as)
    log = (work / "broker.log").open("wb")
    process = subprocess.Popen(
        [MOSQUITTO, "-c", str(files.config)], stdout=log, stderr=log
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return port, process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise FleetError("the bench's Mosquitto did not start; see its log")


def _raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


@click.command("fleet")
@click.option(
    "--kiosks", type=click.IntRange(1, 20_000), default=2000, show_default=True
)
@click.option(
    "--seconds", type=click.FloatRange(5, 3600), default=30.0, show_default=True
)
@click.option(
    "--telemetry-s", type=click.FloatRange(1, 600), default=10.0, show_default=True
)
@click.option(
    "--events-per-s",
    type=click.FloatRange(0, 100_000),
    default=2900.0,
    show_default=True,
    help="Events per second across the fleet.",
)
@click.option("--workers", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--bridges", type=click.IntRange(1, 8), default=1, show_default=True)
@click.option("--database", default=None, help="Database URL (temporary SQLite file).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def fleet_bench(
    kiosks: int,
    seconds: float,
    telemetry_s: float,
    events_per_s: float,
    workers: int,
    bridges: int,
    database: str | None,
    as_json: bool,
) -> None:
    """Simulate kiosks over TLS and measure ingestion rate, lag and losses."""
    load = FleetLoad(kiosks, seconds, telemetry_s, events_per_s, workers, bridges)
    report = run_fleet_bench(load, database)
    if as_json:
        click.echo(json.dumps(asdict(report), indent=2))
        return
    click.echo(
        f"kiosks connected      {report.connected}/{report.kiosks}\n"
        f"sent                  {report.health_sent} health, "
        f"{report.events_sent} events"
        f" in {load.seconds:.0f} s\n"
        f"stored                {report.messages_stored} ({report.stored_per_s}/s,"
        f" {report.database})\n"
        f"lag p50 / p95         {report.lag_p50_ms} / {report.lag_p95_ms} ms\n"
        f"events lost           {report.events_lost}\n"
        f"dropped as invalid    {report.dropped}"
    )
