"""Sign a rendered copy in place: PAdES up to B-LTA without re-reading the PDF.

pyHanko signs any PDF by parsing it, adding an incremental update and
validating the signer's chain again for every document; for a copy that is
most of the signing time. A copy, though, is a PDF this bridge has just
written, so the renderer can leave everything the signatures need in it:

* the signature dictionary of the copy's signature field, with a
  ``/ByteRange`` and a ``/Contents`` of fixed width to be filled in;
* an empty document timestamp field, so that the B-LTA revision only fills
  it in (a change every PAdES validator allows after a signature).

Signing is then arithmetic on bytes: write the byte range, hash the file
around ``/Contents``, have the token sign the CMS (with its signature
timestamp) and write it into the gap. B-LT and B-LTA append one incremental
update: the Document Security Store (certificates, OCSP responses and CRLs,
collected once per cache period by :class:`ValidationMaterial`) and, for
B-LTA, the document timestamp, whose gap is filled the same way.

Both updates keep the copy PDF/A-2b: the signature widgets are zero-size,
printable and locked, the extension is the ESIC one PAdES needs, and the
update uses a classic cross-reference table like the first revision.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pikepdf
from asn1crypto import cms, ocsp
from asn1crypto import x509 as asn1_x509
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
from pyhanko_certvalidator.path import ValidationPath

from cloud_bridge.errors import SigningError

logger = logging.getLogger(__name__)

SIGNATURE_FIELD = "ChungThuc"
TIMESTAMP_FIELD = "LuuTru"
SIGNATURE_BYTES = 16_384
TIMESTAMP_BYTES = 12_288
WIDGET_FLAGS = 132  # Print | Locked: PDF/A wants printable widgets
_RANGE_SENTINEL = (0, 1111111111, 2222222222, 3333333333)
_RANGE_WIDTH = len("[ 0 1111111111 2222222222 3333333333 ]")
_XREF_ENTRY = b"%010d 00000 n \n"


@dataclass(frozen=True)
class SignatureText:
    """What the signature dictionary says about the copy."""

    reason: str
    location: str
    name: str


def add_signature_fields(
    pdf: pikepdf.Pdf, text: SignatureText, signed_at: datetime
) -> None:
    """Give ``pdf`` a signature to fill in and an empty timestamp field.

    The widgets go on the last page, where the certification block is. The
    PDF must then be saved without object streams, so that the signature
    dictionary stays plain text that :func:`sign_in_place` can patch.
    """
    page = pdf.pages[-1].obj
    signature = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Sig,
            Filter=pikepdf.Name("/Adobe.PPKLite"),
            SubFilter=pikepdf.Name("/ETSI.CAdES.detached"),
            M=pikepdf.String(_pdf_date(signed_at)),
            Name=pikepdf.String(text.name),
            Reason=pikepdf.String(text.reason),
            Location=pikepdf.String(text.location),
            ByteRange=pikepdf.Array(list(_RANGE_SENTINEL)),
            Contents=pikepdf.String(b"\x00" * SIGNATURE_BYTES),
        )
    )
    fields = [
        _widget(pdf, page, SIGNATURE_FIELD, signature),
        _widget(pdf, page, TIMESTAMP_FIELD, None),
    ]
    annotations = list(page.get("/Annots", pikepdf.Array()))
    page.Annots = pikepdf.Array([*annotations, *fields])
    pdf.Root.AcroForm = pdf.make_indirect(
        pikepdf.Dictionary(Fields=pikepdf.Array(fields), SigFlags=3)
    )
    pdf.Root.Extensions = pikepdf.Dictionary(
        ESIC=pikepdf.Dictionary(
            Type=pikepdf.Name.DeveloperExtensions,
            BaseVersion=pikepdf.Name("/1.7"),
            ExtensionLevel=1,
        )
    )


def _widget(
    pdf: pikepdf.Pdf,
    page: pikepdf.Object,
    name: str,
    value: pikepdf.Object | None,
) -> pikepdf.Object:
    widget = pikepdf.Dictionary(
        Type=pikepdf.Name.Annot,
        Subtype=pikepdf.Name.Widget,
        FT=pikepdf.Name.Sig,
        T=pikepdf.String(name),
        F=WIDGET_FLAGS,
        Rect=pikepdf.Array([0, 0, 0, 0]),
        P=page,
    )
    if value is not None:
        widget.V = value
    return pdf.make_indirect(widget)


def _pdf_date(moment: datetime) -> str:
    return "D:" + moment.astimezone(UTC).strftime("%Y%m%d%H%M%S") + "Z"


@dataclass(frozen=True)
class Gap:
    """Where a signature's ``/ByteRange`` and ``/Contents`` sit in a file."""

    range_at: int
    contents_start: int
    contents_end: int

    @property
    def capacity(self) -> int:
        """How many bytes of DER fit between the angle brackets."""
        return (self.contents_end - self.contents_start - 2) // 2


