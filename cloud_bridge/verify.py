"""Check a certified copy: integrity, signature, chain, timestamps, LTV, status.

The signature must be intact and made by a certificate that chains to a
configured trust anchor; everything appended after it must be validation data
or document timestamps (nothing that changes what was signed); a B-LTA copy
must pass ETSI EN 319 102-1 long-term validation offline, from the data
embedded in the file alone. When a registry is given (the bridge's database,
or the bridge over HTTP), the copy's status (valid or revoked) and whether the
file is the one in the archive are reported too.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.misc import PdfReadError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESStatus
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import ades, validate_pdf_signature
from pyhanko.sign.validation.policy_decl import (
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from pyhanko_certvalidator.registry import SimpleTrustManager

from cloud_bridge.errors import VerificationError

logger = logging.getLogger(__name__)

COPY_ID_IN_REASON = re.compile(r"\(([0-9A-Z]{4}(?:-[0-9A-Z]{2,4})+)\)\s*$")


@dataclass(frozen=True)
class RegistryAnswer:
    """What the office's records say about a copy."""

    known: bool
    revoked: bool = False
    revoked_at: datetime | None = None
    revocation_reason: str | None = None
    archive_match: bool | None = None


class CopyRegistry(Protocol):
    """Where a verifier asks for a copy's status (database or bridge API)."""

    def status(self, copy_id: str, pdf_sha256: str) -> RegistryAnswer:
        """Return the copy's status and whether this file is the archived one."""
        ...


@dataclass
class PdfVerification:
    """The outcome of checking one PDF, each finding separately."""

    file_sha256: str
    signed: bool = False
    intact: bool = False
    trusted: bool = False
    unchanged_since_signing: bool = False
    timestamped: bool = False
    long_term_valid: bool = False
    level: str = "none"
    copy_id: str | None = None
    signer: str | None = None
    signed_at: datetime | None = None
    registry_checked: bool = False
    status: str = "unknown"
    revocation_reason: str | None = None
    archive_match: bool | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """True only for an intact, trusted, unchanged, unrevoked copy."""
        return (
            self.intact
            and self.trusted
            and self.unchanged_since_signing
            and self.long_term_valid
            and self.status != "revoked"
            and not (self.registry_checked and self.status == "unknown")
            and self.archive_match is not False
        )

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary, with the overall verdict."""
        data = asdict(self)
        data["valid"] = self.valid
        if self.signed_at is not None:
            data["signed_at"] = self.signed_at.isoformat()
        return data


def verify_pdf(
    data: bytes,
    trust_roots: Sequence[asn1_x509.Certificate],
    registry: CopyRegistry | None = None,
) -> PdfVerification:
    """Check ``data`` as a certified copy and report every finding.

    Raises:
        VerificationError: ``data`` is not a PDF that can be read at all.
    """
    report = PdfVerification(file_sha256=hashlib.sha256(data).hexdigest())
    reader = _open(data)
    signatures = [s for s in reader.embedded_signatures if _is_signature(s)]
    if not signatures:
        report.problems.append("the file carries no signature")
        return report
    report.signed = True
    signature = signatures[0]

    _check_signature(signature, trust_roots, report)
    if report.intact and report.trusted:
        _check_long_term(signature, trust_roots, report)
    if registry is not None and report.copy_id is not None:
        _check_registry(registry, report)
    logger.debug("verified %s: valid=%s", report.copy_id, report.valid)
    return report


def _open(data: bytes) -> PdfFileReader:
    if not data.lstrip()[:5].startswith(b"%PDF-"):
        raise VerificationError("the file is not a PDF (no %PDF- header)")
    try:
        return PdfFileReader(io.BytesIO(data), strict=False)
    except (PdfReadError, ValueError, KeyError, IndexError) as exc:
        raise VerificationError(f"the PDF cannot be read: {exc}") from exc


def _is_signature(signature: Any) -> bool:
    return bool(signature.sig_object.get("/Type") != "/DocTimeStamp")


def _check_signature(
    signature: Any,
    trust_roots: Sequence[asn1_x509.Certificate],
    report: PdfVerification,
) -> None:
    context = ValidationContext(
        trust_roots=list(trust_roots),
        allow_fetching=False,
        revocation_mode="soft-fail",
    )
    try:
        status = validate_pdf_signature(signature, context)
    except (ValueError, KeyError, TypeError) as exc:
        report.problems.append(f"the signature is malformed: {exc}")
        return
    report.intact = bool(status.intact and status.valid)
    report.trusted = bool(status.trusted)
    report.signer = status.signing_cert.subject.human_friendly
    report.signed_at = status.signer_reported_dt
    report.timestamped = bool(
        status.timestamp_validity is not None
        and status.timestamp_validity.intact
        and status.timestamp_validity.trusted
    )
    report.unchanged_since_signing = status.coverage == (
        SignatureCoverageLevel.ENTIRE_FILE
    ) or bool(
        status.coverage == SignatureCoverageLevel.ENTIRE_REVISION
        and status.modification_level is not None
        and status.modification_level <= ModificationLevel.LTA_UPDATES
    )
    reason = signature.sig_object.get("/Reason")
    match = COPY_ID_IN_REASON.search(str(reason)) if reason else None
    report.copy_id = match.group(1) if match else None
    report.level = _level(signature, report)
    if not report.intact:
        report.problems.append("the file was changed after it was signed")
    if not report.trusted:
        report.problems.append("the signer does not chain to a trusted office root")
    if not report.unchanged_since_signing:
        report.problems.append("content was added after the signature")


def _level(signature: Any, report: PdfVerification) -> str:
    if not report.timestamped:
        return "B-B"
    reader = signature.reader
    has_dss = "/DSS" in reader.root
    has_doc_ts = any(
        s.sig_object.get("/Type") == "/DocTimeStamp" for s in reader.embedded_signatures
    )
    if has_dss and has_doc_ts:
        return "B-LTA"
    return "B-LT" if has_dss else "B-T"


def _check_long_term(
    signature: Any,
    trust_roots: Sequence[asn1_x509.Certificate],
    report: PdfVerification,
) -> None:
    if report.level != "B-LTA":
        report.problems.append(f"the copy is signed at PAdES {report.level}, not B-LTA")
        return
    required = RevocationCheckingRule.CRL_OR_OCSP_REQUIRED
    policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(trust_roots=list(trust_roots)),
        revinfo_policy=CertRevTrustPolicy(
            RevocationCheckingPolicy(
                ee_certificate_rule=required,
                intermediate_ca_cert_rule=required,
            )
        ),
    )
    spec = PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=policy,
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY
            ),
        )
    )
    result = asyncio.run(ades.ades_lta_validation(signature, spec))
    report.long_term_valid = result.ades_subindic.status == AdESStatus.PASSED
    if not report.long_term_valid:
        report.problems.append(
            f"long-term validation did not pass: {result.ades_subindic}"
        )


def _check_registry(registry: CopyRegistry, report: PdfVerification) -> None:
    assert report.copy_id is not None
    answer = registry.status(report.copy_id, report.file_sha256)
    report.registry_checked = True
    if not answer.known:
        report.status = "unknown"
        report.problems.append("the office has no record of this copy")
        return
    report.status = "revoked" if answer.revoked else "valid"
    report.revocation_reason = answer.revocation_reason
    report.archive_match = answer.archive_match
    if answer.revoked:
        report.problems.append(f"the copy was revoked: {answer.revocation_reason}")
    if answer.archive_match is False:
        report.problems.append("the file differs from the archived copy")
