"""Sign copies as PAdES, up to baseline B-LTA, keeping them PDF/A-2b.

The levels build on each other: B-B is the CMS signature made with the
office's key; B-T adds a signature timestamp; B-LT embeds the certificates and
revocation data (a DSS) needed to validate it later; B-LTA adds a document
timestamp over all of that, so the copy stays verifiable after the
certificates expire.

A copy rendered by this bridge carries its signature fields already and is
signed in place by :meth:`CopySigner.sign_prepared` (see
:mod:`cloud_bridge.pades`); any other PDF goes through pyHanko's own
signer, :meth:`CopySigner.sign`, which is also the reference the benchmark
compares with. Two departures from pyHanko's defaults keep a PDF/A-2b input
PDF/A-2b:
pyHanko raises the output to PDF 2.0 and registers the ISO 32002 extension
when the key is on a P-256 curve, which PDF/A-2 forbids, so the extensions
are limited to the ESIC one PAdES needs; and the space for each signature is
reserved up front instead of being estimated by a dry run, which would cost a
second HSM signature and a second timestamp per copy.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import httpx
from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.signers import pdf_signer
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError

from cloud_bridge.cades import CadesSigner
from cloud_bridge.errors import PkiError, SigningError, TimestampError
from cloud_bridge.pades import (
    SIGNATURE_BYTES,
    SIGNATURE_FIELD,
    TIMESTAMP_BYTES,
    MaterialCollector,
    SignatureText,
    ValidationMaterial,
    append_security_store,
    digest_around,
    find_signature_gap,
    timestamp_token_certificates,
    write_byte_range,
    write_contents,
)

logger = logging.getLogger(__name__)

LEVELS = ("B-B", "B-T", "B-LT", "B-LTA")


class _DeliberateOfflineEmbedding(logging.Filter):
    """Drop pyHanko's warning about embedding revocation data without fetching.

    Copies after the first of each cache period are signed from the CRLs and
    OCSP responses fetched for the first, on purpose; the warning would be
    logged for every copy.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "fetching is not allowed" not in record.getMessage()


logging.getLogger("pyhanko.sign.signers.pdf_signer").addFilter(
    _DeliberateOfflineEmbedding()
)


class _PdfA2Signer(signers.PdfSigner):
    """A PdfSigner that registers no extension PDF/A-2 would reject."""

    def register_extensions(
        self, pdf_out: BasePdfFileWriter, *, md_algorithm: str
    ) -> None:
        pdf_signer._ensure_esic_ext(pdf_out)


_loops = threading.local()


def _event_loop() -> asyncio.AbstractEventLoop:
    """Return this thread's event loop for signing, made on first use.

    ``asyncio.run`` would make and close a loop (and start a thread to shut
    its executor down) for every copy.
    """
    loop: asyncio.AbstractEventLoop | None = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _loops.loop = loop
    return loop


class _Signed:
    """A copy being signed (a plain class: its repr must stay cheap)."""

    def __init__(self, pdf: bytearray) -> None:
        self.pdf = pdf


