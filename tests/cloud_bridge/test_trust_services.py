"""The local TSA, CRL and OCSP responder, over HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from asn1crypto import tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko_certvalidator import ValidationContext

from cloud_bridge.config import BridgeConfig
from cloud_bridge.hsm import to_asn1
from cloud_bridge.pki import SEAL_PROFILE, DevPki, issue_certificate, revoke_certificate
from cloud_bridge.trust_services import (
    DEV_TSA_POLICY,
    OCSP_REQUEST,
    TIMESTAMP_QUERY,
    TIMESTAMP_REPLY,
    RunningTrustServices,
    TimeStampResponse,
)
from tests.conftest import free_port

pytestmark = pytest.mark.hsm

DER = serialization.Encoding.DER


class Answer:
    """One HTTP answer."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.content_type = response.getheader("Content-Type", "")
        self.body = response.read()


def request(
    services: RunningTrustServices,
    method: str,
    path: str,
    body: bytes | None = None,
    content_type: str | None = None,
) -> Answer:
    """Send one request to the trust services."""
    connection = http.client.HTTPConnection("127.0.0.1", services.port, timeout=10)
    headers = {"Content-Type": content_type} if content_type else {}
    try:
        connection.request(method, path, body=body, headers=headers)
        return Answer(connection.getresponse())
    finally:
        connection.close()


def timestamp_query(data: bytes, **changes: object) -> bytes:
    """Return a DER TimeStampReq for ``data`` (SHA-256), with field changes."""
    fields: dict[str, object] = {
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": {"algorithm": "sha256"},
            "hashed_message": hashlib.sha256(data).digest(),
        },
        "nonce": 12345,
        "cert_req": True,
    }
    fields.update(changes)
    return bytes(tsp.TimeStampReq(fields).dump())


def throwaway_certificate(
    dev_pki: DevPki, bridge_config: BridgeConfig
) -> x509.Certificate:
    """Issue a certificate that tests may revoke."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "throwaway")])
    return issue_certificate(
        dev_pki.root,
        dev_pki.root_key,
        name,
        key.public_key(),
        SEAL_PROFILE,
        timedelta(days=1),
        bridge_config.pki.revocation_url,
    )


def ocsp_query(
    cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes | None = None
) -> bytes:
    """Return a DER OCSP request about ``cert``."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(DER)


def ask_ocsp(services: RunningTrustServices, query: bytes) -> ocsp.OCSPResponse:
    """POST an OCSP request and parse the answer."""
    answer = request(services, "POST", "/ocsp", query, OCSP_REQUEST)
    assert answer.content_type == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(answer.body)


def test_timestamp_from_pyhanko_validates(
    trust_services: RunningTrustServices, dev_pki: DevPki
) -> None:
    digest = hashlib.sha256(b"a certified copy").digest()
    timestamper = HTTPTimeStamper(trust_services.tsa_url)

    token = asyncio.run(timestamper.async_timestamp(digest, "sha256"))

    context = ValidationContext(
        trust_roots=[to_asn1(dev_pki.root)],
        allow_fetching=True,
        revocation_mode="hard-fail",
    )
    status = asyncio.run(
        validate_tst_signed_data(token["content"], context, lambda algorithm: digest)
    )
    assert status["intact"] and status["valid"]
    assert status["trust_problem_indic"] is None
    assert abs(status["timestamp"] - datetime.now(UTC)) < timedelta(seconds=5)
    tst_info = token["content"]["encap_content_info"]["content"].parsed
    assert tst_info["policy"].dotted == DEV_TSA_POLICY


def test_timestamp_round_trip_is_fast(trust_services: RunningTrustServices) -> None:
    query = timestamp_query(b"speed")
    digest = hashlib.sha256(b"speed").digest()
    connection = http.client.HTTPConnection("127.0.0.1", trust_services.port)

    def raw() -> None:
        connection.request("POST", "/tsa", query, {"Content-Type": TIMESTAMP_QUERY})
        assert connection.getresponse().read()

    async def with_session(times: list[float]) -> None:
        async with aiohttp.ClientSession() as session:
            timestamper = HTTPTimeStamper(trust_services.tsa_url, session=session)
            for _ in range(30):
                start = time.perf_counter()
                await timestamper.async_timestamp(digest, "sha256")
                times.append(time.perf_counter() - start)

    raw_ms = median_ms(raw, 100)
    connection.close()
    session_times: list[float] = []
    asyncio.run(with_session(session_times))
    session_ms = statistics.median(session_times) * 1000
    default = HTTPTimeStamper(trust_services.tsa_url)
    default_ms = median_ms(
        lambda: asyncio.run(default.async_timestamp(digest, "sha256")), 10
    )

    print(
        f"\ntimestamp over HTTP, median: {raw_ms:.2f} ms (keep-alive client), "
        f"{session_ms:.2f} ms (pyHanko HTTPTimeStamper with a session), "
        f"{default_ms:.2f} ms (HTTPTimeStamper without one)"
    )
    # Generous bounds: they catch a 40 ms Nagle stall, not a slow machine.
    assert raw_ms < 20
    assert session_ms < 40


