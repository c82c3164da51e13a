"""The PKCS#11 token: keys, certificates, signatures, errors, threads, fork."""

from __future__ import annotations

import io
import os
import pickle
import threading
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from pkcs11 import Attribute, ObjectClass
from pkcs11 import exceptions as p11
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from reportlab.pdfgen import canvas

from cloud_bridge.config import BridgeConfig
from cloud_bridge.errors import HsmError
from cloud_bridge.hsm import HsmToken, create_softhsm_token, open_token, to_asn1
from cloud_bridge.pki import DevPki
from cloud_bridge.trust_services import RunningTrustServices
from tests.cloud_bridge.conftest import (
    SOFTHSM_MODULE,
    TEST_PIN,
    BridgeBase,
    unique_label,
)

pytestmark = pytest.mark.hsm


def verify_raw(
    public_key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes
) -> None:
    """Verify a raw r||s ECDSA P-256 signature over SHA-256 (raises if bad)."""
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    der = utils.encode_dss_signature(r, s)
    public_key.verify(der, data, ec.ECDSA(hashes.SHA256()))


def attribute(token: HsmToken, kind: ObjectClass, label: str, name: Attribute) -> Any:
    """Read one attribute of the token object ``label`` (tests only)."""
    return token._run(
        "read an attribute",
        lambda s: next(s.get_objects({Attribute.CLASS: kind, Attribute.LABEL: label}))[
            name
        ],
    )


def test_generated_key_signs_and_never_leaves_the_token(hsm_token: HsmToken) -> None:
    label = unique_label("key")

    public_key = hsm_token.generate_ec_key(label)
    signature = hsm_token.sign_ecdsa_sha256(label, b"certified copy")

    assert isinstance(public_key.curve, ec.SECP256R1)
    assert len(signature) == 64
    verify_raw(public_key, signature, b"certified copy")
    with pytest.raises(InvalidSignature):
        verify_raw(public_key, signature, b"another copy")
    assert hsm_token.public_key(label) == public_key
    assert hsm_token.has_private_key(label)
    for name, expected in [
        ("SENSITIVE", True),
        ("EXTRACTABLE", False),
        ("TOKEN", True),
    ]:
        value = attribute(hsm_token, ObjectClass.PRIVATE_KEY, label, Attribute[name])
        assert value is expected, name


def test_generating_an_existing_label_is_refused(
    hsm_token: HsmToken, bridge_config: BridgeConfig
) -> None:
    with pytest.raises(HsmError, match="already on token"):
        hsm_token.generate_ec_key(bridge_config.hsm.signing_key_label)


def test_signing_key_has_its_certificate_with_subject(
    hsm_token: HsmToken, bridge_config: BridgeConfig, dev_pki: DevPki
) -> None:
    label = bridge_config.hsm.signing_key_label

    cert = hsm_token.certificate(label)
    subject = attribute(hsm_token, ObjectClass.CERTIFICATE, label, Attribute.SUBJECT)
    cert_id = attribute(hsm_token, ObjectClass.CERTIFICATE, label, Attribute.ID)
    key_id = attribute(hsm_token, ObjectClass.PRIVATE_KEY, label, Attribute.ID)

    assert cert == dev_pki.signing
    assert subject == cert.subject.public_bytes()
    assert key_id == cert_id != b""
    assert hsm_token.store_certificate(label, cert) is False


def test_store_certificate_replaces_a_different_one(
    hsm_token: HsmToken, dev_pki: DevPki
) -> None:
    label = unique_label("cert")

    assert hsm_token.store_certificate(label, dev_pki.tsa) is True
    assert hsm_token.store_certificate(label, dev_pki.ocsp) is True

    assert hsm_token.certificate(label) == dev_pki.ocsp


def test_missing_key_and_certificate_are_clear_errors(hsm_token: HsmToken) -> None:
    with pytest.raises(
        HsmError, match=r"no private key labelled 'absent'.*bridge init"
    ):
        hsm_token.sign_ecdsa_sha256("absent", b"x")
    with pytest.raises(HsmError, match="no certificate labelled 'absent'"):
        hsm_token.certificate("absent")
    with pytest.raises(HsmError, match="no public key labelled 'absent'"):
        hsm_token.public_key("absent")


def test_wrong_pin_is_a_clear_error(bridge_base: BridgeBase) -> None:
    # A token of its own: a logged-in one would accept any PIN in this process.
    label = unique_label("pin")
    create_softhsm_token(bridge_base.softhsm_conf, label, "right-pin", "so-pin")
    token = HsmToken(SOFTHSM_MODULE, label, "wrong-pin", bridge_base.softhsm_conf)

    with pytest.raises(HsmError, match=r"refused the PIN.*PIN incorrect.*hsm\.pin"):
        token.check()
    with HsmToken(SOFTHSM_MODULE, label, "right-pin", bridge_base.softhsm_conf) as ok:
        ok.check()


def test_wrong_pin_is_refused_while_the_token_is_logged_in(
    hsm_token: HsmToken, bridge_config: BridgeConfig
) -> None:
    hsm_token.check()  # logged in: PKCS#11 would now accept any PIN
    module, label = hsm_token.module_path, hsm_token.label
    wrong = HsmToken(module, label, "wrong-pin", hsm_token.softhsm_conf)
    right = HsmToken(module, label, TEST_PIN, hsm_token.softhsm_conf)

    with pytest.raises(HsmError, match="PIN incorrect"):
        wrong.check()
    right.check()
    right.close()  # logs the whole process out of the token

    assert hsm_token.has_private_key(bridge_config.hsm.seal_key_label)


