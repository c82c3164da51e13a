"""``kiosk bench sign``: copies per second and latency of the signing chain.

The benchmark builds a throw-away bridge in a temporary directory (its own
SoftHSM2 token, development PKI, SQLite database and archive), starts the
trust services (timestamps, CRL, OCSP) as a separate process as in
production, and runs worker processes that each make copies for a fixed
time: render, seal, sign, timestamp, embed revocation data, document
timestamp, archive. The reference figures are measured in the same run: a
bare PAdES signature with the token's key (B-B) and one with a timestamp
(B-T), on the same rendered page.
"""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import os
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import click
import httpx
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cloud_bridge.config import load_bridge_config
from cloud_bridge.context import Bridge
from cloud_bridge.copies import CopyRequest, Officer, Stopwatch
from cloud_bridge.pades import SignatureText
from cloud_bridge.pages import load_pages
from cloud_bridge.render import CopyContent, render_copy
from cloud_bridge.signing import CopySigner, http_timestamper

logger = logging.getLogger(__name__)

PAGE_SIZE = (2480, 3508)
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


@dataclass
class WorkerResult:
    """What one worker measured."""

    latencies_ms: list[float]
    phases_ms: dict[str, list[float]]
    peak_rss_mb: float
    errors: int
    cpu_s: float = 0.0