def find_signature_gap(pdf: bytes | bytearray) -> Gap:
    """Find the prepared signature's placeholders in a rendered copy.

    Raises:
        SigningError: the PDF was not prepared by :func:`add_signature_fields`.
    """
    sentinel = ("[ " + " ".join(str(n) for n in _RANGE_SENTINEL) + " ]").encode()
    range_at = pdf.find(sentinel)
    placeholder = b"<" + b"00" * SIGNATURE_BYTES + b">"
    contents_start = pdf.find(placeholder)
    if range_at < 0 or contents_start < 0:
        raise SigningError(
            "the copy has no prepared signature field; render it with its "
            "signature text before signing"
        )
    return Gap(range_at, contents_start, contents_start + len(placeholder))


def write_byte_range(pdf: bytearray, gap: Gap) -> None:
    """Fill in ``/ByteRange``: everything but the ``/Contents`` gap."""
    ranges = (0, gap.contents_start, gap.contents_end, len(pdf) - gap.contents_end)
    text = ("[ " + " ".join(str(n) for n in ranges) + " ]").ljust(_RANGE_WIDTH)
    if len(text) > _RANGE_WIDTH:
        raise SigningError("the copy is too large for its byte range")
    pdf[gap.range_at : gap.range_at + _RANGE_WIDTH] = text.encode("ascii")


def digest_around(pdf: bytes | bytearray, gap: Gap) -> bytes:
    """Return the SHA-256 of the file with the ``/Contents`` gap left out."""
    view = memoryview(pdf)
    hasher = hashlib.sha256(view[: gap.contents_start])
    hasher.update(view[gap.contents_end :])
    return hasher.digest()


def write_contents(pdf: bytearray, gap: Gap, der: bytes) -> None:
    """Write ``der`` (hex, zero-padded) into the ``/Contents`` gap."""
    if len(der) > gap.capacity:
        raise SigningError(
            f"the signature needs {len(der)} bytes but {gap.capacity} were "
            "reserved; raise the reserved size"
        )
    hexed = der.hex().encode("ascii").ljust(gap.capacity * 2, b"0")
    pdf[gap.contents_start + 1 : gap.contents_end - 1] = hexed


@dataclass(frozen=True)
class ValidationMaterial:
    """What a verifier needs in the DSS: certificates and revocation data."""

    certificates: tuple[bytes, ...]
    ocsp_responses: tuple[bytes, ...]
    crls: tuple[bytes, ...]

    @classmethod
    def gather(
        cls,
        paths: Iterable[Iterable[asn1_x509.Certificate]],
        ocsp_responses: Sequence[ocsp.OCSPResponse],
        crls: Sequence[object],
    ) -> ValidationMaterial:
        """Collect the certificates of ``paths`` and of the OCSP responders."""
        certificates: dict[bytes, None] = {}
        for path in paths:
            for certificate in path:
                certificates[certificate.dump()] = None
        for response in ocsp_responses:
            for certificate in _responder_certificates(response):
                certificates[certificate.dump()] = None
        return cls(
            tuple(certificates),
            tuple(response.dump() for response in ocsp_responses),
            tuple(_der(crl) for crl in crls),
        )


class MaterialCollector:
    """Validate certificate paths, fetching their OCSP responses and CRLs.

    Validation with revocation checks required is what fetches the data a
    verifier will need; the paths and what was fetched become the DSS.
    """

    def __init__(self, trust_roots: Sequence[asn1_x509.Certificate]) -> None:
        self._backend = AIOHttpFetcherBackend()
        self._context = ValidationContext(
            trust_roots=list(trust_roots),
            allow_fetching=True,
            revocation_mode="require",
            fetchers=self._backend.get_fetchers(),
        )
        self._paths: list[ValidationPath] = []

    async def add(
        self,
        certificate: asn1_x509.Certificate,
        intermediates: Iterable[asn1_x509.Certificate],
    ) -> None:
        """Validate ``certificate``'s path to a trust root, revocation included.

        Raises:
            PathBuildingError, PathValidationError: it does not validate.
        """
        validator = CertificateValidator(
            certificate,
            intermediate_certs=list(intermediates),
            validation_context=self._context,
        )
        self._paths.append(await validator.async_validate_path())

    def material(self) -> ValidationMaterial:
        """Return what the validated paths need in the DSS."""
        logger.debug(
            "collected %s OCSP responses and %s CRLs for the DSS",
            len(self._context.ocsps),
            len(self._context.crls),
        )
        return ValidationMaterial.gather(
            self._paths, self._context.ocsps, self._context.crls
        )

    async def close(self) -> None:
        """Close the HTTP sessions used for fetching."""
        await self._backend.close()  # type: ignore[no-untyped-call]


