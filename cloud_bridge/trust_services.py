"""The local trust services: RFC 3161 timestamps, the root's CRL and OCSP.

One small threaded HTTP server (the standard library's: a timestamp costs
0.2-0.3 ms of CPU, so a framework would be most of the cost) answers below
``pki.revocation_url``:

=========================  ====================================================
``POST /tsa``              RFC 3161: application/timestamp-query in,
                           application/timestamp-reply out
``GET /crl/root.crl``      the root's CRL, DER (application/pkix-crl)
``POST /ocsp``             RFC 6960: application/ocsp-request in,
                           application/ocsp-response out
``GET /ocsp/{base64}``     the same, in the GET form of RFC 6960 appendix A
``GET /ca/root.crt``       the root certificate, DER (AIA caIssuers)
``GET /health``            ``ok``
=========================  ====================================================

A request the protocol can answer gets a protocol answer: a rejected
timestamp request a TimeStampResp with status ``rejection`` and a failure
reason, an unparsable OCSP request the response ``malformedRequest``. The
HTTP status is 200 when the request was understood and 400 when its body
could not be parsed; 404, 405, 411, 413 and 415 are used for requests that
do not reach a protocol.

Known shortcomings: this serves the development PKI only. An OCSP request
may ask about one certificate (cryptography parses no more), and any serial
that is not revoked is answered ``good``, since the development root keeps
no register of what it issued. The TSA takes its time from the system clock
with no check against a time source. Certificates and keys are read at
start: restart the services when ``kiosk bridge init`` replaced any.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import secrets
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from cloud_bridge.config import BridgeConfig
from cloud_bridge.der import (
    SHA256,
    SIGNED_DATA,
    VERSION_1,
    content_type_attribute,
    der,
    der_integer,
    generalized_time,
    message_digest_attribute,
    signed_attributes,
    signer_identifier,
    signing_certificate_v2,
)
from cloud_bridge.errors import TrustServicesError
from cloud_bridge.pki import (
    CA_ISSUERS_PATH,
    CRL_PATH,
    OCSP_PATH,
    DevPki,
    Revocation,
    load_dev_pki,
    load_revocations,
)

logger = logging.getLogger(__name__)

TSA_PATH = "/tsa"
HEALTH_PATH = "/health"

TIMESTAMP_QUERY = "application/timestamp-query"
TIMESTAMP_REPLY = "application/timestamp-reply"
OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"
CRL_TYPE = "application/pkix-crl"
CERT_TYPE = "application/pkix-cert"
TEXT = "text/plain; charset=utf-8"

# The development TSA's policy: a UUID-based OID (ITU-T X.667), ours alone.
DEV_TSA_POLICY = "2.25.253093712433453496262813185806003419533"

# Digest lengths of the message imprints the TSA accepts (SHA-1 is refused).
IMPRINT_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}

MAX_BODY = 64 * 1024
# A CRL older than this is signed again, so nextUpdate stays about a day ahead.
CRL_REFRESH = timedelta(hours=1)


class Reply(NamedTuple):
    """An HTTP answer: status, content type, body and extra headers."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


