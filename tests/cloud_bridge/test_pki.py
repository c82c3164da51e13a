"""The development PKI, revocation records and ``kiosk bridge init``."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    NameOID,
)

from cloud_bridge.commands.pki import init_command
from cloud_bridge.config import BridgeConfig, load_bridge_config
from cloud_bridge.errors import PkiError
from cloud_bridge.hsm import HsmToken, open_token
from cloud_bridge.pki import (
    OCSP_KEY,
    REVOCATIONS,
    ROOT_CERT_LABEL,
    ROOT_CERTIFICATE,
    ROOT_KEY,
    SIGNING_CERTIFICATE,
    TSA_KEY,
    DevPki,
    create_dev_pki,
    load_dev_pki,
    load_revocations,
    revoke_certificate,
)
from tests.cloud_bridge.conftest import SOFTHSM_MODULE, BridgeBase, unique_label

pytestmark = pytest.mark.hsm


def extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> Any:
    """Return the certificate's extension of that kind."""
    return cert.extensions.get_extension_for_class(kind)


def lifetime(cert: x509.Certificate) -> timedelta:
    """Return how long the certificate is valid."""
    return cert.not_valid_after_utc - cert.not_valid_before_utc


def test_root_is_a_ten_year_ca(dev_pki: DevPki) -> None:
    root = dev_pki.root

    assert extension(root, x509.BasicConstraints).value.ca is True
    usage = extension(root, x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert timedelta(days=3650) <= lifetime(root) <= timedelta(days=3653)
    assert root.issuer == root.subject
    root.verify_directly_issued_by(root)


def test_signing_certificate_names_the_office_and_its_revocation_services(
    dev_pki: DevPki, bridge_config: BridgeConfig, hsm_token: HsmToken
) -> None:
    cert = dev_pki.signing
    base = bridge_config.pki.revocation_url

    usage = extension(cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature and usage.value.content_commitment
    common_name = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert common_name == bridge_config.office().name
    crl = extension(cert, x509.CRLDistributionPoints).value
    assert crl[0].full_name[0].value == f"{base}/crl/root.crl"
    aia = {
        d.access_method: d.access_location.value
        for d in extension(cert, x509.AuthorityInformationAccess).value
    }
    assert aia[AuthorityInformationAccessOID.OCSP] == f"{base}/ocsp"
    assert cert.public_key() == hsm_token.public_key(
        bridge_config.hsm.signing_key_label
    )
    assert timedelta(days=729) <= lifetime(cert) <= timedelta(days=731)
    cert.verify_directly_issued_by(dev_pki.root)


def test_seal_certificate_is_for_the_seal_key(
    dev_pki: DevPki, bridge_config: BridgeConfig, hsm_token: HsmToken
) -> None:
    assert dev_pki.seal.public_key() == hsm_token.public_key(
        bridge_config.hsm.seal_key_label
    )
    assert hsm_token.certificate(bridge_config.hsm.seal_key_label) == dev_pki.seal
    assert hsm_token.certificate(ROOT_CERT_LABEL) == dev_pki.root


def test_tsa_certificate_may_only_timestamp(dev_pki: DevPki) -> None:
    eku = extension(dev_pki.tsa, x509.ExtendedKeyUsage)

    assert eku.critical
    assert list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    assert dev_pki.tsa.public_key() == dev_pki.tsa_key.public_key()


def test_ocsp_certificate_is_a_delegated_responder(dev_pki: DevPki) -> None:
    eku = extension(dev_pki.ocsp, x509.ExtendedKeyUsage).value

    assert list(eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    assert extension(dev_pki.ocsp, x509.OCSPNoCheck) is not None
    with pytest.raises(x509.ExtensionNotFound):
        extension(dev_pki.ocsp, x509.AuthorityInformationAccess)


def test_software_keys_are_private_files(bridge_config: BridgeConfig) -> None:
    pki_dir = bridge_config.path(bridge_config.pki.dir)

    for name in (ROOT_KEY, TSA_KEY, OCSP_KEY):
        assert stat.S_IMODE((pki_dir / name).stat().st_mode) == 0o600, name


def test_creating_again_changes_nothing(
    bridge_config: BridgeConfig, hsm_token: HsmToken, dev_pki: DevPki
) -> None:
    pki_dir = bridge_config.path(bridge_config.pki.dir)
    before = {p.name: p.read_bytes() for p in pki_dir.iterdir()}

    again = create_dev_pki(bridge_config, hsm_token)

    assert again.created == ()
    assert {p.name: p.read_bytes() for p in pki_dir.iterdir()} == before
    assert again.signing == dev_pki.signing


def test_a_new_token_key_gets_a_new_certificate(
    bridge_config: BridgeConfig, hsm_token: HsmToken, dev_pki: DevPki
) -> None:
    label = unique_label("signing")
    hsm_token.generate_ec_key(label)
    hsm = bridge_config.hsm.model_copy(update={"signing_key_label": label})
    config = bridge_config.model_copy(update={"hsm": hsm})

    pki = create_dev_pki(config, hsm_token)

    assert pki.created == (
        f"certificate {SIGNING_CERTIFICATE}",
        f"certificate {label!r} on token {hsm_token.label!r}",
    )
    assert pki.signing.public_key() == hsm_token.public_key(label)
    assert pki.root == dev_pki.root and pki.seal == dev_pki.seal


def test_missing_file_is_a_clear_error(bridge_config: BridgeConfig) -> None:
    (bridge_config.path(bridge_config.pki.dir) / ROOT_CERTIFICATE).unlink()

    with pytest.raises(
        PkiError, match=r"root-ca\.pem is missing; run 'kiosk bridge init'"
    ):
        load_dev_pki(bridge_config)


def test_revocations_are_recorded_once(bridge_config: BridgeConfig) -> None:
    first = revoke_certificate(bridge_config, 0x1234, "key_compromise")
    again = revoke_certificate(bridge_config, 0x1234, "superseded")
    other = revoke_certificate(bridge_config, 99, x509.ReasonFlags.affiliation_changed)

    path = bridge_config.path(bridge_config.pki.dir) / REVOCATIONS
    assert load_revocations(path) == {0x1234: first, 99: other}
    assert again == first
    assert first.reason is x509.ReasonFlags.key_compromise
    assert abs(first.revoked_at - datetime.now(UTC)) < timedelta(minutes=1)


def test_unknown_revocation_reason_is_refused(bridge_config: BridgeConfig) -> None:
    with pytest.raises(PkiError, match="unknown revocation reason 'lost'"):
        revoke_certificate(bridge_config, 1, "lost")


def test_init_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    label = unique_label("init")
    config_file = write_config(tmp_path, f'[hsm]\ntoken_label = "{label}"\n')
    runner = CliRunner()

    first = runner.invoke(init_command, ["--config", str(config_file)])
    assert first.exit_code == 0, first.output
    state = init_state(config_file)
    second = runner.invoke(init_command, ["--config", str(config_file)])

    assert second.exit_code == 0, second.output
    assert "created HSM token" in first.output
    assert "created certificate signing.pem" in first.output
    assert "created" not in second.output
    assert "found HSM token" in second.output
    assert init_state(config_file) == state
    secrets = tmp_path / "var/bridge/secrets"
    for name in ("hsm-pin", "hsm-so-pin"):
        assert stat.S_IMODE((secrets / name).stat().st_mode) == 0o600


def test_init_uses_a_configured_pin(tmp_path: Path, bridge_base: BridgeBase) -> None:
    label = unique_label("init")
    config_file = write_config(
        tmp_path,
        f'data_dir = "{tmp_path / "data"}"\n[hsm]\ntoken_label = "{label}"\n'
        f'pin = "configured-pin"\nsofthsm_conf = "{bridge_base.softhsm_conf}"\n',
    )

    result = CliRunner().invoke(init_command, ["--config", str(config_file)])

    assert result.exit_code == 0, result.output
    assert not (tmp_path / "data/secrets/hsm-pin").exists()
    token = HsmToken(SOFTHSM_MODULE, label, "configured-pin", bridge_base.softhsm_conf)
    with token:
        assert token.has_private_key("office-signing")


def write_config(directory: Path, text: str) -> Path:
    """Write a bridge configuration file."""
    path = directory / "bridge.toml"
    path.write_text(text, encoding="utf-8")
    return path


def init_state(config_file: Path) -> dict[str, object]:
    """Return the files and token keys that init made, to compare runs."""
    config = load_bridge_config(config_file)
    files = {
        str(p.relative_to(config.data_dir)): p.read_bytes()
        for p in sorted(config.data_dir.rglob("*"))
        if p.is_file() and "softhsm-tokens" not in p.parts
    }
    with open_token(config) as token:
        keys = {
            label: token.public_key(label)
            for label in (config.hsm.signing_key_label, config.hsm.seal_key_label)
        }
    return {"files": files, "keys": keys}