@click.command("sign")
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(1, 16),
    help="Worker processes.",
)
@click.option(
    "--threads",
    default=1,
    show_default=True,
    type=click.IntRange(1, 8),
    help="Copies each worker makes at once (its disk and network waits overlap).",
)
@click.option(
    "--seconds", default=20.0, show_default=True, type=click.FloatRange(1, 600)
)
@click.option("--pages", "page_counts", default="1,5", show_default=True)
@click.option("--level", default="B-LTA", show_default=True)
@click.option("--database-url", help="Database URL (default: SQLite in the run).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sign_bench(
    workers: int,
    threads: int,
    seconds: float,
    page_counts: str,
    level: str,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Render, sign, timestamp and archive copies; print rates and latency."""
    counts = [int(part) for part in page_counts.split(",") if part.strip()]
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-") as tmp:
        root = Path(tmp)
        config_path = _write_config(root, level, database_url)
        _run_kiosk(["bridge", "init", "--config", str(config_path)])
        port = int(_read_port(config_path))
        trust = _start_trust_services(config_path, port)
        try:
            page = _sample_page()
            report: dict[str, Any] = {
                "workers": workers,
                "threads": threads,
                "seconds": seconds,
                "level": level,
                "cpus": os.cpu_count(),
                "runs": [],
            }
            for count in counts:
                run = _run_workers(
                    config_path, [page] * count, workers, threads, seconds, trust.pid
                )
                run["pages"] = count
                report["runs"].append(run)
            report["reference"] = _reference(config_path, page)
        finally:
            trust.terminate()
            trust.wait(timeout=10)
    _print(report, as_json)


def _write_config(root: Path, level: str, database_url: str | None) -> Path:
    port = _free_port()
    url = database_url or "sqlite:///bridge.db"
    config = root / "bridge.toml"
    config.write_text(
        f'data_dir = "{root / "data"}"\n'
        "[hsm]\n"
        f'token_label = "bench-{uuid.uuid4().hex[:8]}"\n'
        "[timestamp]\n"
        f'url = "http://127.0.0.1:{port}/tsa"\n'
        "[pki]\n"
        f'revocation_url = "http://127.0.0.1:{port}"\n'
        "[signing]\n"
        f'level = "{level}"\n'
        "[database]\n"
        f'url = "{url}"\n',
        encoding="utf-8",
    )
    return config


def _read_port(config_path: Path) -> str:
    for line in config_path.read_text(encoding="utf-8").splitlines():
        if line.startswith('url = "http://127.0.0.1:'):
            return line.split(":")[2].split("/")[0]
    raise click.ClickException("the benchmark configuration has no TSA port")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_kiosk(args: list[str]) -> None:
    command = [sys.executable, "-m", "kiosk", "--log-level", "WARNING", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise click.ClickException(f"{' '.join(args)} failed:\n{done.stderr}")


def _start_trust_services(config_path: Path, port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "kiosk",
        "--log-level",
        "WARNING",
        "bridge",
        "trust-services",
        "--config",
        str(config_path),
        "--port",
        str(port),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/crl/root.crl", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.terminate()
    raise click.ClickException("the trust services did not start within 30 s")


def _sample_page() -> bytes:
    """Return a scan-like A4 page at 300 dpi: text on slightly noisy paper."""
    rng = np.random.default_rng(7)
    paper = rng.normal(242, 6, (PAGE_SIZE[1], PAGE_SIZE[0])).clip(0, 255)
    image = Image.fromarray(paper.astype(np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 44)
    for row in range(60):
        text = f"Dòng {row + 1}: Cộng hòa xã hội chủ nghĩa Việt Nam - Độc lập"
        draw.text((180, 200 + row * 52), text, fill=(20, 20, 20), font=font)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _run_workers(
    config_path: Path,
    pages: list[bytes],
    workers: int,
    threads: int,
    seconds: float,
    services_pid: int,
) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    start = time.perf_counter()
    services_before = _cpu_seconds(services_pid)
    with context.Pool(workers) as pool:
        results = pool.starmap(
            _worker, [(str(config_path), pages, seconds, threads)] * workers
        )
    services_cpu_s = _cpu_seconds(services_pid) - services_before
    elapsed = time.perf_counter() - start
    copies = _summary([copy for _, copy in results], seconds)
    copies["trust_services_cpu_ms_per_copy"] = round(
        services_cpu_s * 1000 / max(1, copies["copies"]), 1
    )
    copies["worker_peak_rss_mb"] = max(copy.peak_rss_mb for _, copy in results)
    copies["intake"] = _summary([intake for intake, _ in results], seconds)
    copies["wall_s"] = round(elapsed, 1)
    return copies


def _summary(results: list[WorkerResult], seconds: float) -> dict[str, Any]:
    """Rates, latency, phases and CPU of one kind of step over all workers."""
    latencies = sorted(x for r in results for x in r.latencies_ms)
    done = max(1, len(latencies))
    phases: dict[str, list[float]] = {}
    for result in results:
        for name, values in result.phases_ms.items():
            phases.setdefault(name, []).extend(values)
    return {
        "copies": len(latencies),
        "errors": sum(r.errors for r in results),
        # every worker measures for exactly ``seconds`` after its warm-up
        "copies_per_s": round(len(latencies) / seconds, 2),
        "p50_ms": round(_percentile(latencies, 50), 1),
        "p95_ms": round(_percentile(latencies, 95), 1),
        "phase_median_ms": {
            name: round(statistics.median(values), 1) for name, values in phases.items()
        },
        # CPU per step does not depend on what else the machine runs: with
        # it, cores / CPU per step bounds the rate on an idle machine.
        "worker_cpu_ms_per_copy": round(sum(r.cpu_s for r in results) * 1000 / done, 1),
    }


def _worker(
    config_path: str, pages: list[bytes], seconds: float, threads: int
) -> tuple[WorkerResult, WorkerResult]:
    """Take requests in for ``seconds``, then certify them for ``seconds``.

    Returns what intake (page checks and storage, done when a kiosk submits)
    and certification (number, render, seal, signature, timestamps, archive,
    done when the officer approves) measured, each on its own.
    """
    config = load_bridge_config(Path(config_path))
    bridge = Bridge(config)
    office = config.office()
    officer = Officer(office.officer_name, office.officer_title)
    for _ in range(2):  # warm-up: imports, sessions, revocation data
        request = _bench_request(config.office_code, len(pages))
        bridge.copies.make_copy(pages, request, officer)
    waiting: queue.SimpleQueue[str] = queue.SimpleQueue()

    def take_in(result: WorkerResult, deadline: float) -> None:
        while time.perf_counter() < deadline:
            _timed(result, lambda: _submit(bridge, pages, waiting))

    def certify(result: WorkerResult, deadline: float) -> None:
        while time.perf_counter() < deadline:
            _timed(result, lambda: _certify(bridge, officer, pages, waiting))

    intake = _in_threads(take_in, threads, seconds)
    copies = _in_threads(certify, threads, seconds)
    bridge.close()
    copies.peak_rss_mb = _peak_rss_mb()
    return intake, copies


def _submit(
    bridge: Bridge, pages: list[bytes], waiting: queue.SimpleQueue[str]
) -> dict[str, float]:
    request = _bench_request(bridge.config.office_code, len(pages))
    watch = Stopwatch()
    bridge.copies.submit(pages, request, watch)
    waiting.put(request.request_id)
    return watch.laps


def _certify(
    bridge: Bridge,
    officer: Officer,
    pages: list[bytes],
    waiting: queue.SimpleQueue[str],
) -> dict[str, float]:
    try:
        request_id = waiting.get_nowait()
    except queue.Empty:  # intake fell behind: take one in, untimed
        _submit(bridge, pages, waiting)
        request_id = waiting.get_nowait()
    return bridge.copies.certify(request_id, officer).timings_ms


def _timed(result: WorkerResult, step: Callable[[], dict[str, float]]) -> None:
    began = time.perf_counter()
    try:
        phases = step()
    except Exception:  # a benchmark counts failures instead of stopping
        logger.exception("a step failed during the benchmark")
        result.errors += 1
        return
    result.latencies_ms.append((time.perf_counter() - began) * 1000)
    for name, value in phases.items():
        result.phases_ms.setdefault(name, []).append(value)


def _in_threads(
    work: Callable[[WorkerResult, float], None], threads: int, seconds: float
) -> WorkerResult:
    """Run ``work`` in ``threads`` threads until ``seconds`` have passed."""
    results = [WorkerResult([], {}, 0.0, 0) for _ in range(threads)]
    cpu_before = _cpu_seconds(os.getpid())
    deadline = time.perf_counter() + seconds
    runners = [
        threading.Thread(target=work, args=(result, deadline), name=f"bench-{n}")
        for n, result in enumerate(results)
    ]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    merged = WorkerResult([], {}, 0.0, 0, _cpu_seconds(os.getpid()) - cpu_before)
    for result in results:
        merged.latencies_ms.extend(result.latencies_ms)
        merged.errors += result.errors
        for name, values in result.phases_ms.items():
            merged.phases_ms.setdefault(name, []).extend(values)
    return merged


def _peak_rss_mb() -> float:
    """Return this process's peak resident memory since it started.

    VmHWM, not getrusage's ru_maxrss: on Linux the latter survives exec, so
    a spawned worker would report its parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def _cpu_seconds(pid: int) -> float:
    """Return the CPU time (user and system) process ``pid`` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _make_copies(
    bridge: Bridge,
    officer: Officer,
    pages: list[bytes],
    deadline: float,
    result: WorkerResult,
) -> None:
    """Make copies until ``deadline``, recording into ``result``."""
    office_code = bridge.config.office_code
    while time.perf_counter() < deadline:
        began = time.perf_counter()
        try:
            request = _bench_request(office_code, len(pages))
            issued = bridge.copies.make_copy(pages, request, officer)
        except Exception:  # a benchmark counts failures instead of stopping
            logger.exception("a copy failed during the benchmark")
            result.errors += 1
            continue
        result.latencies_ms.append((time.perf_counter() - began) * 1000)
        for name, value in issued.timings_ms.items():
            result.phases_ms.setdefault(name, []).append(value)


def _reference(config_path: Path, page: bytes) -> dict[str, float]:
    config = load_bridge_config(config_path)
    bridge = Bridge(config)
    office = config.office()
    unsigned = render_copy(
        CopyContent(
            copy_id="BENC-HREF-EREN-CE00",
            access_code="000000",
            certification_number=1,
            book="reference",
            issue_date=date.today(),
            office_name=office.name,
            officer_name=office.officer_name,
            officer_title=office.officer_title,
            document_type_label="reference",
            pages=load_pages([page], config.copies),
            qr_payload="reference",
            watermark=config.copies.watermark,
            lookup_url=config.copies.lookup_url,
        ),
        validate=False,
    )
    text = SignatureText("reference", "bench", "bench")
    figures = {}
    for level in ("B-B", "B-T"):
        reference = CopySigner(
            bridge.pdf_signer,
            bridge.trust_roots,
            level=level,
            timestamper=http_timestamper(config.timestamp.url, 5),
        )
        times = []
        for _ in range(15):
            began = time.perf_counter()
            reference.sign(unsigned, text)
            times.append((time.perf_counter() - began) * 1000)
        name = f"pades_{level.lower().replace('-', '_')}_ms"
        figures[name] = round(statistics.median(times), 1)
    bridge.close()
    return figures


def _bench_request(office_code: str, page_count: int) -> CopyRequest:
    return CopyRequest(
        document_type="diploma",
        citizen_name="Trần Thị Bích",
        citizen_id_number="079190000001",
        page_count=page_count,
        office_code=office_code,
        kiosk_id="bench",
    )


def _percentile(values: list[float], percent: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(values, percent))


def _print(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(
        f"{report['workers']} workers x {report['threads']} threads, "
        f"{report['seconds']} s per run, "
        f"PAdES {report['level']}, {report['cpus']} CPUs"
    )
    for run in report["runs"]:
        click.echo(
            f"  {run['pages']}-page copies: {run['copies_per_s']} copies/s, "
            f"p50 {run['p50_ms']} ms, p95 {run['p95_ms']} ms, "
            f"{run['errors']} errors, worker peak RSS {run['worker_peak_rss_mb']} MB"
        )
        click.echo(f"    phases (median ms): {run['phase_median_ms']}")
        click.echo(
            f"    CPU per copy: workers {run['worker_cpu_ms_per_copy']} ms, "
            f"trust services {run['trust_services_cpu_ms_per_copy']} ms"
        )
        intake = run["intake"]
        click.echo(
            f"    intake (page checks and storage, before approval): "
            f"{intake['copies_per_s']} requests/s, p50 {intake['p50_ms']} ms, "
            f"p95 {intake['p95_ms']} ms, CPU {intake['worker_cpu_ms_per_copy']} ms"
        )
    reference = report["reference"]
    click.echo(f"  reference: {reference}")
