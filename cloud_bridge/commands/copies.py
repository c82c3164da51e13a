"""``kiosk copy make|revoke|resume`` and ``kiosk verify``."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from cloud_bridge.commands import config_option
from cloud_bridge.config import BridgeConfig, load_bridge_config
from cloud_bridge.errors import VerificationError
from kiosk.files import write_atomic

logger = logging.getLogger(__name__)

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group("copy")
def copy_group() -> None:
    """Make and revoke certified copies."""


@copy_group.command("make")
@click.argument(
    "pages", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False)
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Where to write the signed PDF.",
)
@click.option("--type", "document_type", default="other", show_default=True)
@click.option("--name", "citizen_name", default="Nguyễn Văn A", show_default=True)
@click.option(
    "--id-number",
    envvar="KIOSK_CITIZEN_ID",
    default="001090000000",
    show_default=True,
    help="The citizen's ID number (or KIOSK_CITIZEN_ID).",
)
@click.option("--office", "office_code", help="Office code (default office).")
@config_option
@json_option
def make_command(
    pages: tuple[str, ...],
    out: Path,
    document_type: str,
    citizen_name: str,
    id_number: str,
    office_code: str | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Render, sign, timestamp and archive a copy of PAGES (images or one PDF)."""
    from cloud_bridge.context import Bridge
    from cloud_bridge.copies import CopyRequest, Officer

    config = load_bridge_config(config_path)
    sources = [_read(Path(page)) for page in pages]
    count = _page_count(sources)
    office = config.office(office_code)
    bridge = Bridge(config)
    try:
        issued = bridge.copies.make_copy(
            sources,
            CopyRequest(
                document_type=document_type,
                citizen_name=citizen_name,
                citizen_id_number=id_number,
                page_count=count,
                office_code=office_code or config.office_code,
            ),
            Officer(office.officer_name, office.officer_title),
        )
    finally:
        bridge.close()
    _write_atomically(out, issued.pdf)
    record = issued.record
    summary: dict[str, Any] = {
        "copy_id": record.copy_id,
        "access_code": issued.access_code,
        "cert_number": record.cert_number,
        "book": record.book,
        "issued_on": record.issued_on.isoformat(),
        "pages": record.page_count,
        "pdf": str(out),
        "pdf_sha256": record.pdf_sha256,
        "timings_ms": {k: round(v, 1) for k, v in issued.timings_ms.items()},
    }
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
        return
    click.echo(f"copy {record.copy_id}, number {record.cert_number}/{record.book}")
    click.echo(f"access code {issued.access_code}; written to {out}")


@copy_group.command("revoke")
@click.argument("copy_id")
@click.option("--reason", required=True, help="Why the copy is revoked.")
@click.option("--by", "revoked_by", required=True, help="Who revokes it.")
@config_option
def revoke_command(
    copy_id: str, reason: str, revoked_by: str, config_path: Path | None
) -> None:
    """Revoke a copy; verification reports it revoked from then on."""
    from cloud_bridge.context import Bridge
    from protocol.identifier import parse_copy_id

    bridge = Bridge(load_bridge_config(config_path))
    try:
        record = bridge.store.revoke_copy(parse_copy_id(copy_id), reason, revoked_by)
    finally:
        bridge.close()
    click.echo(f"copy {record.copy_id} revoked at {record.revoked_at}")


@copy_group.command("resume")
@config_option
def resume_command(config_path: Path | None) -> None:
    """Finish copies whose number was reserved but which were not issued."""
    from cloud_bridge.context import Bridge

    bridge = Bridge(load_bridge_config(config_path))
    try:
        finished = bridge.copies.resume()
    finally:
        bridge.close()
    for issued in finished:
        click.echo(f"finished copy {issued.copy_id} ({issued.record.cert_number})")
    click.echo(f"{len(finished)} copies finished")


