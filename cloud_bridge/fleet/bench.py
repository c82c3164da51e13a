"""``kiosk bench fleet``: simulated kiosks against a local TLS Mosquitto.

The bench makes a kiosk CA and one client certificate per simulated kiosk,
starts a private Mosquitto with the generated configuration, starts the
bridge's ingestion (one or more instances on one shared subscription) into
a database (a temporary SQLite file, or ``--database``), then runs the
kiosks in a few worker processes: paho connects each one over TLS, then the
worker writes its PUBLISH packets and reads its PUBACKs itself, for many
kiosks from one epoll loop, so that the load generator does not take the
CPU the bridge is measured on. Every kiosk sends a health report every
``--telemetry-s`` and the fleet sends ``--events-per-s`` events in all
(QoS 1). It prints connected kiosks, messages per second offered and stored
(from the first commit to the last), end-to-end lag (kiosk clock to commit)
p50/p95, lost events (sent and acknowledged by the broker, but not in the
database), and the CPU seconds the simulated kiosks, the bridges, the broker
and (PostgreSQL on this host) the database backends used while publishing.
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
import threading
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
from cloud_bridge.fleet.ingest import Ingestor, packet_bounds
from cloud_bridge.fleet.mqtt_client import BrokerAddress
from cloud_bridge.fleet.registry import FleetRegistry
from cloud_bridge.store.engine import create_store_engine, write_transaction
from protocol.telemetry import Event, Health

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
MOSQUITTO = "/usr/sbin/mosquitto"
FLUSH_S = 0.1
CONNECT_TIMEOUT_S = 120.0
READY_TIMEOUT_S = CONNECT_TIMEOUT_S + 120.0


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
    cpu_s: float = 0.0
    began: float = 0.0
    ended: float = 0.0


@dataclass
class FleetReport:
    """The bench's figures."""

    kiosks: int
    connected: int
    seconds: float
    health_sent: int
    events_sent: int
    broker_acked: int
    broker_refused: int
    messages_stored: int
    offered_per_s: float
    stored_per_s: float
    lag_p50_ms: float
    lag_p95_ms: float
    events_lost: int
    dropped: int
    database: str
    kiosks_cpu_s: float
    bridges_cpu_s: float
    broker_cpu_s: float
    database_cpu_s: float | None


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
        report = _measure(load, registry, ca_dir, (port, broker.pid), files, url)
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
    broker: tuple[int, int],
    files: list[KioskFiles],
    url: str,
) -> FleetReport:
    port, broker_pid = broker
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
    results, broker_cpu = _run_workers(
        load, files, str(ca_dir / CA_CERTIFICATE), (port, broker_pid)
    )
    events_sent = sum(r.events_sent for r in results)
    _wait_for_rows(registry, events_sent)
    broker_cpu = _process_cpu_s(broker_pid) - broker_cpu
    database_cpu = _database_cpu_s(registry)
    stop.set()
    stats = [queue.get(timeout=120) for _ in bridges]
    for bridge in bridges:
        bridge.join(timeout=30)
    lags = sorted(lag for s in stats for lag in s["lags"])
    stored = sum(s["stored"] for s in stats)
    window = _commit_window(stats)
    return FleetReport(
        kiosks=load.kiosks,
        connected=sum(r.connected for r in results),
        seconds=round(window, 1),
        health_sent=sum(r.health_sent for r in results),
        events_sent=events_sent,
        broker_acked=sum(r.acked for r in results),
        broker_refused=sum(r.refused for r in results),
        messages_stored=stored,
        offered_per_s=_offered_per_s(results),
        stored_per_s=round(stored / window, 1) if window else 0.0,
        lag_p50_ms=round(1000 * _quantile(lags, 0.5), 1),
        lag_p95_ms=round(1000 * _quantile(lags, 0.95), 1),
        events_lost=events_sent - registry.count(schema.events),
        dropped=sum(s["dropped"] for s in stats),
        database=sa.make_url(url).get_backend_name(),
        kiosks_cpu_s=round(sum(r.cpu_s for r in results), 1),
        bridges_cpu_s=round(sum(s["cpu_s"] for s in stats), 1),
        broker_cpu_s=round(broker_cpu, 1),
        database_cpu_s=None if database_cpu is None else round(database_cpu, 1),
    )


