"""``kiosk bench visit``: simulated visits through the agent's screens.

The agent runs in this process with simulated devices and serves its UI on
a local port; a client presses through each visit as the browser would
(the action's POST and the next screen's GET). With ``--bridge-config`` an
officer in this process approves each request as soon as it is stored, so
the time from submit to the start of printing can be measured; the broker
and the bridge's intake must then be running (``kiosk bridge run``).

The bench's agent keeps its store and outbox in a scratch directory, never
in the kiosk's own, so no simulated visit is ever sent from a real outbox.
Without ``--bridge-config`` it also runs without the kiosk's identity and
key, so nothing it submits can reach an office.
"""

from __future__ import annotations

import json
import logging
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import httpx
import uvicorn

from drivers.camera_sim import list_images
from edge.agent import Agent, build_agent
from edge.config import AgentConfig, KeySection, load_agent_config
from edge.speech import RecordingSpeaker
from edge.visit import Step

logger = logging.getLogger(__name__)

MODELS_LOAD_TIMEOUT_S = 300
# Steps whose server time includes model inference (QR and portrait, face and
# liveness, page quality and OCR).
INFERENCE = {"read_card", "check_face", "take_page"}
ACTIONS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("start", "welcome", {}),
    ("read_card", "identify", {}),
    ("check_face", "face", {}),
    ("take_page", "capture", {}),
    ("use_page", "page", {}),
    ("take_page", "capture", {}),
    ("use_page", "page", {}),
    ("pages_done", "capture", {}),
    ("review", "review", {"document_type": "diploma", "delivery": "wallet"}),
    ("submit", "confirm", {}),
)


@dataclass
class BenchResult:
    """What the bench measured, in milliseconds unless named otherwise."""

    step_ms: dict[str, list[float]] = field(default_factory=dict)
    submit_to_print_ms: list[float] = field(default_factory=list)
    idle_cpu_percent: float = 0.0
    rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    models_load_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Return medians and 95th percentiles as JSON-ready data."""
        plain = [v for k, vs in self.step_ms.items() if k not in INFERENCE for v in vs]
        return {
            "models_load_s": round(self.models_load_s, 2),
            "steps": {k: _stats(v) for k, v in sorted(self.step_ms.items())},
            "steps_without_inference": _stats(plain),
            "submit_to_print": _stats(self.submit_to_print_ms),
            "idle_cpu_percent": round(self.idle_cpu_percent, 2),
            "rss_mb": round(self.rss_mb, 1),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
        }


def _stats(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "n": len(values),
        "median_ms": round(statistics.median(values), 1),
        "p95_ms": round(p95, 1),
    }


def run_visits(
    agent: Agent,
    url: str,
    visits: int,
    approve: Callable[[], None] | None = None,
    idle_s: float = 10.0,
) -> BenchResult:
    """Press through ``visits`` visits and measure; then measure idling."""
    result = BenchResult()
    with httpx.Client(base_url=url, timeout=30, follow_redirects=True) as client:
        for _ in range(visits):
            started = _one_visit(client, result)
            if approve is not None:
                _wait_print(agent, started, result)
            client.post("/action/finish", data={"step": agent.controller.step.value})
    result.idle_cpu_percent = _idle_cpu(idle_s)
    result.rss_mb = _rss_mb()
    result.peak_rss_mb = _rss_mb("VmHWM:")
    return result


def _one_visit(client: httpx.Client, result: BenchResult) -> float:
    submitted = 0.0
    for name, step, form in ACTIONS:
        start = _press(client, result, name, step, form)
        if name == "check_face":
            _finish_face_check(client, result)
        if name == "submit":
            submitted = start
    return submitted


def _press(
    client: httpx.Client,
    result: BenchResult,
    name: str,
    step: str,
    form: dict[str, str],
) -> float:
    start = time.perf_counter()
    answer = client.post(f"/action/{name}", data={"step": step, **form})
    answer.raise_for_status()
    elapsed = (time.perf_counter() - start) * 1000
    result.step_ms.setdefault(name, []).append(elapsed)
    return start


def _finish_face_check(client: httpx.Client, result: BenchResult) -> None:
    """Try again until the face passes or staff take over (photos never blink)."""
    for _ in range(10):
        step = client.get("/api/state").json()["step"]
        if step == Step.FACE.value:
            _press(client, result, "check_face", step, {})
        elif step == Step.STAFF.value:
            _press(client, result, "staff_checked", step, {})
        else:
            return


def _wait_print(agent: Agent, started: float, result: BenchResult) -> None:
    deadline = time.monotonic() + 30
    while agent.controller.step is Step.WAITING:
        if time.monotonic() > deadline:
            logger.warning("no decision within 30 s")
            return
        time.sleep(0.005)
    result.submit_to_print_ms.append((time.perf_counter() - started) * 1000)
    while agent.controller.step is Step.PRINTING and time.monotonic() < deadline:
        time.sleep(0.01)


def _idle_cpu(seconds: float) -> float:
    before = resource.getrusage(resource.RUSAGE_SELF)
    time.sleep(seconds)
    after = resource.getrusage(resource.RUSAGE_SELF)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return 100.0 * used / seconds


def _rss_mb(field: str = "VmRSS:") -> float:
    """Return the process's resident (or, with ``VmHWM:``, peak) memory."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


