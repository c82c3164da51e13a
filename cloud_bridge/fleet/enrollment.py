"""Enroll kiosks: a one-time token and a CSR in, a certificate and the broker out.

The kiosk keeps its private key; the bridge sees only the certificate
request. Renewal needs no token: the kiosk proves it holds its current,
unrevoked certificate's key by signing the new request with it.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field

from cloud_bridge.config import BridgeConfig
from cloud_bridge.errors import EnrollmentError
from cloud_bridge.fleet.ca import KioskCa, kiosk_id_of
from cloud_bridge.fleet.registry import FleetRegistry

logger = logging.getLogger(__name__)

MAX_PEM = 8_000


class EnrollRequest(BaseModel):
    """What a kiosk sends to enroll."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=16, max_length=100, description="One-time token.")
    csr_pem: str = Field(min_length=100, max_length=MAX_PEM, description="PEM CSR.")


class RenewRequest(BaseModel):
    """What a kiosk sends to renew: its certificate, a new CSR and a proof."""

    model_config = ConfigDict(extra="forbid")

    certificate_pem: str = Field(min_length=100, max_length=MAX_PEM)
    csr_pem: str = Field(min_length=100, max_length=MAX_PEM)
    proof: str = Field(
        min_length=16,
        max_length=400,
        description="Base64 ECDSA-SHA256 signature of csr_pem by the current key.",
    )


class Enrolled(BaseModel):
    """What the bridge answers: the certificate, its CA and where the broker is."""

    model_config = ConfigDict(extra="forbid")

    kiosk_id: str
    certificate_pem: str
    ca_pem: str
    broker_host: str
    broker_port: int
    command_public_key_pem: str


@dataclass
class EnrollmentService:
    """Issue, renew and revoke kiosk certificates."""

    ca: KioskCa
    registry: FleetRegistry
    broker_host: str
    broker_port: int

    @classmethod
    def from_config(
        cls, config: BridgeConfig, registry: FleetRegistry
    ) -> EnrollmentService:
        """Build the service for the configured CA and broker."""
        fleet = config.fleet
        return cls(
            KioskCa.from_config(config),
            registry,
            fleet.public_broker_host,
            fleet.broker_port,
        )

    def enroll(self, request: EnrollRequest) -> Enrolled:
        """Redeem the token and issue the kiosk's first certificate."""
        kiosk_id = self.registry.redeem_token(request.token)
        cert = self.ca.issue(request.csr_pem, kiosk_id)
        self.registry.record_certificate(kiosk_id, cert)
        logger.info("kiosk %s enrolled", kiosk_id)
        return self._answer(kiosk_id, cert)

    def renew(self, request: RenewRequest) -> Enrolled:
        """Issue a new certificate to a kiosk that proves it holds its current one."""
        current = _load_certificate(request.certificate_pem)
        self.ca.verify_issued(current)
        kiosk_id = kiosk_id_of(current)
        if self.registry.certificate_revoked(current.serial_number):
            raise EnrollmentError(
                f"kiosk {kiosk_id}'s certificate is revoked or unknown; it must be "
                "enrolled again with a new token"
            )
        _check_proof(current, request.csr_pem, request.proof)
        cert = self.ca.issue(request.csr_pem, kiosk_id)
        self.registry.record_certificate(kiosk_id, cert)
        logger.info("kiosk %s renewed its certificate", kiosk_id)
        return self._answer(kiosk_id, cert)

    def revoke(self, kiosk_id: str) -> Path:
        """Revoke the kiosk's certificates and rewrite the CRL; return its path.

        The broker reads the CRL when it starts or is sent SIGHUP.
        """
        self.registry.revoke(kiosk_id)
        return self.write_crl()

    def write_crl(self) -> Path:
        """Write the CRL from the registry's revoked certificates."""
        return self.ca.write_crl(self.registry.revoked_serials())

    def _answer(self, kiosk_id: str, cert: x509.Certificate) -> Enrolled:
        return Enrolled(
            kiosk_id=kiosk_id,
            certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
            ca_pem=self.ca.ca_pem,
            broker_host=self.broker_host,
            broker_port=self.broker_port,
            command_public_key_pem=self.ca.command_public_pem(),
        )


def _load_certificate(pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise EnrollmentError("the current certificate is not PEM") from exc


def _check_proof(cert: x509.Certificate, csr_pem: str, proof: str) -> None:
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise EnrollmentError("the current certificate's key is not EC")
    try:
        signature = base64.b64decode(proof, validate=True)
        key.verify(signature, csr_pem.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature) as exc:
        raise EnrollmentError(
            "the renewal proof does not verify with the current certificate's key"
        ) from exc