class TimeStampResponse(core.Sequence):  # type: ignore[misc]
    """RFC 3161 TimeStampResp, whose token is OPTIONAL (asn1crypto requires it)."""

    _fields = [  # noqa: RUF012 (asn1crypto's declaration style)
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


class TimestampAuthority:
    """Answers RFC 3161 requests with tokens signed by the TSA's key.

    A token is assembled from DER pieces: what never changes (the
    certificate, the signer's identifier, the ESS signing-certificate-v2
    attribute, algorithm identifiers) is encoded once by asn1crypto here, and
    the request's own encodings of its imprint and nonce are copied. Building
    it with asn1crypto objects instead cost 2.6 ms of CPU per token, ten
    times more.
    """

    def __init__(
        self,
        cert: x509.Certificate,
        key: ec.EllipticCurvePrivateKey,
        policy: str = DEV_TSA_POLICY,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.policy = policy
        self._key = key
        self._clock = clock or (lambda: datetime.now(UTC))
        cert_der = cert.public_bytes(serialization.Encoding.DER)
        asn1_cert = asn1_x509.Certificate.load(cert_der)
        tsa_name = asn1_x509.GeneralName(name="directory_name", value=asn1_cert.subject)
        self._certificates = der(0xA0, cert_der)  # [0] IMPLICIT SET OF
        self._policy = core.ObjectIdentifier(policy).dump()
        self._tsa = der(0xA0, tsa_name.dump())  # [0] EXPLICIT GeneralName
        self._signer_head = VERSION_1 + signer_identifier(asn1_cert) + SHA256
        self._ess_attribute = signing_certificate_v2(asn1_cert)

    def respond(self, body: bytes) -> Reply:
        """Answer one DER TimeStampReq with a TimeStampResp."""
        try:
            request = tsp.TimeStampReq.load(body, strict=True)
            imprint = request["message_imprint"]
            algorithm = imprint["hash_algorithm"]["algorithm"].native
            digest = imprint["hashed_message"].native
            version = request["version"].native
            policy = request["req_policy"].native
            nonce = request["nonce"]
            has_nonce = nonce.native is not None
            cert_req = bool(request["cert_req"].native)
            extensions = request["extensions"].native
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            logger.debug("malformed timestamp request: %s", exc)
            return self.reject(
                HTTPStatus.BAD_REQUEST,
                "bad_data_format",
                "the body is not a DER-encoded RFC 3161 TimeStampReq",
            )
        if version != "v1":
            return self.reject(200, "bad_request", f"version {version} is not v1")
        if algorithm not in IMPRINT_SIZES:
            return self.reject(
                200, "bad_alg", f"{algorithm} is not accepted; use SHA-256 or longer"
            )
        if len(digest) != IMPRINT_SIZES[algorithm]:
            return self.reject(
                200, "bad_data_format", f"the imprint is not a {algorithm} digest"
            )
        if policy not in (None, self.policy):
            return self.reject(
                200, "unaccepted_policy", f"this TSA issues under {self.policy} only"
            )
        if extensions:
            return self.reject(200, "unaccepted_extensions", "no extensions accepted")
        nonce_der = nonce.dump() if has_nonce else b""
        token = self._token(imprint.dump(), nonce_der, cert_req)
        return Reply(200, TIMESTAMP_REPLY, der(0x30, _GRANTED + token))

    def reject(self, status: int, failure: str, text: str) -> Reply:
        """Return a TimeStampResp with status ``rejection`` and ``failure``."""
        response = TimeStampResponse(
            {
                "status": {
                    "status": "rejection",
                    "status_string": [text],
                    "fail_info": tsp.PKIFailureInfo({failure}),
                }
            }
        )
        return Reply(status, TIMESTAMP_REPLY, response.dump())

    def _token(self, imprint: bytes, nonce: bytes, cert_req: bool) -> bytes:
        """Return the DER ContentInfo of a signed TSTInfo."""
        tst_info = der(
            0x30,
            b"\x02\x01\x01"  # version v1
            + self._policy
            + imprint
            # 128 random bits: unique without a counter shared by processes.
            + der_integer(secrets.randbits(128))
            + der(0x18, generalized_time(self._clock()))
            + b"\x30\x03\x02\x01\x01"  # accuracy: 1 second
            + nonce
            + self._tsa,
        )
        signed_attrs = signed_attributes(
            [
                _CONTENT_TYPE_ATTRIBUTE,
                message_digest_attribute(hashlib.sha256(tst_info).digest()),
                self._ess_attribute,
            ]
        )
        signature = self._key.sign(der(0x31, signed_attrs), ec.ECDSA(hashes.SHA256()))
        signer_info = der(
            0x30,
            self._signer_head
            + der(0xA0, signed_attrs)  # [0] IMPLICIT signedAttrs
            + _ECDSASHA256
            + der(0x04, signature),
        )
        signed_data = der(
            0x30,
            b"\x02\x01\x03"  # version v3
            + der(0x31, SHA256)
            + der(0x30, _TST_INFO + der(0xA0, der(0x04, tst_info)))
            + (self._certificates if cert_req else b"")
            + der(0x31, signer_info),
        )
        return der(0x30, SIGNED_DATA + der(0xA0, signed_data))


class RevocationAuthority:
    """Publishes the root's CRL and answers OCSP for certificates it issued."""

    def __init__(
        self,
        pki: DevPki,
        validity: timedelta = timedelta(days=1),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._pki = pki
        self._validity = validity
        self._clock = clock or (lambda: datetime.now(UTC))
        self._revocations = _RevocationFile(pki.revocations_path)
        self._lock = threading.Lock()
        self._crl: tuple[object, datetime, bytes] | None = None
        self._crl_number = 0
        self._issuer_hashes: dict[str, tuple[bytes, bytes]] = {}
        self._root_name = pki.root.subject.public_bytes()
        # The content of the root's subjectPublicKey BIT STRING (RFC 6960 4.1.1).
        self._root_key_bits = pki.root_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    def crl(self) -> bytes:
        """Return the current CRL (DER), signed again when revocations change."""
        stamp, revocations = self._revocations.current()
        now = self._clock()
        with self._lock:
            cached = self._crl
            if cached and cached[0] == stamp and now - cached[1] < CRL_REFRESH:
                return cached[2]
            # Monotonic, as RFC 5280 wants, across restarts too (the clock).
            self._crl_number = max(self._crl_number + 1, int(now.timestamp()))
            der = self._sign_crl(revocations.values(), now, self._crl_number)
            self._crl = (stamp, now, der)
            logger.debug(
                "signed CRL %d, %d entries", self._crl_number, len(revocations)
            )
            return der

    def ocsp(self, body: bytes) -> Reply:
        """Answer one DER OCSPRequest."""
        try:
            request = ocsp.load_der_ocsp_request(body)
            algorithm = request.hash_algorithm
        except (ValueError, UnsupportedAlgorithm) as exc:
            logger.debug("malformed OCSP request: %s", exc)
            return _ocsp_failure(
                HTTPStatus.BAD_REQUEST, ocsp.OCSPResponseStatus.MALFORMED_REQUEST
            )
        expected = self._issuer_hash(algorithm)
        if (request.issuer_name_hash, request.issuer_key_hash) != expected:
            # RFC 6960: a responder that cannot answer for this CA says so.
            return _ocsp_failure(200, ocsp.OCSPResponseStatus.UNAUTHORIZED)
        revoked = self._revocations.current()[1].get(request.serial_number)
        now = self._clock().replace(microsecond=0)
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=algorithm,
            cert_status=(
                ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD
            ),
            this_update=now,
            next_update=now + self._validity,
            revocation_time=revoked.revoked_at if revoked else None,
            revocation_reason=_reason_code(revoked),
        )
        builder = builder.responder_id(
            ocsp.OCSPResponderEncoding.HASH, self._pki.ocsp
        ).certificates([self._pki.ocsp])
        with contextlib.suppress(x509.ExtensionNotFound):
            nonce = request.extensions.get_extension_for_class(x509.OCSPNonce)
            builder = builder.add_extension(nonce.value, critical=False)
        response = builder.sign(self._pki.ocsp_key, hashes.SHA256())
        return Reply(200, OCSP_RESPONSE, response.public_bytes(_DER))

    def _sign_crl(
        self, revocations: Iterable[Revocation], now: datetime, number: int
    ) -> bytes:
        root = self._pki.root
        ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(root.subject)
            .last_update(now - timedelta(minutes=1))
            .next_update(now + self._validity)
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                    ski.value
                ),
                critical=False,
            )
        )
        for revocation in revocations:
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(revocation.serial)
                .revocation_date(revocation.revoked_at)
            )
            reason = _reason_code(revocation)
            if reason is not None:
                entry = entry.add_extension(x509.CRLReason(reason), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(self._pki.root_key, hashes.SHA256()).public_bytes(_DER)

    def _issuer_hash(self, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
        cached = self._issuer_hashes.get(algorithm.name)
        if cached is None:
            cached = (
                _digest(algorithm, self._root_name),
                _digest(algorithm, self._root_key_bits),
            )
            self._issuer_hashes[algorithm.name] = cached
        return cached


class TrustServices:
    """Routes HTTP requests to the TSA, the CRL and the OCSP responder."""

    def __init__(self, pki: DevPki) -> None:
        self.tsa = TimestampAuthority(pki.tsa, pki.tsa_key)
        self.revocation = RevocationAuthority(pki)
        self._root = pki.root.public_bytes(_DER)

    def handle(self, method: str, target: str, content_type: str, body: bytes) -> Reply:
        """Answer one request; ``target`` is the request path with its query."""
        path = urllib.parse.urlsplit(target).path
        media = content_type.split(";")[0].strip().lower()
        if path == TSA_PATH:
            if method != "POST":
                return _not_allowed("POST")
            if media != TIMESTAMP_QUERY:
                return self.tsa.reject(
                    HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                    "bad_request",
                    f"send {TIMESTAMP_QUERY}",
                )
            return self.tsa.respond(body)
        if path == OCSP_PATH:
            if method != "POST":
                return _not_allowed("POST")
            if media != OCSP_REQUEST:
                return _ocsp_failure(
                    HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                    ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
                )
            return self.revocation.ocsp(body)
        if method != "GET":
            return _not_allowed("GET") if _is_get_path(path) else _not_found()
        if path.startswith(OCSP_PATH + "/"):
            return self._ocsp_get(path[len(OCSP_PATH) + 1 :])
        if path == CRL_PATH:
            return Reply(200, CRL_TYPE, self.revocation.crl())
        if path == CA_ISSUERS_PATH:
            return Reply(200, CERT_TYPE, self._root)
        if path == HEALTH_PATH:
            return Reply(200, TEXT, b"ok\n")
        return _not_found()

    def _ocsp_get(self, encoded: str) -> Reply:
        text = urllib.parse.unquote(encoded)
        try:
            der = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            try:
                der = base64.urlsafe_b64decode(text)
            except (binascii.Error, ValueError):
                return _ocsp_failure(
                    HTTPStatus.BAD_REQUEST, ocsp.OCSPResponseStatus.MALFORMED_REQUEST
                )
        return self.revocation.ocsp(der)


@dataclass
class RunningTrustServices:
    """Trust services serving in a background thread."""

    server: ThreadingHTTPServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The TCP port it listens on."""
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL (what ``pki.revocation_url`` should be)."""
        host = str(self.server.server_address[0])
        return f"http://{host}:{self.port}"

    @property
    def tsa_url(self) -> str:
        """The timestamp authority's URL (what ``timestamp.url`` should be)."""
        return self.url + TSA_PATH

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_trust_services(
    config: BridgeConfig, host: str | None = None, port: int | None = None
) -> RunningTrustServices:
    """Serve the trust services in a daemon thread; stop them with ``stop()``.

    ``host`` and ``port`` default to those of ``pki.revocation_url``; port 0
    picks a free port.

    Raises:
        PkiError: the development PKI is missing (run ``kiosk bridge init``).
        TrustServicesError: the address is taken or invalid.
    """
    services = TrustServices(load_dev_pki(config))
    default_host, default_port = service_address(config)
    address = (host or default_host, default_port if port is None else port)
    try:
        server = _Server(address, services)
    except OSError as exc:
        raise TrustServicesError(
            f"cannot listen on {address[0]}:{address[1]}: {exc.strerror or exc}; "
            "is another trust-services running? Stop it or choose --port"
        ) from exc
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.1},
        name="trust-services",
        daemon=True,
    )
    thread.start()
    running = RunningTrustServices(server, thread)
    logger.info("trust services listening at %s", running.url)
    return running


