"""Sign a rendered copy as PAdES, up to baseline B-LTA, keeping it PDF/A-2b.

The levels build on each other: B-B is the CMS signature made with the
office's key; B-T adds a signature timestamp; B-LT embeds the certificates and
revocation data (a DSS) needed to validate it later; B-LTA adds a document
timestamp over all of that, so the copy stays verifiable after the
certificates expire.

Two departures from pyHanko's defaults keep the copy PDF/A-2b:
pyHanko raises the output to PDF 2.0 and registers the ISO 32002 extension
when the key is on a P-256 curve, which PDF/A-2 forbids, so the extensions
are limited to the ESIC one PAdES needs; and the space for each signature is
reserved up front instead of being estimated by a dry run, which would cost a
second HSM signature and a second timestamp per copy.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx
from asn1crypto import tsp
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

from cloud_bridge.errors import PkiError, SigningError, TimestampError

logger = logging.getLogger(__name__)

LEVELS = ("B-B", "B-T", "B-LT", "B-LTA")
SIGNATURE_FIELD = "ChungThuc"
SIGNATURE_BYTES = 16_384
TIMESTAMP_BYTES = 12_288


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


@dataclass(frozen=True)
class SignatureText:
    """What the signature dictionary says about the copy."""

    reason: str
    location: str
    name: str


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
        try:
            signed = self._sign_document(pdf, text, context)
            if self._level == "B-LTA":
                signed = self._add_document_timestamp(signed, context)
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
        self._keep_fetched(context)
        return signed

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
