"""The bridge's configuration: one TOML file, sections validated by pydantic.

Relative paths are resolved against ``data_dir``. Secrets (the HSM PIN) come
from the configuration or from a file named by it, never from the code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from kiosk.errors import ConfigError
from kiosk.settings import Section, load_settings

ENV_PREFIX = "KIOSK_BRIDGE"
DEFAULT_DATA_DIR = Path("var/bridge")

DOCUMENT_TYPES = (
    "citizen_id_card",
    "birth_certificate",
    "diploma",
    "residence_confirmation",
    "marriage_certificate",
    "transcript",
    "land_use_certificate",
    "other",
)


class OfficeSection(Section):
    """One justice office that certifies copies."""

    name: str = Field(
        "Ủy ban nhân dân Phường Mẫu",
        min_length=3,
        max_length=120,
        description="The office's full name as printed in the certification block.",
    )
    book: str = Field(
        "01/SCT/BS",
        pattern=r"^[0-9A-Za-z/\-.]{1,24}$",
        description="The certification book (quyển số) copies are entered in.",
    )
    officer_name: str = Field(
        "Nguyễn Văn Mẫu",
        min_length=3,
        max_length=80,
        description="The officer named when a copy is made from the command line.",
    )
    officer_title: str = Field(
        "Công chức Tư pháp - Hộ tịch",
        min_length=3,
        max_length=80,
        description="That officer's title.",
    )


class CopySection(Section):
    """Limits and presentation of certified copies."""

    max_pages: int = Field(20, ge=1, le=200, description="Most pages in one copy.")
    max_page_pixels: int = Field(
        40_000_000,
        ge=1_000_000,
        le=200_000_000,
        description="Most pixels in one page image; larger is refused as a bomb.",
    )
    max_page_bytes: int = Field(
        20_000_000, ge=100_000, description="Most bytes in one page image file."
    )
    min_page_side: int = Field(
        300, ge=16, description="Smallest acceptable page image side, in pixels."
    )
    document_types: list[str] = Field(
        default_factory=lambda: list(DOCUMENT_TYPES),
        min_length=1,
        description="Document types the office certifies.",
    )
    lookup_url: str = Field(
        "http://127.0.0.1:8443/c/",
        pattern=r"^https?://",
        description="Base address printed in the QR code; the identifier follows.",
    )
    watermark: str = Field(
        "TTPVHCC", min_length=1, max_length=16, description="Text on every page."
    )


class DatabaseSection(Section):
    """Where requests, copies and counters are stored."""

    url: str = Field(
        "sqlite:///bridge.db",
        description="SQLAlchemy URL: sqlite:///FILE or postgresql+psycopg://...",
    )


class ArchiveSection(Section):
    """The content-addressed store of signed copies."""

    path: Path = Field(Path("archive"), description="Archive directory.")
    min_free_bytes: int = Field(
        50_000_000, ge=0, description="Refuse to store when less space is free."
    )


class HsmSection(Section):
    """The PKCS#11 token holding the office's signing and seal keys."""

    module: Path = Field(
        Path("/usr/lib/softhsm/libsofthsm2.so"),
        description="The vendor's PKCS#11 module (SoftHSM2 for development).",
    )
    softhsm_conf: Path | None = Field(
        Path("softhsm2.conf"),
        description="SOFTHSM2_CONF to set before loading SoftHSM2; empty for others.",
    )
    token_label: str = Field("ttpvhcc-office", min_length=1, max_length=32)
    pin: SecretStr | None = Field(
        None, description="User PIN; prefer pin_file or the environment."
    )
    pin_file: Path | None = Field(
        Path("secrets/hsm-pin"), description="File holding the user PIN."
    )
    so_pin_file: Path = Field(
        Path("secrets/hsm-so-pin"),
        description="Where 'kiosk bridge init' writes the SO PIN of a new token.",
    )
    softhsm_token_dir: Path = Field(
        Path("softhsm-tokens"),
        description="Token directory named in the softhsm2.conf that init writes.",
    )
    signing_key_label: str = Field("office-signing", min_length=1)
    seal_key_label: str = Field("office-seal", min_length=1)

    def read_pin(self, data_dir: Path) -> str:
        """Return the user PIN from the configuration or the PIN file."""
        if self.pin is not None:
            return self.pin.get_secret_value()
        if self.pin_file is None:
            raise ConfigError("hsm.pin or hsm.pin_file must be set")
        path = resolve(data_dir, self.pin_file)
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the HSM PIN from {path}: {exc.strerror}; "
                "run 'kiosk bridge init' or set KIOSK_BRIDGE__HSM__PIN"
            ) from exc


