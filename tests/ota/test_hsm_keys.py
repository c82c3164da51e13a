"""Online TUF keys on a SoftHSM2 token: signing, verifying, re-signing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi import FastAPI

from cloud_bridge.config import BridgeConfig
from cloud_bridge.hsm import HsmToken
from cloud_bridge.ota_routes import create_ota_router
from cloud_bridge.store import migrations
from cloud_bridge.store.engine import create_store_engine
from ota.cli import ota_group
from ota.config import OtaRepositorySection
from ota.director import Director
from ota.errors import KeyFileError
from ota.repository import init_repository, open_repository
from tests.cloud_bridge.conftest import TEST_PIN, unique_label
from tests.ota.conftest import Office, make_kiosk

pytestmark = pytest.mark.hsm


def hsm_office(root: Path, token: HsmToken, settings: OtaRepositorySection) -> Office:
    """Return an office whose online keys are on ``token`` per ``settings``."""
    repository = init_repository(
        root / "repo", root / "root-keys", root / "keys", settings, token=token
    )
    engine = create_store_engine(f"sqlite:///{root / 'bridge.db'}")
    migrations.migrate(engine)
    director = Director(engine, settings)
    app = FastAPI()
    app.include_router(create_ota_router(root / "repo", director))
    (root / "work").mkdir()
    return Office(settings, repository, director, app, root, root / "work")


def root_roles(office: Office) -> dict[str, list[str]]:
    """Return each role's key types as the trusted root lists them."""
    root = json.loads(office.repository.root_bytes())["signed"]
    return {
        role: [root["keys"][keyid]["keytype"] for keyid in spec["keyids"]]
        for role, spec in root["roles"].items()
    }


def test_kiosk_installs_metadata_signed_on_the_token(
    hsm_token: HsmToken, tmp_path: Path
) -> None:
    settings = OtaRepositorySection(
        key_backend="pkcs11",
        hsm_key_prefix=unique_label("ota"),
        targets_keys=2,
        targets_threshold=2,
    )
    office = hsm_office(tmp_path / "office", hsm_token, settings)
    try:
        kiosk = make_kiosk(office, tmp_path / "kiosk")

        outcome = kiosk.client.install(office.publish("2.0"))

        assert outcome.state == "installed", outcome.error
        assert root_roles(office) == {
            "root": ["ed25519"],
            "targets": ["ecdsa", "ecdsa"],
            "snapshot": ["ecdsa"],
            "timestamp": ["ecdsa"],
        }
        assert not list((tmp_path / "office" / "keys").glob("*.pem"))
        reopened = open_repository(
            tmp_path / "office" / "repo",
            tmp_path / "office" / "keys",
            settings,
            hsm_token,
        )
        assert reopened.resign_timestamp() == 3
        kiosk.client.refresh()
        stored = kiosk.settings.ota_dir / "tuf" / "timestamp.json"
        assert json.loads(stored.read_bytes())["signed"]["version"] == 3
    finally:
        office.director.engine.dispose()


def test_only_the_configured_roles_move_to_the_token(
    hsm_token: HsmToken, tmp_path: Path
) -> None:
    settings = OtaRepositorySection(
        key_backend="pkcs11",
        hsm_roles=["timestamp", "snapshot"],
        hsm_key_prefix=unique_label("ota"),
    )
    office = hsm_office(tmp_path / "office", hsm_token, settings)
    try:
        kiosk = make_kiosk(office, tmp_path / "kiosk")

        assert kiosk.client.install(office.publish("2.0")).state == "installed"
        roles = root_roles(office)
        assert roles["targets"] == ["ed25519"]
        assert roles["timestamp"] == roles["snapshot"] == ["ecdsa"]
        files = sorted(p.name for p in (tmp_path / "office" / "keys").glob("*.pem"))
        assert files == ["targets-1.pem"]
    finally:
        office.director.engine.dispose()


def test_hsm_backend_without_a_token_or_key_is_refused(
    hsm_token: HsmToken, tmp_path: Path
) -> None:
    settings = OtaRepositorySection(
        key_backend="pkcs11", hsm_key_prefix=unique_label("ota")
    )
    with pytest.raises(KeyFileError, match="no token"):
        init_repository(tmp_path / "r", tmp_path / "rk", tmp_path / "k", settings)

    init_repository(
        tmp_path / "r", tmp_path / "rk", tmp_path / "k", settings, token=hsm_token
    )
    other = settings.model_copy(update={"hsm_key_prefix": unique_label("gone")})
    with pytest.raises(KeyFileError, match="not on the token"):
        open_repository(tmp_path / "r", tmp_path / "k", other, hsm_token)


def test_commands_sign_with_the_token(
    bridge_config: BridgeConfig, tmp_path: Path
) -> None:
    hsm = bridge_config.hsm
    config = tmp_path / "bridge.toml"
    config.write_text(
        f'data_dir = "{bridge_config.data_dir}"\n'
        "[hsm]\n"
        f'module = "{hsm.module}"\n'
        f'softhsm_conf = "{hsm.softhsm_conf}"\n'
        f'token_label = "{hsm.token_label}"\n'
        f'pin = "{TEST_PIN}"\n'
        "[ota]\n"
        'key_backend = "pkcs11"\n'
        f'hsm_key_prefix = "{unique_label("ota")}"\n',
        encoding="utf-8",
    )
    bridge_config.data_dir.mkdir(parents=True, exist_ok=True)
    runner = CliRunner()

    init = runner.invoke(ota_group, ["init", "--config", str(config)])
    resign = runner.invoke(ota_group, ["resign-timestamp", "--config", str(config)])

    assert init.exit_code == 0, init.output
    assert resign.exit_code == 0, resign.output
    assert "timestamp version 2 signed" in resign.output
    assert not (bridge_config.data_dir / "secrets" / "ota-keys").exists()
