"""The bridge's configuration: one TOML file, sections validated by pydantic.

Relative paths are resolved against ``data_dir``. Secrets (the HSM PIN) come
from the configuration or from a file named by it, never from the code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from kiosk.errors import ConfigError
from kiosk.settings import Section, load_settings
from ota.config import OtaRepositorySection

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


class ObjectStoreSection(Section):
    """An S3-compatible object store holding the archive (city scale)."""

    endpoint_url: str = Field(
        "https://s3.example.invalid",
        pattern=r"^https?://[^/]+",
        description="The object store's S3 endpoint.",
    )
    bucket: str = Field(
        "ttpvhcc-archive",
        pattern=r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$",
        description="Bucket of the archive (create it with Object Lock on).",
    )
    prefix: str = Field(
        "",
        pattern=r"^([A-Za-z0-9_\-]+/)*$",
        description="Key prefix, empty or ending in '/', e.g. 'phuong-mau/'.",
    )
    region: str = Field("us-east-1", min_length=1, description="Signing region.")
    access_key_id: str = Field("", description="Access key id of the bridge.")
    secret_access_key: SecretStr | None = Field(
        None, description="Secret key; prefer secret_access_key_file."
    )
    secret_access_key_file: Path | None = Field(
        Path("secrets/s3-secret-key"), description="File holding the secret key."
    )
    ca_file: Path | None = Field(
        None, description="CA bundle for the endpoint's TLS; the system's if empty."
    )
    retention_days: int = Field(
        0,
        ge=0,
        le=36_500,
        description=(
            "Object Lock retention (COMPLIANCE mode) set on every blob; 0 "
            "leaves it to the bucket's default retention."
        ),
    )
    timeout_s: float = Field(10.0, gt=0, le=120, description="Per request.")
    attempts: int = Field(3, ge=1, le=10, description="Tries per request.")

    def read_secret(self, data_dir: Path) -> str:
        """Return the secret access key from the configuration or its file."""
        return read_secret(
            self.secret_access_key,
            self.secret_access_key_file,
            data_dir,
            "archive.s3.secret_access_key",
            "KIOSK_BRIDGE__ARCHIVE__S3__SECRET_ACCESS_KEY",
        )


class ArchiveSection(Section):
    """The content-addressed store of signed copies."""

    backend: Literal["directory", "s3"] = Field(
        "directory",
        description="directory (one machine) or s3 (an S3-compatible object store).",
    )
    path: Path = Field(Path("archive"), description="Archive directory.")
    min_free_bytes: int = Field(
        50_000_000, ge=0, description="Refuse to store when less space is free."
    )
    s3: ObjectStoreSection = Field(
        default_factory=ObjectStoreSection,
        description="The object store, used when backend is s3.",
    )

    @model_validator(mode="after")
    def _object_store_is_named(self) -> ArchiveSection:
        if self.backend == "s3" and not self.s3.access_key_id:
            raise ValueError(
                "archive.backend is s3 but archive.s3.access_key_id is empty; "
                "set the object store's endpoint_url, bucket and keys"
            )
        return self


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
    token_label: str = Field(
        "ttpvhcc-office",
        min_length=1,
        max_length=32,
        description="Label of the token holding the office's keys.",
    )
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
    signing_key_label: str = Field(
        "office-signing",
        min_length=1,
        max_length=64,
        description="Label of the PDF signing key on the token.",
    )
    seal_key_label: str = Field(
        "office-seal",
        min_length=1,
        max_length=64,
        description="Label of the QR seal key on the token.",
    )

    def read_pin(self, data_dir: Path) -> str:
        """Return the user PIN from the configuration or the PIN file."""
        return read_secret(
            self.pin,
            self.pin_file,
            data_dir,
            "hsm.pin",
            "KIOSK_BRIDGE__HSM__PIN (or run 'kiosk bridge init')",
        )


class TimestampSection(Section):
    """The RFC 3161 timestamp authority."""

    url: str = Field(
        "http://127.0.0.1:8790/tsa", pattern=r"^https?://", description="TSA URL."
    )
    timeout_s: float = Field(
        5.0, gt=0, le=60, description="Seconds to wait for a timestamp."
    )


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

    host: str = Field("127.0.0.1", max_length=253, description="Listen address.")
    port: int = Field(8443, ge=1, le=65535, description="Listen port.")
    max_upload_bytes: int = Field(
        50_000_000, ge=1_000, description="Largest PDF accepted for verification."
    )


class ConsoleSection(Section):
    """The officer console: sessions, lockout and the names shown to officers."""

    session_idle_minutes: int = Field(
        15, ge=1, le=240, description="A session ends after this long unused."
    )
    session_max_hours: int = Field(
        10, ge=1, le=24, description="A session ends this long after login."
    )
    max_failed_logins: int = Field(
        5, ge=1, le=50, description="Failed logins in a row that lock an account."
    )
    lockout_minutes: int = Field(
        15, ge=1, le=1440, description="How long a locked account stays locked."
    )
    secure_cookies: Literal["auto", "always", "never"] = Field(
        "auto",
        description="Mark cookies Secure: auto does so when the request is HTTPS.",
    )
    totp_issuer: str = Field(
        "TTPVHCC", min_length=1, max_length=40, description="Issuer in TOTP apps."
    )
    totp_key: SecretStr | None = Field(
        None, description="Base64 AES-256 key encrypting TOTP secrets at rest."
    )
    totp_key_file: Path | None = Field(
        Path("secrets/totp-key"),
        description="File holding the TOTP key; made on first use if absent.",
    )
    totp_key_wrapping: Literal["hsm", "none"] = Field(
        "hsm",
        description=(
            "hsm: the key file holds the TOTP key encrypted by an AES key on "
            "the token, so the file alone is useless; none: the key in clear."
        ),
    )
    totp_wrapping_key_label: str = Field(
        "console-totp-wrap",
        min_length=1,
        max_length=64,
        description="Label of the AES key on the token that wraps the TOTP key.",
    )
    reject_reasons: list[str] = Field(
        default_factory=lambda: [
            "Ảnh trang bị mờ hoặc thiếu, vui lòng chụp lại.",
            "Giấy tờ không thuộc loại được chứng thực bản sao.",
            "Thông tin trên giấy tờ không khớp với căn cước.",
            "Bản chính có dấu hiệu bị tẩy xóa, sửa chữa.",
        ],
        max_length=20,
        description="Rejection reasons the officer picks from.",
    )


class SmtpSection(Section):
    """The mail server copies are emailed through."""

    host: str = Field("127.0.0.1", min_length=1, description="SMTP server.")
    port: int = Field(25, ge=1, le=65535, description="SMTP port.")
    starttls: bool = Field(False, description="Upgrade with STARTTLS before login.")
    user: str | None = Field(None, description="Login name; none for no login.")
    password: SecretStr | None = Field(None, description="Login password.")
    sender: str = Field(
        "ban-sao@example.gov.vn",
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="The From address.",
    )
    timeout_s: float = Field(10.0, gt=0, le=120, description="Network timeout.")


class WalletSection(Section):
    """The citizen wallet's webhook (a city wallet such as iHanoi)."""

    url: str | None = Field(
        None, pattern=r"^https?://", description="Webhook URL; none to disable."
    )
    secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key shared with the wallet."
    )
    timeout_s: float = Field(10.0, gt=0, le=120, description="Network timeout.")