def median_ms(operation: Callable[[], object], times: int) -> float:
    """Run ``operation`` and return its median duration in milliseconds."""
    durations = []
    for _ in range(times):
        start = time.perf_counter()
        operation()
        durations.append(time.perf_counter() - start)
    return statistics.median(durations) * 1000


def test_timestamp_reply_is_canonical_der(
    trust_services: RunningTrustServices, dev_pki: DevPki
) -> None:
    answer = request(
        trust_services, "POST", "/tsa", timestamp_query(b"x"), TIMESTAMP_QUERY
    )

    # asn1crypto encodes every value again from scratch: DER has one form.
    response = TimeStampResponse.load(answer.body)
    assert response.dump(force=True) == answer.body
    signed_data = response["time_stamp_token"]["content"]
    tst_info = signed_data["encap_content_info"]["content"].parsed
    assert tst_info["nonce"].native == 12345
    assert tst_info["accuracy"]["seconds"].native == 1
    certificates = [c.chosen.dump() for c in signed_data["certificates"]]
    assert certificates == [dev_pki.tsa.public_bytes(DER)]


def test_timestamp_answers_without_certificate_when_not_asked(
    trust_services: RunningTrustServices,
) -> None:
    answer = request(
        trust_services,
        "POST",
        "/tsa",
        timestamp_query(b"x", cert_req=False),
        TIMESTAMP_QUERY,
    )

    response = TimeStampResponse.load(answer.body)
    assert response["status"]["status"].native == "granted"
    signed_data = response["time_stamp_token"]["content"]
    assert len(signed_data["certificates"]) == 0
    assert signed_data["encap_content_info"]["content"].parsed["nonce"].native == 12345


@pytest.mark.parametrize(
    ("body", "status", "failure"),
    [
        (b"not DER at all", 400, "bad_data_format"),
        (b"", 400, "bad_data_format"),
        (timestamp_query(b"x") + b"trailing", 400, "bad_data_format"),
        (
            timestamp_query(
                b"x",
                message_imprint={
                    "hash_algorithm": {"algorithm": "sha1"},
                    "hashed_message": hashlib.sha1(b"x").digest(),
                },
            ),
            200,
            "bad_alg",
        ),
        (
            timestamp_query(
                b"x",
                message_imprint={
                    "hash_algorithm": {"algorithm": "sha256"},
                    "hashed_message": b"short",
                },
            ),
            200,
            "bad_data_format",
        ),
        (timestamp_query(b"x", req_policy="1.2.3.4"), 200, "unaccepted_policy"),
    ],
    ids=["garbage", "empty", "trailing", "sha1", "short-digest", "policy"],
)
def test_bad_timestamp_requests_are_rejected(
    trust_services: RunningTrustServices, body: bytes, status: int, failure: str
) -> None:
    answer = request(trust_services, "POST", "/tsa", body, TIMESTAMP_QUERY)

    assert answer.status == status
    assert answer.content_type == TIMESTAMP_REPLY
    response = TimeStampResponse.load(answer.body)
    assert response["status"]["status"].native == "rejection"
    assert response["status"]["fail_info"].native == {failure}
    assert response["time_stamp_token"].native is None


def test_http_misuse_gets_http_errors(trust_services: RunningTrustServices) -> None:
    query = timestamp_query(b"x")

    wrong_type = request(trust_services, "POST", "/tsa", query, "text/plain")
    assert wrong_type.status == 415
    assert (
        TimeStampResponse.load(wrong_type.body)["status"]["status"].native
        == "rejection"
    )
    assert request(trust_services, "GET", "/tsa").status == 405
    assert (
        request(trust_services, "POST", "/crl/root.crl", b"", TIMESTAMP_QUERY).status
        == 405
    )
    assert request(trust_services, "GET", "/nothing-here").status == 404
    too_big = request(trust_services, "POST", "/tsa", b"0" * 100_000, TIMESTAMP_QUERY)
    assert too_big.status == 413
    assert request(trust_services, "GET", "/health").body == b"ok\n"