@click.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--qr", is_flag=True, help="FILE is a photo of a printed copy.")
@click.option(
    "--trust-anchor",
    "anchors",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A trusted root certificate (PEM); default: the configured PKI's root.",
)
@click.option(
    "--trust-list",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The published seal trust list (JSON), for --qr.",
)
@click.option("--bridge", "bridge_url", help="Bridge URL for status and archive.")
@click.option("--offline", is_flag=True, help="Do not ask the bridge.")
@config_option
@json_option
def verify_command(
    file: Path,
    qr: bool,
    anchors: tuple[Path, ...],
    trust_list: Path | None,
    bridge_url: str | None,
    offline: bool,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Verify a certified copy (PDF), or with --qr the seal in a photo of one.

    Exits 0 only for a valid copy that is not revoked.
    """
    config = load_bridge_config(config_path)
    url = None if offline else bridge_url or _default_bridge_url(config)
    if qr:
        result = _verify_qr(file, config, trust_list)
    else:
        result = _verify_pdf(file, config, anchors, url)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, default=str))
    else:
        _print_result(result)
    sys.exit(0 if result["valid"] else 1)


def _verify_pdf(
    file: Path, config: BridgeConfig, anchors: tuple[Path, ...], url: str | None
) -> dict[str, Any]:
    from cloud_bridge.context import Bridge, load_asn1_certificate
    from cloud_bridge.registry_client import HttpRegistry
    from cloud_bridge.verify import verify_pdf

    if anchors:
        roots = [load_asn1_certificate(path) for path in anchors]
    else:
        roots = Bridge(config).trust_roots
    registry = HttpRegistry(url) if url else None
    try:
        report = verify_pdf(_read(file), roots, registry)
    except VerificationError as exc:
        return {"file": str(file), "valid": False, "problems": [str(exc)]}
    result = report.to_json()
    if registry is not None and registry.unreachable:
        result["problems"].append(f"the bridge at {url} did not answer: status unknown")
    return {"file": str(file), **result}


def _verify_qr(
    file: Path, config: BridgeConfig, trust_list_path: Path | None
) -> dict[str, Any]:
    from cloud_bridge.context import Bridge
    from models.errors import ModelError
    from models.qr import decode_qr_codes
    from protocol.errors import ProtocolError
    from protocol.seal import TrustList, verify_qr_payload

    if trust_list_path is not None:
        trust_list = TrustList.load(trust_list_path)
    else:
        trust_list = Bridge(config).trust_list
    try:
        texts = decode_qr_codes(_read(file))
    except ModelError as exc:
        return {"file": str(file), "valid": False, "problems": [str(exc)]}
    if not texts:
        problem = "no QR code was found in the photo; retake it closer and sharper"
        return {"file": str(file), "valid": False, "problems": [problem]}
    problems = []
    for text in texts:
        try:
            claims = verify_qr_payload(text, trust_list)
        except ProtocolError as exc:
            problems.append(str(exc))
            continue
        return {
            "file": str(file),
            "valid": True,
            "copy_id": claims.copy_id,
            "cert_number": claims.certification_number,
            "book": claims.book,
            "issue_date": claims.issue_date.isoformat(),
            "office_code": claims.office_code,
            "document_type": claims.document_type,
            "page_count": claims.page_count,
            "pages_digest": claims.pages_digest.hex(),
            "problems": [],
        }
    return {"file": str(file), "valid": False, "problems": problems}


def _print_result(result: dict[str, Any]) -> None:
    verdict = "VALID" if result["valid"] else "NOT VALID"
    click.echo(f"{result['file']}: {verdict}")
    for key in (
        "copy_id",
        "level",
        "signer",
        "signed_at",
        "status",
        "archive_match",
        "cert_number",
        "office_code",
        "issue_date",
    ):
        if result.get(key) is not None:
            click.echo(f"  {key.replace('_', ' ')}: {result[key]}")
    for problem in result.get("problems", []):
        click.echo(f"  problem: {problem}")


def _default_bridge_url(config: BridgeConfig) -> str:
    return f"http://{config.http.host}:{config.http.port}"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from exc


def _page_count(sources: list[bytes]) -> int:
    if len(sources) == 1 and sources[0][:5] == b"%PDF-":
        import pikepdf

        try:
            with pikepdf.open(io.BytesIO(sources[0])) as pdf:
                return len(pdf.pages)
        except pikepdf.PdfError as exc:
            raise click.ClickException(f"the PDF cannot be read: {exc}") from exc
    return len(sources)


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        write_atomic(path.absolute(), data)
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror}") from exc
