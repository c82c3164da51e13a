"""The kiosk agent's configuration: one TOML file validated by pydantic.

The embedded defaults run every device simulated against a bridge on this
machine, so ``kiosk agent`` works on a laptop without a file.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from drivers.config import DevicesConfig
from kiosk.settings import Section, load_settings

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


class SimulationSection(Section):
    """Simulated media the agent generates for its simulated cameras."""

    enabled: bool = Field(
        True, description="Generate an ID card, a face sequence and pages."
    )
    dir: Path = Field(Path("simulation"), description="Where they are written.")


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
    devices: DevicesConfig = Field(default_factory=DevicesConfig)

    def path(self, value: Path) -> Path:
        """Return ``value`` resolved against the data directory."""
        return value if value.is_absolute() else self.data_dir / value


def load_agent_config(path: Path | None = None) -> AgentConfig:
    """Load the agent's configuration (all defaults when ``path`` is None)."""
    return load_settings(AgentConfig, path, ENV_PREFIX)