def serve(agent: Agent) -> tuple[str, Callable[[], None]]:
    """Serve the agent's UI in a thread; return its address and a stopper."""
    config = uvicorn.Config(
        agent.ui.app, host="127.0.0.1", port=agent.config.port, log_level="warning"
    )
    server = uvicorn.Server(config)
    failures: list[BaseException] = []

    def run() -> None:
        """Serve until told to stop; keep why it could not start."""
        try:
            server.run()
        except (OSError, SystemExit) as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            why = f" ({failures[0]})" if failures else ""
            raise click.ClickException(
                f"the agent's screen could not listen on 127.0.0.1:"
                f"{agent.config.port}{why}; stop the agent using it or set "
                "another port in the configuration"
            )
        time.sleep(0.02)

    def stop() -> None:
        """Stop the server."""
        server.should_exit = True
        thread.join(10)

    return f"http://127.0.0.1:{agent.config.port}", stop


def officer_approving(bridge_config_path: Path) -> tuple[Callable[[], None], Any]:
    """Return a function that approves pending requests at once, and its bridge."""
    from cloud_bridge.config import load_bridge_config
    from cloud_bridge.context import Bridge
    from cloud_bridge.copies import Officer
    from cloud_bridge.decisions import OutboxDecisionSink

    bridge = Bridge(load_bridge_config(bridge_config_path))
    sink = OutboxDecisionSink(bridge.store.engine)
    office = bridge.config.office()
    officer = Officer(office.officer_name, office.officer_title)

    def approve() -> None:
        """Approve every pending request."""
        for record in bridge.store.list_requests(state="pending"):
            sink.approved(record, bridge.copies.certify(record.request_id, officer))

    return approve, bridge


def with_face_photos(config: AgentConfig, faces: Path) -> AgentConfig:
    """Return ``config`` playing ``faces`` to the face models.

    Raises:
        click.BadParameter: fewer than two photos in ``faces``.
    """
    photos = list_images(faces)
    if len(photos) < 2:
        raise click.BadParameter(
            f"{faces} needs two photos or more", param_hint="--faces"
        )
    simulation = config.simulation.model_copy(
        update={"portrait": photos[0], "face_frames": faces}
    )
    vision = config.vision.model_copy(update={"face_checker": "models"})
    return config.model_copy(update={"simulation": simulation, "vision": vision})


def scratch_config(config: AgentConfig, directory: Path, online: bool) -> AgentConfig:
    """Return ``config`` with its agent store and outbox in ``directory``.

    ``online`` keeps the kiosk's identity, where the officer of
    ``--bridge-config`` can receive its requests; offline the kiosk has no
    identity, certificate or key, so nothing it submits can reach an office.
    """
    if online:
        identity = config.path(config.services.identity_dir).absolute()
        services = config.services.model_copy(update={"identity_dir": identity})
        return config.model_copy(update={"data_dir": directory, "services": services})
    office = config.office.model_copy(update={"cert_file": None, "key_file": None})
    services = config.services.model_copy(
        update={"identity_dir": Path("identity"), "key": KeySection()}
    )
    return config.model_copy(
        update={"data_dir": directory, "office": office, "services": services}
    )


def bench_with(
    config: AgentConfig, visits: int, approve: Callable[[], None] | None, idle_s: float
) -> BenchResult:
    """Build the agent, run the visits (approving in a thread), stop."""
    agent = build_agent(config, RecordingSpeaker())
    started = time.monotonic()
    agent.start()
    try:
        url, stop_server = serve(agent)
        loaded = _wait_for_models(agent, started)
    except BaseException:
        agent.stop()
        raise
    stop = threading.Event()

    def officer_loop() -> None:
        """Approve requests until stopped."""
        while approve is not None and not stop.wait(0.05):
            try:
                approve()
            except Exception:
                logger.exception("the bench officer failed")

    officer = threading.Thread(target=officer_loop, daemon=True)
    officer.start()
    try:
        result = run_visits(agent, url, visits, approve, idle_s)
        result.models_load_s = loaded
        return result
    finally:
        stop.set()
        officer.join(10)
        stop_server()
        agent.stop()


def _wait_for_models(agent: Agent, started: float) -> float:
    """Wait until the agent has loaded its models; return the seconds it took.

    A kiosk starts long before its first citizen, so the visits are timed
    with the models loaded, and the loading is reported on its own.
    """
    if not agent.models_ready.wait(MODELS_LOAD_TIMEOUT_S):
        raise click.ClickException(
            f"the agent's models did not load within {MODELS_LOAD_TIMEOUT_S} s; "
            "read the agent's log for the model that failed"
        )
    return time.monotonic() - started


@click.command("visit")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Agent TOML file (simulated devices by default).",
)
@click.option(
    "--bridge-config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Bridge TOML file: approve each request at once and time the printing.",
)
@click.option("--visits", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option(
    "--idle-s", type=click.FloatRange(1, 600), default=10.0, show_default=True
)
@click.option(
    "--faces",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help=(
        "Photos of one person: the first is the card's portrait, the others "
        "play on the face camera, and the face models check them."
    ),
)
def visit_bench(
    config_path: Path | None,
    bridge_config: Path | None,
    visits: int,
    idle_s: float,
    faces: Path | None,
) -> None:
    """Run simulated visits; print step times, submit-to-print, idle CPU, memory."""
    config = load_agent_config(config_path)
    if faces is not None:
        config = with_face_photos(config, faces)
    approve = None
    bridge = None
    if bridge_config is not None:
        approve, bridge = officer_approving(bridge_config)
    try:
        with tempfile.TemporaryDirectory(prefix="kiosk-bench-") as scratch:
            isolated = scratch_config(config, Path(scratch), bridge is not None)
            result = bench_with(isolated, visits, approve, idle_s)
    finally:
        if bridge is not None:
            bridge.close()
    click.echo(json.dumps(result.summary(), indent=2))