def _responder_certificates(
    response: ocsp.OCSPResponse,
) -> list[asn1_x509.Certificate]:
    basic = response["response_bytes"]["response"].parsed
    return list(basic["certs"] or [])


def _der(value: object) -> bytes:
    dump = getattr(value, "dump", None)
    if dump is None:
        raise SigningError(f"cannot embed {type(value).__name__} in the DSS")
    return bytes(dump())


@dataclass(frozen=True)
class _Revision:
    """What the next incremental update needs to know about the file."""

    size: int
    root: tuple[int, bytes]
    timestamp_field: tuple[int, bytes]
    trailer_extra: bytes
    previous_xref: int


_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF\s*$")
_SUBSECTION = re.compile(rb"(\d+) (\d+)\s*\n")
_TRAILER = re.compile(rb"trailer\s*(<<.*?>>)\s*startxref", re.DOTALL)
_SIZE = re.compile(rb"/Size (\d+)")
_ROOT = re.compile(rb"/Root (\d+) 0 R")
_INFO = re.compile(rb"/Info \d+ 0 R")
_ID = re.compile(rb"/ID \[[^\]]*\]")
_TIMESTAMP_TITLE = b"/T (" + TIMESTAMP_FIELD.encode("ascii") + b")"


def _last_revision(pdf: bytes | bytearray) -> _Revision:
    """Read the catalog, the timestamp field and the trailer of ``pdf``.

    The file is the renderer's or one this module appended to: a classic
    cross-reference table, objects in plain text (no object streams), so
    the few objects needed are found through the table without parsing the
    whole document.
    """
    end = _STARTXREF.search(pdf, max(0, len(pdf) - 64))
    if end is None:
        raise SigningError("the copy does not end with a cross-reference")
    xref_at = int(end.group(1))
    offsets = _xref_offsets(pdf, xref_at)
    trailer = _TRAILER.search(pdf, xref_at)
    size = _SIZE.search(trailer.group(1)) if trailer else None
    root = _ROOT.search(trailer.group(1)) if trailer else None
    if trailer is None or size is None or root is None:
        raise SigningError("the copy's trailer has no /Size or /Root")
    extra = b"".join(
        b" " + match.group(0)
        for match in (_INFO.search(trailer.group(1)), _ID.search(trailer.group(1)))
        if match is not None
    )
    root_number = int(root.group(1))
    field_number = _object_containing(pdf, offsets, _TIMESTAMP_TITLE)
    return _Revision(
        size=int(size.group(1)),
        root=(root_number, _object_body(pdf, offsets, root_number)),
        timestamp_field=(field_number, _object_body(pdf, offsets, field_number)),
        trailer_extra=extra,
        previous_xref=xref_at,
    )


def _xref_offsets(pdf: bytes | bytearray, xref_at: int) -> dict[int, int]:
    """Return object number -> offset from the classic table at ``xref_at``."""
    if pdf[xref_at : xref_at + 4] != b"xref":
        raise SigningError("the copy's cross-reference is not a classic table")
    offsets: dict[int, int] = {}
    position = pdf.index(b"\n", xref_at) + 1
    while (header := _SUBSECTION.match(pdf, position)) is not None:
        first, count = int(header.group(1)), int(header.group(2))
        position = header.end()
        for number in range(first, first + count):
            entry = pdf[position : position + 20]
            if entry[17:18] == b"n":
                offsets[number] = int(entry[:10])
            position += 20
    return offsets


def _object_body(pdf: bytes | bytearray, offsets: dict[int, int], number: int) -> bytes:
    """Return the text between ``N 0 obj`` and ``endobj`` of object ``number``."""
    start = offsets.get(number)
    head = b"%d 0 obj" % number
    if start is None or pdf[start : start + len(head)] != head:
        raise SigningError(f"object {number} is not where the copy's table says")
    body_start = start + len(head)
    return bytes(pdf[body_start : pdf.index(b"endobj", body_start)]).strip()


def _object_containing(
    pdf: bytes | bytearray, offsets: dict[int, int], marker: bytes
) -> int:
    """Return the number of the object whose text holds ``marker``."""
    at = pdf.rfind(marker)
    if at < 0:
        raise SigningError("the copy has no document timestamp field")
    starts = sorted((offset, number) for number, offset in offsets.items())
    owner = max((item for item in starts if item[0] < at), default=None)
    if owner is None:
        raise SigningError("the document timestamp field is outside any object")
    return owner[1]