def test_locked_pin_says_who_can_unlock_it() -> None:
    class LockedToken:  # SoftHSM2 never locks a PIN; other HSMs do
        def open(self, **kwargs: object) -> None:
            raise p11.PinLocked()

    token = HsmToken(SOFTHSM_MODULE, "office", "1234")

    with pytest.raises(HsmError, match=r"locked after too many wrong tries.*SO PIN"):
        token._login(cast(Any, LockedToken()))


def test_missing_module_names_the_fix(tmp_path: Path) -> None:
    token = HsmToken(tmp_path / "libnothing.so", "office", "1234")

    with pytest.raises(
        HsmError, match=r"does not exist; install softhsm2.*hsm\.module"
    ):
        token.check()


def test_missing_token_lists_what_exists(
    bridge_base: BridgeBase, hsm_token: HsmToken
) -> None:
    token = HsmToken(SOFTHSM_MODULE, "no-such-token", "1234", bridge_base.softhsm_conf)

    with pytest.raises(HsmError) as caught:
        token.check()

    message = str(caught.value)
    assert "no token labelled 'no-such-token'" in message
    assert repr(hsm_token.label) in message
    assert "kiosk bridge init" in message


def test_threads_share_the_token(
    hsm_token: HsmToken, bridge_config: BridgeConfig
) -> None:
    label = bridge_config.hsm.seal_key_label
    public_key = hsm_token.public_key(label)
    results: list[tuple[bytes, bytes]] = []
    errors: list[BaseException] = []

    def sign(worker: int) -> None:
        try:
            for n in range(20):
                data = f"{worker}-{n}".encode()
                results.append((data, hsm_token.sign_ecdsa_sha256(label, data)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sign, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(results) == 160
    for data, signature in results:
        verify_raw(public_key, signature, data)


def test_forked_workers_get_their_own_sessions(
    hsm_token: HsmToken, bridge_config: BridgeConfig
) -> None:
    label = bridge_config.hsm.seal_key_label
    public_key = hsm_token.public_key(label)  # the parent's session is open
    parent_session = hsm_token._session

    children = [
        _sign_in_child(hsm_token, label, f"child {n}".encode()) for n in range(2)
    ]

    for n, (pid, session_pid, signature) in enumerate(children):
        assert session_pid == pid != os.getpid()
        verify_raw(public_key, signature, f"child {n}".encode())
    verify_raw(public_key, hsm_token.sign_ecdsa_sha256(label, b"parent"), b"parent")
    assert hsm_token._session is parent_session


def _sign_in_child(token: HsmToken, label: str, data: bytes) -> tuple[int, int, bytes]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: sign, report, exit without pytest's cleanup
        status = 1
        try:
            signature = token.sign_ecdsa_sha256(label, data)
            assert token._session is not None
            with os.fdopen(write, "wb") as pipe:
                pickle.dump((os.getpid(), token._session[0], signature), pipe)
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        report: tuple[int, int, bytes] = pickle.load(pipe)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return report


def test_open_token_reads_the_configured_pin(bridge_config: BridgeConfig) -> None:
    with open_token(bridge_config) as token:
        assert token.label == bridge_config.hsm.token_label
        assert token.has_private_key(bridge_config.hsm.signing_key_label)
        assert "pin" not in repr(token).lower()


def test_pdf_signer_makes_a_trusted_timestamped_signature(
    hsm_token: HsmToken,
    bridge_config: BridgeConfig,
    dev_pki: DevPki,
    trust_services: RunningTrustServices,
) -> None:
    signer = hsm_token.pdf_signer(
        bridge_config.hsm.signing_key_label, chain=dev_pki.trust_roots
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(_tiny_pdf()))
    meta = signers.PdfSignatureMetadata(
        field_name="Sig1",
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
    )

    signed = signers.sign_pdf(
        writer, meta, signer=signer, timestamper=HTTPTimeStamper(trust_services.tsa_url)
    )

    context = ValidationContext(
        trust_roots=[to_asn1(dev_pki.root)],
        allow_fetching=True,
        revocation_mode="hard-fail",  # the CRL and OCSP services must answer
    )
    reader = PdfFileReader(signed)
    status = validate_pdf_signature(reader.embedded_signatures[0], context)
    assert status.intact and status.valid and status.trusted, status
    assert status.signing_cert.subject.native["common_name"] == (
        bridge_config.office().name
    )
    assert status.timestamp_validity is not None
    assert status.timestamp_validity.trusted


def test_pdf_signer_needs_the_key(hsm_token: HsmToken, dev_pki: DevPki) -> None:
    with pytest.raises(HsmError, match="no private key labelled 'absent'"):
        hsm_token.pdf_signer("absent", signing_cert=dev_pki.signing)


def _tiny_pdf() -> bytes:
    out = io.BytesIO()
    page = canvas.Canvas(out)
    page.drawString(72, 720, "TTPVHCC")
    page.save()
    return out.getvalue()