class CopySigner:
    """Sign PDFs at a configured PAdES level with one signer and one TSA.

    The first copy of each ``revocation_cache_s`` period fetches the CRLs and
    OCSP responses it embeds; the copies after it reuse what was fetched,
    from a context that does not fetch, so a busy office does not ask its
    responders again for every copy. A response older than the period is
    never embedded.
    """

    def __init__(
        self,
        signer: signers.Signer,
        trust_roots: Sequence[asn1_x509.Certificate],
        level: str = "B-LTA",
        timestamper: TimeStamper | None = None,
        revocation_cache_s: int = 300,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if level not in LEVELS:
            raise SigningError(f"unknown PAdES level {level!r}; use one of {LEVELS}")
        if level != "B-B" and timestamper is None:
            raise SigningError(f"PAdES {level} needs a timestamp service")
        self._signer = signer
        self._trust_roots = list(trust_roots)
        self._level = level
        self._timestamper = timestamper
        self._cache_s = revocation_cache_s
        self._clock = clock
        self._context: ValidationContext | None = None
        self._context_born = 0.0
        self._fetching = False
        self._material_cache: tuple[float, ValidationMaterial] | None = None
        self._cades_signer: CadesSigner | None = None
        self._lock = threading.Lock()

    @property
    def level(self) -> str:
        """The PAdES baseline level this signer produces."""
        return self._level

    def sign(self, pdf: bytes, text: SignatureText) -> bytes:
        """Return ``pdf`` with the office's signature at the configured level.

        Raises:
            TimestampError: the timestamp service failed.
            PkiError: the revocation data for the chain could not be obtained.
            SigningError: anything else went wrong while signing.
        """
        context = self._validation_context()
        with _signing_errors():
            signed = self._sign_document(pdf, text, context)
            if self._level == "B-LTA":
                signed = self._add_document_timestamp(signed, context)
        self._keep_fetched(context)
        return signed

    def sign_prepared(self, pdf: bytes) -> bytes:
        """Sign a copy rendered with its signature fields, in place.

        Same levels, errors and revocation cache as :meth:`sign`, without
        parsing the copy or validating the chains again for each copy.

        Raises:
            TimestampError: the timestamp service failed.
            PkiError: the revocation data for the chain could not be obtained.
            SigningError: anything else went wrong while signing.
        """
        signed = _Signed(bytearray(pdf))
        with _signing_errors():
            _event_loop().run_until_complete(self._sign_prepared(signed))
        return bytes(signed.pdf)

    async def _sign_prepared(self, signed: _Signed) -> None:
        # The result travels in ``signed``, not as the coroutine's value:
        # asyncio formats a task's result with repr(), which for a copy of
        # a few megabytes costs more than the signature.
        if self._level not in ("B-LT", "B-LTA"):
            await self._sign_gap(signed.pdf)
            return
        material = self._cached_material()
        if material is None:
            material = await self._sign_collecting(signed.pdf)
        else:
            await self._sign_gap(signed.pdf)
        await self._add_security_store(signed.pdf, material)

    async def _sign_collecting(self, out: bytearray) -> ValidationMaterial:
        """Sign ``out`` and collect the DSS contents afresh on the way."""
        collector = MaterialCollector(self._trust_roots)
        try:
            # the signer's chain first: a revoked or unverifiable certificate
            # must stop the copy before the token signs it
            await collector.add(self._signing_cert(), self._signer.cert_registry)
            signature = await self._sign_gap(out)
            certificates = timestamp_token_certificates(signature)
            for certificate in certificates:
                if not certificate.ca:
                    await collector.add(certificate, certificates)
            material = collector.material()
        finally:
            await collector.close()
        with self._lock:
            self._material_cache = (self._clock(), material)
        return material

    async def _sign_gap(self, out: bytearray) -> cms.ContentInfo:
        """Sign ``out`` in its signature gap; return the CMS written there."""
        gap = find_signature_gap(out)
        write_byte_range(out, gap)
        timestamper = self._timestamper if self._level != "B-B" else None
        signature = await self._cades().sign(digest_around(out, gap), timestamper)
        write_contents(out, gap, signature)
        return cms.ContentInfo.load(signature)

    def _cades(self) -> CadesSigner:
        with self._lock:
            if self._cades_signer is None:
                self._cades_signer = CadesSigner(self._signer)
            return self._cades_signer

    async def _add_security_store(
        self, signed: bytearray, material: ValidationMaterial
    ) -> None:
        stamp_gap = append_security_store(
            signed, material, with_timestamp=self._level == "B-LTA"
        )
        if stamp_gap is not None:
            assert self._timestamper is not None
            token = await self._timestamper.async_timestamp(
                digest_around(signed, stamp_gap), "sha256"
            )
            write_contents(signed, stamp_gap, token.dump())

    def _cached_material(self) -> ValidationMaterial | None:
        with self._lock:
            cached = self._material_cache
            if cached is not None and self._clock() - cached[0] <= self._cache_s:
                return cached[1]
            return None

    def _signing_cert(self) -> asn1_x509.Certificate:
        certificate = self._signer.signing_cert
        if certificate is None:
            raise SigningError("the signer has no certificate to embed")
        return certificate

    def _sign_document(
        self, pdf: bytes, text: SignatureText, context: ValidationContext
    ) -> bytes:
        embed_ltv = self._level in ("B-LT", "B-LTA")
        meta = signers.PdfSignatureMetadata(
            field_name=SIGNATURE_FIELD,
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
            reason=text.reason,
            location=text.location,
            name=text.name,
            embed_validation_info=embed_ltv,
            validation_context=context if embed_ltv else None,
        )
        timestamper = self._timestamper if self._level != "B-B" else None
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        pdf_signer_ = _PdfA2Signer(meta, self._signer, timestamper=timestamper)
        out = pdf_signer_.sign_pdf(writer, bytes_reserved=SIGNATURE_BYTES)
        return bytes(out.getbuffer())

    def _add_document_timestamp(self, pdf: bytes, context: ValidationContext) -> bytes:
        assert self._timestamper is not None
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        stamper = signers.PdfTimeStamper(self._timestamper)
        out = stamper.timestamp_pdf(
            writer,
            "sha256",
            validation_context=context,
            bytes_reserved=TIMESTAMP_BYTES,
        )
        return bytes(out.getbuffer())

    def _validation_context(self) -> ValidationContext:
        with self._lock:
            now = self._clock()
            if self._context is None or now - self._context_born > self._cache_s:
                self._context = ValidationContext(
                    trust_roots=self._trust_roots,
                    allow_fetching=True,
                    revocation_mode="require",
                )
                self._context_born = now
                self._fetching = True
                logger.debug("revocation data will be fetched afresh")
            return self._context

    def _keep_fetched(self, used: ValidationContext) -> None:
        """Serve later copies from what ``used`` fetched, without fetching."""
        with self._lock:
            if used is not self._context or not self._fetching:
                return
            if not used.ocsps and not used.crls:
                return
            self._context = ValidationContext(
                trust_roots=self._trust_roots,
                ocsps=list(used.ocsps),
                crls=list(used.crls),
                allow_fetching=False,
                revocation_mode="require",
            )
            self._fetching = False
            logger.debug(
                "reusing %s OCSP responses and %s CRLs",
                len(used.ocsps),
                len(used.crls),
            )


@contextmanager
def _signing_errors() -> Iterator[None]:
    """Turn pyHanko's and the timestamp client's errors into the bridge's."""
    try:
        yield
    except TimestampRequestError as exc:
        raise TimestampError(
            f"the timestamp service did not give a timestamp: {exc}; "
            "check that it is running and reachable (timestamp.url)"
        ) from exc
    except (PyHankoSigningError, PdfError, ValueError) as exc:
        chain_problem = _cause(exc, (PathBuildingError, PathValidationError))
        if chain_problem is not None:
            raise PkiError(
                "the signing certificate could not be validated for embedding: "
                f"{chain_problem}; check the trust anchors and that the CRL "
                "and OCSP services (pki.revocation_url) answer"
            ) from exc
        raise SigningError(f"the copy could not be signed: {exc}") from exc
    except (PathBuildingError, PathValidationError) as exc:
        raise PkiError(
            "the signing or timestamp certificate could not be validated for "
            f"embedding: {exc}; check the trust anchors and that the CRL and "
            "OCSP services (pki.revocation_url) answer"
        ) from exc


def _cause(
    exc: BaseException, kinds: tuple[type[BaseException], ...]
) -> BaseException | None:
    """Return the first exception of ``kinds`` in ``exc``'s chain of causes."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, kinds):
            return current
        current = current.__cause__ or current.__context__
    return None


class PooledTimeStamper(TimeStamper):
    """An RFC 3161 client that keeps its HTTP connection open between copies.

    pyHanko's own client opens a new aiohttp session (and loads the system's
    CA bundle, about 45 ms here) for every request; a copy needs two.
    """

    def __init__(self, url: str, timeout_s: float) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._url = url
        self._client = httpx.Client(timeout=timeout_s)

    async def async_request_tsa_response(
        self, req: tsp.TimeStampReq
    ) -> tsp.TimeStampResp:
        """Post ``req`` to the TSA and return its parsed reply."""
        try:
            response = self._client.post(
                self._url,
                content=req.dump(),
                headers={"Content-Type": "application/timestamp-query"},
            )
        except httpx.HTTPError as exc:
            raise TimestampRequestError(f"no answer from {self._url}: {exc}") from exc
        if response.status_code != 200:
            raise TimestampRequestError(
                f"{self._url} answered HTTP {response.status_code}"
            )
        if response.headers.get("Content-Type") != "application/timestamp-reply":
            raise TimestampRequestError(f"{self._url} did not send a timestamp reply")
        try:
            return tsp.TimeStampResp.load(response.content)
        except ValueError as exc:
            raise TimestampRequestError(f"{self._url} sent a malformed reply") from exc

    def close(self) -> None:
        """Close the HTTP connection."""
        self._client.close()


def http_timestamper(url: str, timeout_s: float) -> PooledTimeStamper:
    """Return a client for the RFC 3161 service at ``url``."""
    return PooledTimeStamper(url, timeout_s)


def signature_text(office_name: str, officer_name: str, copy_id: str) -> SignatureText:
    """Return the reason, location and name written into the signature."""
    return SignatureText(
        reason=f"Chứng thực bản sao đúng với bản chính ({copy_id})",
        location=office_name,
        name=officer_name,
    )
