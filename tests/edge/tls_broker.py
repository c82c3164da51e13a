"""A private Mosquitto with mutual TLS and an ACL, and a test CA for it.

Made here because the fleet's shared broker fixture (tests/broker.py) did
not exist yet when these tests were written. Certificates come from a CA
generated with ``cryptography``; the kiosk's and the bridge's common names
are their broker user names.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.conftest import free_port

MOSQUITTO = "/usr/sbin/mosquitto"


@dataclass(frozen=True)
class Identity:
    """A certificate and key file pair."""

    cert: Path
    key: Path


class TestCa:
    """A throwaway CA that issues server and client certificates."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o755)
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test kiosk CA")])
        now = dt.datetime.now(dt.UTC)
        self.name = name
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                True,
            )
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = directory / "ca.pem"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.ca_file.chmod(0o644)

    def issue(self, common_name: str, server: bool = False) -> Identity:
        """Issue a certificate for ``common_name`` (a server on 127.0.0.1)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        usage = (
            ExtendedKeyUsageOID.SERVER_AUTH
            if server
            else ExtendedKeyUsageOID.CLIENT_AUTH
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
            )
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([usage]), False)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        identity = Identity(
            self.directory / f"{common_name}.pem", self.directory / f"{common_name}.key"
        )
        identity.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        identity.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        identity.cert.chmod(0o644)
        identity.key.chmod(0o644)
        return identity


ACL = """\
user bridge-intake
topic read kiosk/+/requests
topic read kiosk/#
topic write office/#

pattern write kiosk/%u/#
pattern read office/%u/#
"""


class TlsBroker:
    """A Mosquitto process with mutual TLS on a free port; stop and start it."""

    def __init__(self, ca: TestCa, directory: Path) -> None:
        self.ca = ca
        self.directory = directory
        self.port = free_port()
        server = ca.issue("localhost", server=True)
        (directory / "acl").write_text(ACL)
        (directory / "data").mkdir(exist_ok=True)
        self.config = directory / "mosquitto.conf"
        self.config.write_text(
            "\n".join(
                [
                    "user root",
                    "per_listener_settings false",
                    "persistence true",
                    f"persistence_location {directory / 'data'}/",
                    "log_dest stderr",
                    "allow_anonymous false",
                    f"acl_file {directory / 'acl'}",
                    f"listener {self.port} 127.0.0.1",
                    f"cafile {ca.ca_file}",
                    f"certfile {server.cert}",
                    f"keyfile {server.key}",
                    "require_certificate true",
                    "use_identity_as_username true",
                    "",
                ]
            )
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.log = directory / "mosquitto.log"

    def start(self) -> None:
        """Start the broker and wait until it listens."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.config)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start: {self.log.read_text()}")

    def stop(self) -> None:
        """Stop the broker."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
