"""Build and run the kiosk agent: devices, store, outbox, link and the UI.

``kiosk agent`` runs it with simulated devices by default: the cameras play
a generated ID card, face sequence and pages, the receipt printer is the
ESC/POS simulator and the A4 printer writes PDFs to a directory.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import click
import uvicorn

from drivers.camera import Camera, CaptureMode
from drivers.devices import Devices, build_devices
from drivers.errors import DriverError
from drivers.gpio import EdgeEvent
from drivers.headphones import AlsaHeadphoneJack, GpioHeadphoneJack, HeadphoneJack
from drivers.screen import BacklightScreen, CommandScreen, ScreenPower
from edge.config import AgentConfig, load_agent_config
from edge.link import HttpsBlobs, MqttLink
from edge.outbox import OutboxSender
from edge.printing import CopyPrinter
from edge.reading import ModelDocumentReader
from edge.services import AgentServices, build_services
from edge.simulation import SceneCameraBackend, write_media
from edge.speech import EspeakSpeaker, RecordingSpeaker, Speaker
from edge.store import AgentStore
from edge.tunnel import TlsTunnel, https_endpoint, tunnel_for
from edge.vision import VisionModels, build_face_checker, uses_face_models
from edge.visit import Devices as VisitDevices
from edge.visit import VisitController
from edge.web.app import AgentUi
from kiosk.memory import return_large_blocks
from protocol.telemetry import DetailValue

logger = logging.getLogger(__name__)


@dataclass
class Agent:
    """Every running part of the kiosk agent."""

    config: AgentConfig
    store: AgentStore
    devices: Devices
    link: MqttLink
    blobs: HttpsBlobs
    sender: OutboxSender
    controller: VisitController
    ui: AgentUi
    speaker: Speaker
    scenes: dict[str, SceneCameraBackend]
    vision: VisionModels
    services: AgentServices | None = None
    screen: ScreenPower | None = None
    tunnel: TlsTunnel | None = None
    models_ready: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        """Start the devices, resume or end an interrupted visit, connect.

        Raises:
            TunnelError: the key is on a token and its TLS tunnel cannot run.
        """
        if self.tunnel is not None:
            self.tunnel.start()
        try:
            self._start_parts()
        except BaseException:
            if self.tunnel is not None:
                self.tunnel.stop()  # no orphaned stunnel holding the key
            raise

    def _start_parts(self) -> None:
        self.devices.start()
        threading.Thread(
            target=self._load_models, name="load-models", daemon=True
        ).start()
        self.controller.recover()
        self.sender.start()
        self.link.start()
        if self.services is not None:
            self.services.start()
        self._watch_presence()
        self._watch_headphones()
        self._stop = threading.Event()
        threading.Thread(target=self._idle_loop, name="idle", daemon=True).start()

    def _load_models(self) -> None:
        """Load the models the configuration uses, then set ``models_ready``."""
        try:
            self.vision.warm_up(
                uses_face_models(self.config.vision, self.config.devices),
                self.config.vision.ocr == "models",
            )
        finally:
            self.models_ready.set()

    def stop(self) -> None:
        """Stop everything; unsent requests stay on disk."""
        self._stop.set()
        if self.services is not None:
            self.services.stop()
        self.sender.stop()
        self.link.stop()
        self.blobs.close()
        self.devices.close()
        self.store.close()
        if self.tunnel is not None:
            self.tunnel.stop()

    def show_scene(self, camera: str, scene: str) -> None:
        """Point a simulated camera at one of its scenes."""
        backend = self.scenes.get(camera)
        if backend is not None:
            backend.show(scene)

    def _idle_loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.controller.expire_if_idle()
            except Exception:
                logger.exception("the idle check failed")

    def _watch_presence(self) -> None:
        try:
            pin = self.devices.pins.input("presence")
        except DriverError as exc:
            logger.warning("no presence sensor: %s", exc)
            return

        def woke(event: EdgeEvent) -> None:
            """Wake the screen for a person in front of the kiosk; a touch."""
            if event.level:
                logger.debug("someone is in front of the kiosk")
                if self.screen is not None:
                    self.screen.wake()
                self.controller.touch()

        pin.on_edge(woke)

    def _watch_headphones(self) -> None:
        jack = headphone_jack(self.config, self.devices)
        if jack is None:
            return
        jack.on_change(self.controller.set_headphones)
        try:
            self.controller.set_headphones(jack.plugged())
        except DriverError as exc:
            logger.warning("the headphone jack cannot be read: %s", exc)


def headphone_jack(config: AgentConfig, devices: Devices) -> HeadphoneJack | None:
    """Return the configured headphone jack, or None without one."""
    audio = config.audio
    if audio.headphone_jack == "alsa":
        return AlsaHeadphoneJack(audio.alsa_card, audio.alsa_control)
    if audio.headphone_jack == "gpio":
        try:
            return GpioHeadphoneJack(devices.pins.input(audio.headphone_pin))
        except DriverError as exc:
            logger.warning("no headphone jack switch: %s", exc)
    return None


def screen_power(config: AgentConfig) -> ScreenPower | None:
    """Return how the screen is woken, or None when it is not."""
    screen = config.screen
    if screen.wake == "command":
        return CommandScreen(screen.wake_command)
    if screen.wake == "backlight":
        return BacklightScreen(screen.backlight)
    return None


def build_agent(config: AgentConfig, speaker: Speaker | None = None) -> Agent:
    """Build the agent from ``config`` (nothing is started)."""
    # camera frames, page images and the models' buffers are megabytes each:
    # give them back to the system when freed (see kiosk.memory)
    return_large_blocks()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = AgentStore(config.path(Path("agent.db")))
    devices = build_devices(config.devices)
    scenes = _simulated_cameras(config, devices)
    office = config.office
    tunnel = tunnel_for(config)
    https = https_endpoint(office.https_url)
    blobs = HttpsBlobs(
        office,
        via=tunnel.route(*https) if tunnel is not None and https else None,
    )
    sender = OutboxSender(
        config.kiosk_id, store, _NoLink(), blobs, retry_s=office.retry_s
    )
    link = MqttLink(
        config.kiosk_id,
        office,
        sender.handle,
        via=tunnel.route(office.mqtt_host, office.mqtt_port) if tunnel else None,
    )
    sender.publisher = link
    link.on_connected = sender.wake
    printer = CopyPrinter(
        devices.document_printer,
        devices.receipt_printer,
        blobs.fetch,
        config.lookup_url,
    )
    speaker = speaker or EspeakSpeaker(config.speech_command)
    holder: dict[str, Agent] = {}
    visit_devices = VisitDevices(
        devices.cameras["document"],
        devices.cameras["face"],
        lambda camera, scene: holder["agent"].show_scene(camera, scene),
    )
    vision = VisionModels(config.vision)
    reader = (
        ModelDocumentReader(vision.page_reader, config.vision.min_ocr_confidence)
        if config.vision.ocr == "models"
        else None
    )
    controller = VisitController(
        config,
        store,
        visit_devices,
        build_face_checker(config.vision, config.devices, vision),
        printer,
        sender.wake,
        reader=reader,
    )
    sender.on_ack = controller.on_ack
    sender.on_decision = lambda d: controller.on_decision(d.model_dump(mode="json"))
    ui = AgentUi(controller, devices.cameras, speaker, link.connected.is_set)
    agent = Agent(
        config,
        store,
        devices,
        link,
        blobs,
        sender,
        controller,
        ui,
        speaker,
        scenes,
        vision,
        tunnel=tunnel,
    )
    agent.services = build_services(
        config,
        busy=lambda: controller.step != "welcome",
        devices=devices.health_report,
        links=[link, blobs],
        tunnel=tunnel,
    )
    _send_events(agent)
    agent.screen = screen_power(config)
    holder["agent"] = agent
    return agent


def _send_events(agent: Agent) -> None:
    """Send the visit's events through the telemetry outbox when it runs."""
    telemetry = agent.services.telemetry if agent.services is not None else None
    if telemetry is None:
        logger.info("no telemetry: the visit's events are not sent")
        return

    def send(kind: str, detail: dict[str, DetailValue]) -> None:
        """Queue the event in the telemetry outbox."""
        telemetry.event(kind, **detail)

    agent.controller.events.sink = send