class TimestampSection(Section):
    """The RFC 3161 timestamp authority."""

    url: str = Field(
        "http://127.0.0.1:8790/tsa", pattern=r"^https?://", description="TSA URL."
    )
    timeout_s: float = Field(5.0, gt=0, le=60)


class PkiSection(Section):
    """Certificates and revocation data (the development PKI by default)."""

    dir: Path = Field(Path("pki"), description="Directory of PEM files.")
    revocation_url: str = Field(
        "http://127.0.0.1:8790",
        pattern=r"^https?://",
        description="Base URL the development CRL and OCSP responder are served at.",
    )
    root_validity_days: int = Field(
        3652, ge=1, le=36_500, description="Lifetime of the development root CA."
    )
    leaf_validity_days: int = Field(
        730,
        ge=1,
        le=3_650,
        description="Lifetime of the signing, seal, TSA and OCSP certificates.",
    )


class SigningSection(Section):
    """How copies are signed."""

    level: Literal["B-B", "B-T", "B-LT", "B-LTA"] = Field(
        "B-LTA", description="PAdES baseline level to reach."
    )
    revocation_cache_s: int = Field(
        300, ge=0, le=86_400, description="How long fetched CRLs/OCSP are reused."
    )


class HttpSection(Section):
    """The bridge's HTTP server."""

    host: str = Field("127.0.0.1")
    port: int = Field(8443, ge=1, le=65535)
    max_upload_bytes: int = Field(50_000_000, ge=1_000)


class BridgeConfig(Section):
    """Everything the bridge reads at start."""

    data_dir: Path = Field(
        DEFAULT_DATA_DIR, description="Base of every relative path below."
    )
    office_code: str = Field(
        "PHUONG-MAU",
        pattern=r"^[A-Z0-9\-]{2,24}$",
        description="The default office for copies made here.",
    )
    offices: dict[str, OfficeSection] = Field(
        default_factory=lambda: {"PHUONG-MAU": OfficeSection()},
        description="Offices by code.",
    )
    copies: CopySection = Field(default_factory=CopySection)
    database: DatabaseSection = Field(default_factory=DatabaseSection)
    archive: ArchiveSection = Field(default_factory=ArchiveSection)
    hsm: HsmSection = Field(default_factory=HsmSection)
    timestamp: TimestampSection = Field(default_factory=TimestampSection)
    pki: PkiSection = Field(default_factory=PkiSection)
    signing: SigningSection = Field(default_factory=SigningSection)
    http: HttpSection = Field(default_factory=HttpSection)

    def path(self, relative: Path) -> Path:
        """Resolve a configured path against ``data_dir``."""
        return resolve(self.data_dir, relative)

    def office(self, code: str | None = None) -> OfficeSection:
        """Return the office named ``code`` (the default office when None)."""
        key = code or self.office_code
        try:
            return self.offices[key]
        except KeyError as exc:
            raise ConfigError(
                f"office {key!r} is not configured; known: {sorted(self.offices)}"
            ) from exc

    def database_url(self) -> str:
        """Return the database URL with a relative SQLite file under data_dir."""
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url[len(prefix) :].startswith("/"):
            name = url[len(prefix) :]
            if name and name != ":memory:":
                return prefix + str(self.path(Path(name)).absolute())
        return url


def resolve(base: Path, relative: Path) -> Path:
    """Return ``relative`` under ``base`` unless it is absolute."""
    return relative if relative.is_absolute() else base / relative


def load_bridge_config(path: Path | None = None) -> BridgeConfig:
    """Load the bridge configuration (embedded defaults when ``path`` is None)."""
    return load_settings(BridgeConfig, path, ENV_PREFIX)
