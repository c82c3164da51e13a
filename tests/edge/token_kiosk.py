"""Use a kiosk key on a SoftHSM2 token in a process of its own (for the tests).

SoftHSM2 reads ``SOFTHSM2_CONF`` once per process, when the module is first
initialised, and the bridge's tests may already have loaded it in the test
process with their own token store. So the tests run the token-key steps
here, in a child whose environment names the kiosk's token store:

``python -m tests.edge.token_kiosk csr KIOSK_ID`` prints a certificate
request signed on the token (making the key on first use);
``enroll DIR BRIDGE_URL TOKEN`` enrolls with ``kiosk provision --config``, an
agent configuration that puts the key on the token;
``renew DIR`` renews through :class:`CertificateRenewer` with the token key.
The token label, key label and PIN come from ``KIOSK_TEST_TOKEN``,
``KIOSK_TEST_KEY`` and ``KIOSK_TEST_PIN``.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import httpx
from click.testing import CliRunner

from provisioning.cli import provision_command
from provisioning.keys import Pkcs11Key
from provisioning.renewal import CertificateRenewer

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")


def token_key() -> Pkcs11Key:
    """Open the kiosk key the environment names."""
    return Pkcs11Key(
        MODULE,
        os.environ["KIOSK_TEST_TOKEN"],
        os.environ["KIOSK_TEST_PIN"],
        os.environ["KIOSK_TEST_KEY"],
    )


def enroll_with_the_command(directory: Path, bridge_url: str, token: str) -> str:
    """Run ``kiosk provision --config`` with the key on the token."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    config = directory.parent / "provision-agent.toml"
    config.write_text(
        "[office]\n"
        f'cert_file = "{directory / "kiosk.pem"}"\n'
        f'ca_file = "{directory / "ca.pem"}"\n'
        "[services.key]\n"
        'key_backend = "pkcs11"\n'
        f'pkcs11_module = "{MODULE}"\n'
        f'pkcs11_token_label = "{os.environ["KIOSK_TEST_TOKEN"]}"\n'
        f'key_label = "{os.environ["KIOSK_TEST_KEY"]}"\n',
        encoding="utf-8",
    )
    os.environ["KIOSK_AGENT__SERVICES__KEY__PKCS11_PIN"] = os.environ["KIOSK_TEST_PIN"]
    arguments = ["--bridge", bridge_url, "--token", token, "--dir", str(directory)]
    arguments += ["--config", str(config)]
    result = CliRunner().invoke(provision_command, arguments)
    if result.exit_code != 0:
        raise SystemExit(f"kiosk provision failed: {result.output}{result.exception}")
    return result.output


def main(argv: list[str]) -> None:
    """Run one step and print its result."""
    command, *args = argv
    if command == "csr":
        with token_key() as key:
            print(key.csr_pem(args[0]), end="")
    elif command == "enroll":
        directory, bridge_url, token = args
        print(enroll_with_the_command(Path(directory), bridge_url, token))
    elif command == "renew":
        with httpx.Client(timeout=20) as http:
            renewer = CertificateRenewer(
                Path(args[0]), http, before=timedelta(days=1), open_key=token_key
            )
            renewed = renewer.renew_now(announce=False)
        print(renewed.certificate().serial_number)
    else:
        raise SystemExit(f"unknown step {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