class _NoLink:
    """Stand in until the MQTT link is attached."""

    def publish(self, topic: str, payload: bytes, timeout: float) -> bool:
        """Send nothing."""
        return False


def _simulated_cameras(
    config: AgentConfig, devices: Devices
) -> dict[str, SceneCameraBackend]:
    if not config.simulation.enabled:
        return {}
    simulation = config.simulation
    media = write_media(
        config.path(simulation.dir),
        portrait=simulation.portrait,
        face_frames=simulation.face_frames,
    )
    scenes: dict[str, SceneCameraBackend] = {}
    for name, role, names in (
        ("document", CaptureMode.DOCUMENT, ("idle", "card", "pages")),
        ("face", CaptureMode.FACE, ("idle", "face")),
    ):
        section = config.devices.cameras.get(name)
        if section is None or section.backend != "simulated":
            continue
        backend = SceneCameraBackend({scene: media[scene] for scene in names})
        scenes[name] = backend
        devices.cameras[name] = Camera(f"camera.{name}", backend, role)
    return scenes


@click.command("agent")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Agent TOML file; without it every device is simulated.",
)
@click.option("--port", type=int, default=None, help="Override the UI port.")
@click.option("--silent", is_flag=True, help="Do not speak (keep the text only).")
def agent_command(config_path: Path | None, port: int | None, silent: bool) -> None:
    """Run the kiosk agent and serve its screens to the local browser."""
    config = load_agent_config(config_path)
    if port is not None:
        config = config.model_copy(update={"port": port})
    agent = build_agent(config, RecordingSpeaker() if silent else None)
    agent.start()
    click.echo(f"kiosk {config.kiosk_id}: open http://{config.host}:{config.port}/")
    try:
        uvicorn.run(
            agent.ui.app, host=config.host, port=config.port, log_level="warning"
        )
    finally:
        agent.stop()