def test_ocsp_says_good_then_revoked(
    trust_services: RunningTrustServices, dev_pki: DevPki, bridge_config: BridgeConfig
) -> None:
    cert = throwaway_certificate(dev_pki, bridge_config)
    query = ocsp_query(cert, dev_pki.root, nonce=b"0123456789abcdef")

    good = ask_ocsp(trust_services, query)
    revoke_certificate(bridge_config, cert.serial_number, "key_compromise")
    revoked = ask_ocsp(trust_services, query)

    assert good.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert good.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert good.serial_number == cert.serial_number
    nonce = good.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    assert nonce == b"0123456789abcdef"
    assert revoked.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert revoked.revocation_reason is x509.ReasonFlags.key_compromise
    assert revoked.revocation_time_utc is not None
    assert revoked.next_update_utc is not None
    assert revoked.next_update_utc - revoked.this_update_utc == timedelta(days=1)
    responder = revoked.certificates[0]
    assert responder == dev_pki.ocsp
    responder.verify_directly_issued_by(dev_pki.root)
    public_key = responder.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(
        revoked.signature, revoked.tbs_response_bytes, ec.ECDSA(hashes.SHA256())
    )


def test_ocsp_get_form(trust_services: RunningTrustServices, dev_pki: DevPki) -> None:
    encoded = base64.b64encode(ocsp_query(dev_pki.signing, dev_pki.root)).decode()

    answer = request(
        trust_services, "GET", "/ocsp/" + urllib.parse.quote(encoded, safe="")
    )

    assert answer.status == 200
    response = ocsp.load_der_ocsp_response(answer.body)
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == dev_pki.signing.serial_number


def test_ocsp_refuses_other_issuers_and_garbage(
    trust_services: RunningTrustServices, dev_pki: DevPki
) -> None:
    # The responder certificate as "issuer": a CA this responder does not serve.
    foreign = ask_ocsp(trust_services, ocsp_query(dev_pki.signing, dev_pki.ocsp))
    garbage = request(trust_services, "POST", "/ocsp", b"\x30\x03junk", OCSP_REQUEST)
    bad_get = request(trust_services, "GET", "/ocsp/%%%not-base64")

    assert foreign.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
    assert garbage.status == 400
    malformed = ocsp.load_der_ocsp_response(garbage.body).response_status
    assert malformed is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert bad_get.status == 400


def test_crl_lists_revoked_serials(
    trust_services: RunningTrustServices, dev_pki: DevPki, bridge_config: BridgeConfig
) -> None:
    cert = throwaway_certificate(dev_pki, bridge_config)
    before = request(trust_services, "GET", "/crl/root.crl")

    revoke_certificate(bridge_config, cert.serial_number, "superseded")
    after = request(trust_services, "GET", "/crl/root.crl")

    assert before.content_type == after.content_type == "application/pkix-crl"
    old = x509.load_der_x509_crl(before.body)
    crl = x509.load_der_x509_crl(after.body)
    assert old.get_revoked_certificate_by_serial_number(cert.serial_number) is None
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is (
        x509.ReasonFlags.superseded
    )
    public_key = dev_pki.root.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert crl.is_signature_valid(public_key)
    assert crl.issuer == dev_pki.root.subject
    assert crl.next_update_utc is not None
    ahead = crl.next_update_utc - datetime.now(UTC)
    assert timedelta(hours=23) < ahead <= timedelta(days=1)
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    old_number = old.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number > old_number


def test_root_certificate_is_served(
    trust_services: RunningTrustServices, dev_pki: DevPki
) -> None:
    answer = request(trust_services, "GET", "/ca/root.crt")

    assert answer.content_type == "application/pkix-cert"
    assert x509.load_der_x509_certificate(answer.body) == dev_pki.root


def test_trust_services_command_serves_until_terminated(
    bridge_config: BridgeConfig,
) -> None:
    port = free_port()
    config_file = bridge_config.data_dir / "bridge.toml"
    config_file.write_text(
        f'data_dir = "{bridge_config.data_dir}"\n'
        f'[pki]\ndir = "{bridge_config.pki.dir}"\n',
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "kiosk", "bridge", "trust-services"]
    process = subprocess.Popen(
        [*command, "--config", str(config_file), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        for banner in process.stdout:  # after any warnings
            if banner.startswith("serving"):
                break
        assert f"http://127.0.0.1:{port}" in banner, banner
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/health")
        assert connection.getresponse().read() == b"ok\n"
        connection.close()
    finally:
        os.kill(process.pid, signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
    assert process.returncode == 0, output
    assert "stopping" in output