@contextlib.contextmanager
def serve_trust_services(
    config: BridgeConfig, host: str | None = None, port: int | None = None
) -> Iterator[RunningTrustServices]:
    """Serve the trust services while the ``with`` block runs."""
    running = start_trust_services(config, host, port)
    try:
        yield running
    finally:
        running.stop()


def service_address(config: BridgeConfig) -> tuple[str, int]:
    """Return the host and port of ``pki.revocation_url``."""
    parts = urllib.parse.urlsplit(config.pki.revocation_url)
    default = 443 if parts.scheme == "https" else 80
    return parts.hostname or "127.0.0.1", parts.port or default


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Two timestamps, an OCSP and a CRL fetch per copy, from several workers.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], services: TrustServices) -> None:
        self.services = services
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "ttpvhcc-trust-services"
    # Headers and body go out in separate writes; without this, Nagle's
    # algorithm and the client's delayed ACK add 40 ms to every answer.
    disable_nagle_algorithm = True
    # Idle keep-alive connections are closed after this many seconds.
    timeout = 30

    def do_GET(self) -> None:
        self._answer("GET", b"")

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            self._send(Reply(HTTPStatus.LENGTH_REQUIRED, TEXT, b"Content-Length\n"))
            return
        if int(length) > MAX_BODY:
            self.close_connection = True
            self._send(Reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, TEXT, b"too big\n"))
            return
        self._answer("POST", self.rfile.read(int(length)))

    def _answer(self, method: str, body: bytes) -> None:
        content_type = self.headers.get("Content-Type", "")
        try:
            reply = self.server.services.handle(method, self.path, content_type, body)
        except Exception:
            logger.exception("trust services failed on %s %s", method, self.path)
            reply = Reply(HTTPStatus.INTERNAL_SERVER_ERROR, TEXT, b"internal error\n")
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s", self.address_string(), format % args)


