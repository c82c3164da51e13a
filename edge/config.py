"""The kiosk agent's configuration: one TOML file validated by pydantic.

The embedded defaults run every device simulated against a bridge on this
machine, so ``kiosk agent`` works on a laptop without a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from drivers.config import DevicesConfig
from kiosk.settings import Section, load_settings
from models.config import DEFAULT_MODEL_DIR
from ota.config import OtaClientSection
from provisioning.config import KeyStoreSection

ENV_PREFIX = "KIOSK_AGENT"


class FeeSection(Section):
    """What a certified copy costs (Vietnamese dong)."""

    first_pages_vnd: int = Field(
        2000, ge=0, le=1_000_000, description="Fee per page for the first pages."
    )
    later_pages_vnd: int = Field(
        1000, ge=0, le=1_000_000, description="Fee per page from the cheaper page."
    )
    cheaper_from_page: int = Field(
        3, ge=1, le=1000, description="First page charged the later rate."
    )
    max_per_copy_vnd: int = Field(
        200_000, ge=0, le=100_000_000, description="Cap on the fee of one copy."
    )


class OfficeLinkSection(Section):
    """How the kiosk reaches the office: MQTT 5 and HTTPS with mutual TLS."""

    mqtt_host: str = Field("127.0.0.1", max_length=253, description="Broker host.")
    mqtt_port: int = Field(8883, ge=1, le=65535, description="Broker TLS port.")
    https_url: str = Field(
        "https://127.0.0.1:8444",
        pattern=r"^https?://",
        description="Base address of the bridge's kiosk upload endpoint.",
    )
    ca_file: Path | None = Field(None, description="CA that signed the servers.")
    cert_file: Path | None = Field(None, description="This kiosk's certificate.")
    key_file: Path | None = Field(None, description="This kiosk's private key.")
    keepalive_s: int = Field(30, ge=5, le=600, description="MQTT keep-alive.")
    retry_s: float = Field(
        2.0, gt=0, le=300, description="Pause before retrying an unsent request."
    )
    timeout_s: float = Field(10.0, gt=0, le=120, description="HTTPS timeout.")


class SessionSection(Section):
    """Timeouts and limits of one citizen's visit."""

    idle_s: float = Field(
        60.0, ge=5, le=600, description="No touch for this long shows the warning."
    )
    warning_s: float = Field(
        30.0, ge=20, le=300, description="Time the warning gives to continue."
    )
    face_tries: int = Field(3, ge=1, le=5, description="Face tries before staff.")
    max_pages: int = Field(20, ge=1, le=200, description="Most pages per copy.")
    max_copies: int = Field(5, ge=1, le=10, description="Most paper copies.")
    auto_capture: bool = Field(
        True, description="Take the page once it has been good for a few seconds."
    )
    min_free_mb: int = Field(
        200,
        ge=0,
        le=1_000_000,
        description="Free disk space under data_dir needed to start a new visit.",
    )


class SimulationSection(Section):
    """Simulated media the agent generates for its simulated cameras."""

    enabled: bool = Field(
        True, description="Generate an ID card, a face sequence and pages."
    )
    dir: Path = Field(Path("simulation"), description="Where they are written.")
    portrait: Path | None = Field(
        None, description="A face photo printed on the ID card instead of a drawing."
    )
    face_frames: Path | None = Field(
        None,
        description=(
            "A directory of photos of one person the face camera plays instead "
            "of the drawn face (for the face models: [vision] face_checker)."
        ),
    )


class ScreenSection(Section):
    """The touch screen's power and the attract screen."""

    wake: Literal["command", "backlight", "none"] = Field(
        "command", description="How the presence sensor turns the screen on."
    )
    wake_command: list[str] = Field(
        default_factory=lambda: ["xset", "dpms", "force", "on"],
        max_length=20,
        description="Command that turns the screen on (wake = command).",
    )
    backlight: Path = Field(
        Path("/sys/class/backlight/10-0045"),
        description="Backlight device whose bl_power is cleared (wake = backlight).",
    )
    attract_after_s: float = Field(
        120.0,
        ge=10,
        le=3600,
        description="Nobody seen or touching the welcome screen this long: attract.",
    )


class AudioSection(Section):
    """The headphone jack: plugging headphones in turns speech mode on."""

    headphone_jack: Literal["gpio", "alsa", "none"] = Field(
        "gpio",
        description=(
            "gpio: a jack-sense switch on the GPIO input named by headphone_pin; "
            "alsa: the codec's jack control read with amixer; none."
        ),
    )
    headphone_pin: str = Field(
        "headphones", max_length=40, description="GPIO input of the jack switch."
    )
    alsa_card: str = Field("0", max_length=40, description="ALSA card (amixer -c).")
    alsa_control: str = Field(
        "Headphone Jack", max_length=80, description="ALSA jack control name."
    )


