"""The kiosk's provisioning settings: where its identity lives, which key store."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from kiosk.settings import Section


class KeyStoreSection(Section):
    """Where the kiosk's private key is: a file, or a PKCS#11 token (TPM, HSM)."""

    key_backend: Literal["file", "pkcs11"] = Field(
        "file",
        description="file: office.key_file; pkcs11: the key is on a token and the "
        "MQTT and HTTPS connections go through stunnel.",
    )
    pkcs11_module: Path = Field(
        Path("/usr/lib/softhsm/libsofthsm2.so"),
        description="PKCS#11 module of the token (pkcs11 backend).",
    )
    pkcs11_token_label: str = Field(
        "kiosk",
        min_length=1,
        max_length=32,
        pattern=r"^[^\r\n]+$",
        description="Label of the token.",
    )
    pkcs11_pin: SecretStr | None = Field(
        None,
        description="Token user PIN (pkcs11 backend); prefer the environment "
        "variable KIOSK_AGENT__SERVICES__KEY__PKCS11_PIN.",
    )
    key_label: str = Field(
        "kiosk-identity",
        min_length=1,
        max_length=64,
        pattern=r"^[^\r\n]+$",
        description="Label of the kiosk key on the token (pkcs11 backend).",
    )
    pkcs11_environment: dict[str, str] | None = Field(
        None,
        max_length=20,
        description="Environment the module needs, e.g. { SOFTHSM2_CONF = "
        '"/etc/softhsm/softhsm2.conf" } or TPM2_PKCS11_STORE for tpm2-pkcs11 '
        "(set here or in the agent's environment; overrides lower-case names).",
    )


class ProvisioningSection(Section):
    """Where ``kiosk provision`` puts the identity without an agent config."""

    identity_dir: Path = Field(
        Path("var/kiosk/identity"),
        description="Directory of the key (file backend), certificate and CA.",
    )
    timeout_s: float = Field(20.0, gt=0, le=300, description="HTTP timeout.")