_DER = serialization.Encoding.DER
_GET_PATHS = (CRL_PATH, CA_ISSUERS_PATH, HEALTH_PATH)


def _is_get_path(path: str) -> bool:
    return path in _GET_PATHS or path.startswith(OCSP_PATH + "/")


def _not_allowed(allowed: str) -> Reply:
    return Reply(
        HTTPStatus.METHOD_NOT_ALLOWED,
        TEXT,
        f"use {allowed}\n".encode(),
        (("Allow", allowed),),
    )


def _not_found() -> Reply:
    return Reply(HTTPStatus.NOT_FOUND, TEXT, b"not found\n")


def _ocsp_failure(status: int, failure: ocsp.OCSPResponseStatus) -> Reply:
    response = ocsp.OCSPResponseBuilder.build_unsuccessful(failure)
    return Reply(status, OCSP_RESPONSE, response.public_bytes(_DER))


def _reason_code(revocation: Revocation | None) -> x509.ReasonFlags | None:
    # RFC 5280 5.3.1: leave the reason out rather than say "unspecified".
    if revocation is None or revocation.reason is x509.ReasonFlags.unspecified:
        return None
    return revocation.reason


# DER of the constant parts of a timestamp token.
_GRANTED = b"\x30\x03\x02\x01\x00"  # PKIStatusInfo { granted }
_ECDSASHA256 = algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}).dump()
_TST_INFO = cms.ContentType("tst_info").dump()
_CONTENT_TYPE_ATTRIBUTE = content_type_attribute("tst_info")


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()


class _RevocationFile:
    """The revocations file, read again only when it changes on disk."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp: object = ()
        self._revocations: dict[int, Revocation] = {}

    def current(self) -> tuple[object, dict[int, Revocation]]:
        """Return a stamp that changes with the file, and the revocations."""
        try:
            info = self._path.stat()
            stamp: object = (info.st_mtime_ns, info.st_size, info.st_ino)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._revocations = load_revocations(self._path)
                self._stamp = stamp
            return self._stamp, self._revocations