class VisionSection(Section):
    """Which face check and page reading the visit uses."""

    face_checker: Literal["auto", "models", "simulated"] = Field(
        "auto",
        description=(
            "models: YuNet and SFace against the card portrait, liveness with "
            "BlazeFace and the face mesh; simulated: judges the simulated "
            "cameras' drawn cartoon faces by colour and movement (development "
            "only, it cannot tell people apart); auto: simulated when the face "
            "camera is simulated, the models otherwise."
        ),
    )
    ocr: Literal["models", "off"] = Field(
        "models",
        description="Read each page with the OCR models (off: the citizen types).",
    )
    min_ocr_confidence: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="Below this mean line confidence a page counts as unreadable.",
    )
    face_seconds: float = Field(
        6.0, ge=1.0, le=30.0, description="Longest a face try films the citizen."
    )
    model_dir: Path = Field(
        DEFAULT_MODEL_DIR, description="Where `kiosk models fetch` put the models."
    )
    threads: int = Field(1, ge=1, le=16, description="Threads per inference session.")
    face_threshold: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description="Cosine threshold of the face match; None: the calibrated one.",
    )


class KeySection(KeyStoreSection):
    """Where the kiosk's private key is, and the tunnel a token key needs.

    With a token the agent's TLS connections go through a local stunnel
    tunnel (:mod:`edge.tunnel`), which needs stunnel4 and
    libengine-pkcs11-openssl.
    """

    stunnel_command: str = Field(
        "stunnel",
        min_length=1,
        max_length=255,
        description="The stunnel program (pkcs11 backend).",
    )


class ServicesSection(Section):
    """The agent's background services: telemetry, certificate renewal, updates.

    They need the identity that ``kiosk provision`` writes; without it the
    agent runs without them and says so.
    """

    identity_dir: Path = Field(
        Path("identity"),
        description="The kiosk's identity from 'kiosk provision' (under data_dir).",
    )
    telemetry: bool = Field(
        True, description="Publish status, health and events; answer commands."
    )
    health_interval_s: float = Field(
        60.0, ge=1, le=3600, description="Seconds between health reports."
    )
    outbox_max_rows: int = Field(
        10_000, ge=100, le=1_000_000, description="Telemetry outbox bound (rows)."
    )
    renewal: bool = Field(True, description="Renew the kiosk certificate in time.")
    renew_before_days: float = Field(
        10, gt=0, le=200, description="Renew this many days before the end."
    )
    renewal_check_s: float = Field(
        3600, ge=1, le=86_400, description="Longest pause between renewal checks."
    )
    renewal_retry_min_s: float = Field(
        30, ge=0.1, le=3600, description="First pause after a failed renewal."
    )
    renewal_retry_max_s: float = Field(
        3600, ge=1, le=86_400, description="Longest pause between failed renewals."
    )
    bridge_ca_file: Path | None = Field(
        None,
        description="CA of the bridge's HTTPS certificate (renewal and updates); "
        "none for the system's CAs.",
    )
    bridge_timeout_s: float = Field(
        20, gt=0, le=300, description="HTTP timeout towards the bridge."
    )
    updates: bool = Field(
        True, description="Run the update client (needs ota.trusted_root)."
    )
    update_tick_s: float = Field(
        1.0, gt=0, le=60, description="How often the update worker looks for work."
    )
    ota: OtaClientSection = Field(default_factory=OtaClientSection)
    key: KeySection = Field(default_factory=KeySection)


class AgentConfig(Section):
    """Everything the kiosk agent needs."""

    kiosk_id: str = Field(
        "kiosk-dev-01", pattern=r"^[a-z0-9][a-z0-9\-]{2,62}$", description="Id."
    )
    office_code: str = Field(
        "PHUONG-MAU", max_length=32, description="Certifying office."
    )
    data_dir: Path = Field(Path("var/kiosk"), description="State and outbox.")
    host: str = Field("127.0.0.1", max_length=253, description="UI listen host.")
    port: int = Field(8080, ge=1, le=65535, description="UI listen port.")
    lookup_url: str = Field(
        "http://127.0.0.1:8443/c/",
        pattern=r"^https?://",
        description="Lookup address printed on receipts.",
    )
    speech_command: list[str] = Field(
        default_factory=lambda: ["espeak-ng", "-v", "{voice}", "-a", "{volume}"],
        description="Command that speaks its standard input.",
    )
    fees: FeeSection = Field(default_factory=FeeSection)
    office: OfficeLinkSection = Field(default_factory=OfficeLinkSection)
    session: SessionSection = Field(default_factory=SessionSection)
    simulation: SimulationSection = Field(default_factory=SimulationSection)
    vision: VisionSection = Field(default_factory=VisionSection)
    screen: ScreenSection = Field(default_factory=ScreenSection)
    audio: AudioSection = Field(default_factory=AudioSection)
    devices: DevicesConfig = Field(default_factory=DevicesConfig)
    services: ServicesSection = Field(default_factory=ServicesSection)

    @model_validator(mode="after")
    def _token_key_has_what_it_needs(self) -> AgentConfig:
        key = self.services.key
        if key.key_backend != "pkcs11":
            return self
        missing = [
            name
            for name, value in (
                ("office.cert_file", self.office.cert_file),
                ("office.ca_file", self.office.ca_file),
                ("services.key.pkcs11_pin", key.pkcs11_pin),
            )
            if value is None
        ]
        if missing:
            raise ValueError(
                "services.key.key_backend = 'pkcs11' needs " + ", ".join(missing)
            )
        return self

    def path(self, value: Path) -> Path:
        """Return ``value`` resolved against the data directory."""
        return value if value.is_absolute() else self.data_dir / value


def load_agent_config(path: Path | None = None) -> AgentConfig:
    """Load the agent's configuration (all defaults when ``path`` is None)."""
    return load_settings(AgentConfig, path, ENV_PREFIX)