def _offered_per_s(results: list[WorkerResult]) -> float:
    """Messages sent per second from the first worker's start to the last's end."""
    window = max(r.ended for r in results) - min(r.began for r in results)
    sent = sum(r.health_sent + r.events_sent for r in results)
    return round(sent / window, 1) if window > 0 else 0.0


def _database_cpu_s(registry: FleetRegistry) -> float | None:
    """CPU of the PostgreSQL backends serving the bench's database, if local.

    SQLite runs inside the bridge processes, so its cost is in theirs.
    """
    if registry.engine.dialect.name != "postgresql":
        return None
    query = sa.text(
        "SELECT pid FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    with registry.engine.connect() as conn:
        pids = list(conn.execute(query).scalars())
    try:
        return sum(_process_cpu_s(pid) for pid in pids)
    except OSError:
        logger.info("the database is not on this host; its CPU is not reported")
        return None


def _commit_window(stats: list[dict[str, Any]]) -> float:
    """Seconds from the bridges' first commit to their last."""
    firsts = [s["first_commit"] for s in stats if s["first_commit"] is not None]
    lasts = [s["last_commit"] for s in stats if s["last_commit"] is not None]
    if not firsts:
        return 0.0
    return float(max(lasts) - min(firsts))


def _process_cpu_s(pid: int) -> float:
    """Return the user and system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # After the command name: state is field 3, utime 14 and stime 15.
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _bridge(url: str, address: BrokerAddress, stop: Any, queue: Any) -> None:
    """Run one bridge instance's ingestion in its own process until ``stop``."""
    registry = FleetRegistry(create_store_engine(url))
    ingestor = Ingestor(registry, address, batch_size=1000, batch_wait_ms=50)
    ingestor.start()
    queue.put({"ready": True})
    cpu = _own_cpu_s()
    stop.wait()
    ingestor.stop()
    cpu = _own_cpu_s() - cpu
    registry.close()
    queue.put(
        {
            "stored": ingestor.stats.stored,
            "dropped": sum(ingestor.stats.dropped.values()),
            "lags": list(ingestor.stats.lags_s),
            "first_commit": ingestor.stats.first_commit,
            "last_commit": ingestor.stats.last_commit,
            "cpu_s": cpu,
        }
    )


def _run_workers(
    load: FleetLoad, files: list[KioskFiles], ca: str, broker: tuple[int, int]
) -> tuple[list[WorkerResult], float]:
    """Run the simulated kiosks; return their results and the broker's CPU.

    The broker's CPU seconds are read when the kiosks begin publishing, so
    the figure reported leaves out the kiosks' TLS handshakes before.
    """
    port, broker_pid = broker
    context = multiprocessing.get_context("spawn")
    queue: Any = context.Queue()
    share = max(1, -(-len(files) // load.workers))
    chunks = [files[i : i + share] for i in range(0, len(files), share)]
    # Every worker connects its kiosks, then all start publishing together.
    ready = context.Barrier(len(chunks) + 1)
    processes = []
    for chunk in chunks:
        process = context.Process(
            target=_worker,
            args=(chunk, ca, port, load, ready, queue),
            daemon=True,
        )
        process.start()
        processes.append(process)
    try:
        ready.wait(timeout=READY_TIMEOUT_S)
    except threading.BrokenBarrierError as exc:
        raise FleetError(
            f"the simulated kiosks were not all connected within "
            f"{READY_TIMEOUT_S:.0f} s; try fewer --kiosks or more --workers"
        ) from exc
    broker_cpu = _process_cpu_s(broker_pid)
    results = [WorkerResult(**queue.get(timeout=load.seconds + 300)) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    return results, broker_cpu


def _worker(
    files: list[KioskFiles],
    ca: str,
    port: int,
    load: FleetLoad,
    ready: Any,
    queue: Any,
) -> None:
    result = WorkerResult()
    keepalive = int(min(3600, max(120, 3 * load.telemetry_s)))
    clients = [_connect(f, ca, port, result, keepalive) for f in files]
    _wait_connected(clients, result, time.monotonic() + CONNECT_TIMEOUT_S)
    kiosks = [
        _SimulatedKiosk(f.kiosk_id, c.socket())
        for f, c in zip(files, clients, strict=True)
        if c.is_connected()
    ]
    wire = _Wire(kiosks, result)
    ready.wait(timeout=READY_TIMEOUT_S)
    cpu, result.began = _own_cpu_s(), time.time()
    _publish_loop(wire, kiosks, load, result)
    result.ended = time.time()
    wire.run(3.0)
    result.cpu_s = _own_cpu_s() - cpu
    wire.close()
    queue.put(asdict(result))


def _connect(
    files: KioskFiles, ca: str, port: int, result: WorkerResult, keepalive: int
) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=files.kiosk_id, protocol=mqtt.MQTTv5
    )
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(files.certificate, files.key)
    client.tls_set_context(context)

    def on_connect(*args: Any) -> None:
        result.connected += 1

    client.on_connect = on_connect
    client.connect(HOST, port, keepalive=keepalive)
    return client


def _wait_connected(
    clients: list[mqtt.Client], result: WorkerResult, until: float
) -> None:
    """Run paho's reads until every CONNACK is in (or ``until``, monotonic)."""
    selector = selectors.DefaultSelector()
    for client in clients:
        sock = client.socket()
        if sock is None:
            raise FleetError("a simulated kiosk has no socket; the broker hung up")
        selector.register(sock, selectors.EVENT_READ, client)
    while result.connected < len(clients) and time.monotonic() < until:
        for key, _events in selector.select(timeout=0.05):
            key.data.loop_read()
        for client in clients:
            if client.want_write():
                client.loop_write()
    selector.close()


class _SimulatedKiosk:
    """One kiosk's MQTT 5 connection after paho has connected it over TLS.

    The simulated kiosks write their PUBLISH packets and read their PUBACKs
    themselves: with paho's per-message objects (message info, reason code,
    properties) the load generator used as much CPU as the bridge it
    measured, on the same two cores. The bytes on the wire are the same.
    """

    __slots__ = ("events", "inbox", "kiosk_id", "mid", "out", "sock", "telemetry")

    def __init__(self, kiosk_id: str, sock: Any) -> None:
        self.kiosk_id = kiosk_id
        self.sock = sock
        self.telemetry = _topic_field(f"kiosk/{kiosk_id}/telemetry")
        self.events = _topic_field(f"kiosk/{kiosk_id}/events")
        self.mid = 0
        self.out = bytearray()
        self.inbox = bytearray()

    def publish(self, topic: bytes, payload: bytes) -> None:
        """Queue a QoS 1 PUBLISH without properties, and try to send it."""
        self.mid = self.mid % 0xFFFF + 1
        body = topic + self.mid.to_bytes(2, "big") + b"\x00" + payload
        self.out += b"\x32" + _remaining_length(len(body)) + body
        self.flush()

    def flush(self) -> None:
        """Write what the socket takes now."""
        while self.out:
            try:
                sent = self.sock.send(self.out)
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                return
            del self.out[:sent]

    def read(self, result: WorkerResult) -> None:
        """Read what arrived and count the PUBACKs (reason 0x80+ is a refusal)."""
        while True:
            try:
                data = self.sock.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                break
            if not data:
                raise FleetError(
                    f"the broker closed simulated kiosk {self.kiosk_id}'s connection"
                )
            self.inbox += data
        buf, pos = self.inbox, 0
        while (packet := packet_bounds(buf, pos)) is not None:
            start, end = packet
            if buf[pos] & 0xF0 == 0x40:
                result.acked += 1
                if end - start > 2 and buf[start + 2] >= 0x80:
                    result.refused += 1
            pos = end
        del buf[:pos]

    def close(self) -> None:
        """Send DISCONNECT (normal, so no last will) and close."""
        self.out += b"\xe0\x00"
        self.flush()
        self.sock.close()


def _topic_field(topic: str) -> bytes:
    encoded = topic.encode()
    return len(encoded).to_bytes(2, "big") + encoded


def _remaining_length(length: int) -> bytes:
    encoded = bytearray()
    while True:
        length, digit = divmod(length, 128)
        encoded.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(encoded)


class _Wire:
    """Drives many simulated kiosks' sockets from one epoll loop."""

    def __init__(self, kiosks: list[_SimulatedKiosk], result: WorkerResult) -> None:
        self.kiosks = kiosks
        self.result = result
        self.selector = selectors.DefaultSelector()
        for kiosk in kiosks:
            self.selector.register(kiosk.sock, selectors.EVENT_READ, kiosk)
        self.flushed = time.monotonic()

    def run(self, seconds: float) -> None:
        """Read what the broker sends for ``seconds``.

        A publish is written at once, so only a kiosk whose socket was full
        has output waiting: those are retried every FLUSH_S.
        """
        deadline = time.monotonic() + seconds
        while True:
            for key, _events in self.selector.select(timeout=0.002):
                key.data.read(self.result)
            now = time.monotonic()
            if now - self.flushed > FLUSH_S:
                self.flushed = now
                for kiosk in self.kiosks:
                    if kiosk.out:
                        kiosk.flush()
            if now >= deadline:
                break

    def close(self) -> None:
        """Disconnect every kiosk."""
        self.selector.close()
        for kiosk in self.kiosks:
            kiosk.close()


def _publish_loop(
    wire: _Wire,
    kiosks: list[_SimulatedKiosk],
    load: FleetLoad,
    result: WorkerResult,
) -> None:
    count = len(kiosks)
    if not count:
        return
    event_rate = load.events_per_s * count / load.kiosks
    # Kiosk i reports at i/count of the period, so the reports fall due in
    # turn: report number j is due j * gap after the start.
    gap = load.telemetry_s / count
    began = time.monotonic()
    health_done = events_done = 0
    while (elapsed := time.monotonic() - began) < load.seconds:
        for _ in range(int(elapsed / gap) + 1 - health_done):
            kiosk = kiosks[health_done % count]
            kiosk.publish(kiosk.telemetry, _health(kiosk.kiosk_id))
            health_done += 1
        for _ in range(int(elapsed * event_rate) - events_done):
            kiosk = kiosks[(events_done + 1) % count]
            kiosk.publish(kiosk.events, _event(kiosk.kiosk_id, events_done))
            events_done += 1
        wire.run(0.005)
    result.health_sent = health_done
    result.events_sent = events_done


# The simulated kiosks write their JSON directly: building pydantic models
# cost the load generator as much CPU as the bridge spent storing them. The
# bench's test checks that the bridge drops none of them as invalid.
def _health(kiosk_id: str) -> bytes:
    return (
        f'{{"schema_name":"{Health.SCHEMA}","version":{Health.VERSION},'
        f'"message_id":"{os.urandom(16).hex()}","sent_at":"{_now()}",'
        f'"kiosk_id":"{kiosk_id}","paper_percent":55.0,"load_1m":0.5}}'
    ).encode()


def _event(kiosk_id: str, n: int) -> bytes:
    now = _now()
    return (
        f'{{"schema_name":"{Event.SCHEMA}","version":{Event.VERSION},'
        f'"message_id":"{os.urandom(16).hex()}","sent_at":"{now}",'
        f'"kiosk_id":"{kiosk_id}","event_type":"copy_printed",'
        f'"occurred_at":"{now}","detail":{{"n":{n}}}}}'
    ).encode()


def _now() -> str:
    return datetime.now(UTC).isoformat()


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
        f"offered               {report.offered_per_s}/s\n"
        f"stored                {report.messages_stored} ({report.stored_per_s}/s,"
        f" {report.database})\n"
        f"lag p50 / p95         {report.lag_p50_ms} / {report.lag_p95_ms} ms\n"
        f"events lost           {report.events_lost}\n"
        f"dropped as invalid    {report.dropped}\n"
        f"CPU seconds           kiosks {report.kiosks_cpu_s}, bridges "
        f"{report.bridges_cpu_s}, broker {report.broker_cpu_s}, database "
        f"{'in bridges' if report.database_cpu_s is None else report.database_cpu_s}"
    )
