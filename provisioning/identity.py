"""The kiosk's identity on disk: certificate, CA, broker address, office key.

``identity.json`` names the kiosk, the broker and the bridge; ``kiosk.pem``
is the client certificate, ``ca.pem`` the kiosk CA the broker's certificate
is checked against and ``command-public.pem`` the office key commands are
verified with. The private key is ``kiosk.key`` (file backend) or lives on
the token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from kiosk import files
from provisioning.errors import IdentityMissingError, ProvisioningError

IDENTITY_FILE = "identity.json"
CERTIFICATE_FILE = "kiosk.pem"
CA_FILE = "ca.pem"
COMMAND_KEY_FILE = "command-public.pem"
KEY_FILE = "kiosk.key"


@dataclass(frozen=True)
class KioskIdentity:
    """Where a provisioned kiosk's identity files are and what they say."""

    dir: Path
    kiosk_id: str
    broker_host: str
    broker_port: int
    bridge_url: str

    @property
    def certificate_path(self) -> Path:
        """The client certificate (PEM)."""
        return self.dir / CERTIFICATE_FILE

    @property
    def key_path(self) -> Path:
        """The private key file (file backend)."""
        return self.dir / KEY_FILE

    @property
    def ca_path(self) -> Path:
        """The kiosk CA certificate (PEM)."""
        return self.dir / CA_FILE

    def certificate(self) -> x509.Certificate:
        """Return the current client certificate."""
        try:
            return x509.load_pem_x509_certificate(self.certificate_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise IdentityMissingError(
                f"cannot read {self.certificate_path}: {exc}; run 'kiosk provision'"
            ) from exc

    def expires_at(self) -> datetime:
        """Return when the client certificate ends."""
        return self.certificate().not_valid_after_utc

    def renewal_due(self, before: timedelta, now: datetime | None = None) -> bool:
        """Return whether the certificate ends within ``before``."""
        return self.expires_at() - before <= (now or datetime.now(UTC))

    def command_key(self) -> ed25519.Ed25519PublicKey:
        """Return the office's command-verification key."""
        path = self.dir / COMMAND_KEY_FILE
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise IdentityMissingError(f"cannot read {path}: {exc}") from exc
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise ProvisioningError(f"{path} is not an Ed25519 public key")
        return key


def load_identity(directory: Path) -> KioskIdentity:
    """Read the identity in ``directory``.

    Raises:
        IdentityMissingError: the kiosk has not been provisioned.
    """
    path = directory / IDENTITY_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return KioskIdentity(
            directory,
            str(data["kiosk_id"]),
            str(data["broker_host"]),
            int(data["broker_port"]),
            str(data["bridge_url"]),
        )
    except FileNotFoundError as exc:
        raise IdentityMissingError(
            f"this kiosk has no identity in {directory}; run 'kiosk provision "
            "--bridge URL --token TOKEN' with a token from the fleet manager"
        ) from exc
    except (OSError, ValueError, KeyError) as exc:
        raise IdentityMissingError(
            f"the identity file {path} is damaged: {exc}"
        ) from exc


def save_identity(identity: KioskIdentity) -> None:
    """Write ``identity.json``."""
    data = {
        "kiosk_id": identity.kiosk_id,
        "broker_host": identity.broker_host,
        "broker_port": identity.broker_port,
        "bridge_url": identity.bridge_url,
    }
    write_atomic(identity.dir / IDENTITY_FILE, json.dumps(data, indent=2).encode())


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        files.write_atomic(path, data, mode)
    except OSError as exc:
        raise ProvisioningError(f"cannot write {path}: {exc}") from exc