class DeliverySection(Section):
    """Delivery of issued copies by email and wallet webhook."""

    smtp: SmtpSection = Field(default_factory=SmtpSection)
    wallet: WalletSection = Field(default_factory=WalletSection)
    first_retry_s: float = Field(
        30.0, gt=0, le=3600, description="Wait before the first retry; doubles."
    )
    max_retry_s: float = Field(
        3600.0, gt=0, le=86_400, description="Longest wait between retries."
    )
    poll_s: float = Field(
        5.0, gt=0, le=600, description="How often the server retries due work."
    )
    lease_s: float = Field(
        300.0,
        ge=30,
        le=3600,
        description="How long one instance holds a delivery it is sending.",
    )


class ReuseSection(Section):
    """The API other public services fetch copies through."""

    token_ttl_s: int = Field(
        300, ge=30, le=3600, description="Lifetime of a client's bearer token."
    )
    consent_ttl_days: int = Field(
        30, ge=1, le=365, description="Lifetime of a citizen's consent token."
    )
    requests_per_minute: int = Field(
        60, ge=1, le=10_000, description="Default rate limit of a new client."
    )


class LookupSection(Section):
    """Limits on the public lookup page."""

    attempts_per_minute: int = Field(
        10,
        ge=1,
        le=1000,
        description="Access codes and unknown identifiers one address may try.",
    )


