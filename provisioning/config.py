"""The kiosk's provisioning settings: where its identity lives, which key store."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from kiosk.settings import Section


class ProvisioningSection(Section):
    """Where the kiosk keeps its key and certificate, and when it renews."""

    identity_dir: Path = Field(
        Path("var/kiosk/identity"),
        description="Directory of the key (file backend), certificate and CA.",
    )
    key_backend: Literal["file", "pkcs11"] = Field(
        "file", description="A protected key file, or a PKCS#11 token (TPM, HSM)."
    )
    pkcs11_module: Path = Field(
        Path("/usr/lib/softhsm/libsofthsm2.so"),
        description="PKCS#11 module of the token (pkcs11 backend).",
    )
    pkcs11_token_label: str = Field(
        "kiosk", min_length=1, max_length=32, description="Label of the token."
    )
    pkcs11_pin: SecretStr | None = Field(
        None, description="Token user PIN (pkcs11 backend); prefer the environment."
    )
    key_label: str = Field(
        "kiosk-identity",
        min_length=1,
        max_length=64,
        description="Label of the kiosk key on the token (pkcs11 backend).",
    )
    renew_before_days: int = Field(
        10, ge=1, le=200, description="Renew this long before the certificate ends."
    )
    timeout_s: float = Field(20.0, gt=0, le=300, description="HTTP timeout.")