class _UpdateWriter:
    """Write one incremental update: objects, then a classic xref table."""

    def __init__(self, base: bytearray, next_number: int) -> None:
        self.out = base
        if not self.out.endswith(b"\n"):
            self.out += b"\n"
        self._offsets: dict[int, int] = {}
        self._next = next_number

    def reserve(self) -> int:
        number = self._next
        self._next += 1
        return number

    def write(self, number: int, body: bytes) -> int:
        """Write object ``number``; return where its body starts."""
        self._offsets[number] = len(self.out)
        self.out += b"%d 0 obj\n" % number
        start = len(self.out)
        self.out += body + b"\nendobj\n"
        return start

    def stream(self, number: int, data: bytes) -> None:
        body = b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"
        self.write(number, body)

    def finish(self, root: int, trailer_extra: bytes, previous: int) -> bytearray:
        xref_at = len(self.out)
        self.out += b"xref\n"
        numbers = sorted(self._offsets)
        for run in _runs(numbers):
            self.out += b"%d %d\n" % (run[0], len(run))
            for number in run:
                self.out += _XREF_ENTRY % self._offsets[number]
        self.out += b"trailer\n<< /Size %d /Root %d 0 R%s /Prev %d >>\n" % (
            self._next,
            root,
            trailer_extra,
            previous,
        )
        self.out += b"startxref\n%d\n%%%%EOF\n" % xref_at
        return self.out


def _runs(numbers: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for number in numbers:
        if runs and runs[-1][-1] + 1 == number:
            runs[-1].append(number)
        else:
            runs.append([number])
    return runs


def _with_entry(dictionary: bytes, entry: bytes) -> bytes:
    if not dictionary.startswith(b"<<"):
        raise SigningError("unexpected object where a dictionary belongs")
    return b"<< " + entry + dictionary[2:]


def append_security_store(
    pdf: bytearray, material: ValidationMaterial, with_timestamp: bool
) -> Gap | None:
    """Append the DSS and, for B-LTA, a document timestamp to fill in, to ``pdf``.

    Returns the gap of the document timestamp (None without one).
    """
    revision = _last_revision(pdf)
    writer = _UpdateWriter(pdf, revision.size)
    refs: dict[str, list[int]] = {}
    for key, items in (
        ("Certs", material.certificates),
        ("OCSPs", material.ocsp_responses),
        ("CRLs", material.crls),
    ):
        refs[key] = []
        for item in items:
            number = writer.reserve()
            writer.stream(number, item)
            refs[key].append(number)
    dss = writer.reserve()
    writer.write(dss, _dss_dictionary(refs))
    root_number, root_text = revision.root
    writer.write(root_number, _with_entry(root_text, b"/DSS %d 0 R" % dss))
    gap = None
    if with_timestamp:
        stamp = writer.reserve()
        field_number, field_text = revision.timestamp_field
        writer.write(field_number, _with_entry(field_text, b"/V %d 0 R" % stamp))
        gap = _write_timestamp_dictionary(writer, stamp)
    writer.finish(root_number, revision.trailer_extra, revision.previous_xref)
    if gap is not None:
        write_byte_range(pdf, gap)
    return gap


def _dss_dictionary(refs: dict[str, list[int]]) -> bytes:
    parts = [b"<< /Type /DSS"]
    for key, numbers in refs.items():
        if numbers:
            listed = b" ".join(b"%d 0 R" % number for number in numbers)
            parts.append(b"/%s [ %s ]" % (key.encode("ascii"), listed))
    parts.append(b">>")
    return b" ".join(parts)


def _write_timestamp_dictionary(writer: _UpdateWriter, number: int) -> Gap:
    sentinel = ("[ " + " ".join(str(n) for n in _RANGE_SENTINEL) + " ]").encode()
    head = (
        b"<< /Type /DocTimeStamp /Filter /Adobe.PPKLite /SubFilter /ETSI.RFC3161"
        b" /ByteRange "
    )
    placeholder = b"<" + b"00" * TIMESTAMP_BYTES + b">"
    body = head + sentinel + b" /Contents " + placeholder + b" >>"
    start = writer.write(number, body)
    range_at = start + len(head)
    contents_start = range_at + len(sentinel) + len(b" /Contents ")
    return Gap(range_at, contents_start, contents_start + len(placeholder))


def timestamp_token_certificates(
    signature: cms.ContentInfo,
) -> list[asn1_x509.Certificate]:
    """Return the certificates in the signature timestamp of ``signature``."""
    signer_info = signature["content"]["signer_infos"][0]
    for attribute in signer_info["unsigned_attrs"] or []:
        if attribute["type"].native == "signature_time_stamp_token":
            token = attribute["values"][0]
            return [
                choice.chosen
                for choice in token["content"]["certificates"] or []
                if choice.name == "certificate"
            ]
    return []