class FleetSection(Section):
    """Kiosk enrollment, the MQTT broker and the fleet manager's view."""

    api_token: SecretStr | None = Field(
        None,
        description=(
            "Bearer token (or HTTP Basic password) for the fleet pages, JSON and "
            "/metrics; the pages answer 503 until it is set."
        ),
    )
    ca_dir: Path = Field(
        Path("fleet-ca"),
        description="Kiosk CA, CRL, broker and bridge MQTT certificates and keys.",
    )
    certificate_days: int = Field(
        30, ge=1, le=397, description="Lifetime of a kiosk's client certificate."
    )
    renew_before_days: int = Field(
        10, ge=1, le=200, description="Kiosks renew this long before expiry."
    )
    token_hours: int = Field(
        72, ge=1, le=24 * 30, description="Lifetime of a one-time enrollment token."
    )
    broker_host: str = Field(
        "127.0.0.1", min_length=1, description="Broker host the bridge connects to."
    )
    broker_port: int = Field(8883, ge=1, le=65535, description="Broker TLS port.")
    public_broker_host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Broker host name kiosks are told at enrollment.",
    )
    broker_pid_file: Path | None = Field(
        None,
        description="Mosquitto's pid_file: after a revocation the bridge sends it "
        "SIGHUP so it reads the new CRL.",
    )
    broker_reload_command: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Command that makes the broker read its CRL again, instead of "
        "the pid file (e.g. systemctl reload mosquitto).",
    )
    share_group: str = Field(
        "bridge",
        pattern=r"^[a-z0-9_\-]{1,32}$",
        description="MQTT 5 shared-subscription group of the bridge instances.",
    )
    max_payload_bytes: int = Field(
        64_000, ge=1_000, le=262_144, description="Larger messages are dropped."
    )
    batch_size: int = Field(
        500, ge=1, le=10_000, description="Most messages written in one transaction."
    )
    batch_wait_ms: int = Field(
        50, ge=1, le=5_000, description="Longest wait to fill a write batch."
    )
    offline_after_s: int = Field(
        90, ge=10, le=86_400, description="No message for this long means offline."
    )
    paper_low_percent: float = Field(
        15.0, ge=0, le=100, description="Paper level that raises an alert."
    )
    outbox_alert_depth: int = Field(
        500, ge=1, description="Kiosk outbox depth that raises an alert."
    )
    model_version: str = Field(
        "", max_length=40, description="Current model version; older is 'behind'."
    )
    command_ttl_s: int = Field(
        300, ge=10, le=86_400, description="How long a command stays valid."
    )
    health_retention_days: int = Field(
        30, ge=1, le=36_500, description="Health reports kept ('fleet prune')."
    )
    events_retention_days: int = Field(
        365, ge=1, le=36_500, description="Kiosk events kept ('fleet prune')."
    )
    commands_retention_days: int = Field(
        365, ge=1, le=36_500, description="Command records kept ('fleet prune')."
    )


class IntakeSection(Section):
    """How the bridge receives kiosks' requests: MQTT 5 over mutual TLS."""

    mqtt_host: str = Field("127.0.0.1", max_length=253, description="Broker host.")
    mqtt_port: int = Field(8883, ge=1, le=65535, description="Broker TLS port.")
    ca_file: Path | None = Field(None, description="CA of the broker's certificate.")
    cert_file: Path | None = Field(None, description="The bridge's client certificate.")
    key_file: Path | None = Field(None, description="The bridge's client key.")
    client_id: str = Field(
        "bridge-intake", max_length=64, description="MQTT client id; unique per bridge."
    )
    share_group: str = Field(
        "intake", pattern=r"^[a-z0-9\-]{1,32}$", description="Shared subscription."
    )
    max_blob_bytes: int = Field(
        20_000_000, ge=100_000, le=200_000_000, description="Largest page upload."
    )
    decision_poll_s: float = Field(
        0.2, gt=0, le=60, description="How often the decision outbox is read."
    )


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
    ota: OtaRepositorySection = Field(default_factory=OtaRepositorySection)
    intake: IntakeSection = Field(default_factory=IntakeSection)
    fleet: FleetSection = Field(default_factory=FleetSection)
    console: ConsoleSection = Field(default_factory=ConsoleSection)
    delivery: DeliverySection = Field(default_factory=DeliverySection)
    reuse: ReuseSection = Field(default_factory=ReuseSection)
    lookup: LookupSection = Field(default_factory=LookupSection)

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


def read_secret(
    value: SecretStr | None, file: Path | None, data_dir: Path, key: str, env: str
) -> str:
    """Return a secret given in the configuration, else read from its file.

    ``key`` names the setting (``hsm.pin``; its file setting is ``key +
    "_file"``) and ``env`` the environment variable that can give it.
    """
    if value is not None:
        return value.get_secret_value()
    if file is None:
        raise ConfigError(f"{key} or {key}_file must be set")
    path = resolve(data_dir, file)
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read {key} from {path}: {exc.strerror}; write it there "
            f"(mode 0600) or set {env}"
        ) from exc


def resolve(base: Path, relative: Path) -> Path:
    """Return ``relative`` under ``base`` unless it is absolute."""
    return relative if relative.is_absolute() else base / relative


def load_bridge_config(path: Path | None = None) -> BridgeConfig:
    """Load the bridge configuration (embedded defaults when ``path`` is None)."""
    return load_settings(BridgeConfig, path, ENV_PREFIX)
