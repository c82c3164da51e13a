"""The kiosk's key stores: a protected file, or a PKCS#11 token (SoftHSM2)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from cloud_bridge.fleet.ca import KioskCa, ensure_kiosk_ca
from cloud_bridge.hsm import create_softhsm_token, write_softhsm_conf
from provisioning.keys import FileKey


def test_file_key_is_private_stable_and_makes_a_valid_csr(tmp_path: Path) -> None:
    key = FileKey(tmp_path / "id" / "kiosk.key")
    again = FileKey(tmp_path / "id" / "kiosk.key")
    assert (key.path.stat().st_mode & 0o777) == 0o600
    assert key.public_key().public_numbers() == again.public_key().public_numbers()
    csr = x509.load_pem_x509_csr(key.csr_pem("kiosk-201").encode())
    assert csr.is_signature_valid
    signature = key.sign(b"hello")
    key.public_key().verify(signature, b"hello", ec.ECDSA(hashes.SHA256()))


def test_csr_made_on_a_pkcs11_token_is_issued(tmp_path: Path) -> None:
    conf = tmp_path / "softhsm2.conf"
    write_softhsm_conf(conf, tmp_path / "tokens")
    create_softhsm_token(conf, "kiosk-test", "1234", "5678")
    script = textwrap.dedent(
        """
        from pathlib import Path
        from provisioning.keys import Pkcs11Key
        module = Path("/usr/lib/softhsm/libsofthsm2.so")
        key = Pkcs11Key(module, "kiosk-test", "1234", "kiosk-identity")
        first = key.public_key().public_numbers()
        csr = key.csr_pem("kiosk-202")
        key.close()
        again = Pkcs11Key(module, "kiosk-test", "1234", "kiosk-identity")
        assert again.public_key().public_numbers() == first
        print(csr, end="")
        """
    )
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr
    ensure_kiosk_ca(tmp_path / "ca", ["127.0.0.1"])
    cert = KioskCa(tmp_path / "ca").issue(done.stdout, "kiosk-202")
    assert cert.subject.rfc4514_string() == "CN=kiosk-202"
