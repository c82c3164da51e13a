"""Fixtures for the bridge: a SoftHSM2 token, the development PKI, trust services.

The token (with its keys and certificates) is made once per test session,
in a token directory of its own, under a unique label. Each test gets its
own data directory and its own copy of the PKI directory, so revocations
and databases never leak from one test to the next; keys a test generates
on the shared token should carry unique labels (see :func:`unique_label`).

The PKI's certificates name the trust services at one port picked for the
session; :func:`trust_services` serves them there during a test.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cloud_bridge.config import BridgeConfig
from cloud_bridge.context import Bridge
from cloud_bridge.hsm import (
    HsmToken,
    create_softhsm_token,
    open_token,
    write_softhsm_conf,
)
from cloud_bridge.pki import DevPki, create_dev_pki, load_dev_pki
from cloud_bridge.trust_services import RunningTrustServices, serve_trust_services
from tests.conftest import free_port

SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
TEST_PIN = "test-user-pin"
TEST_SO_PIN = "test-so-pin"


def unique_label(prefix: str) -> str:
    """Return a token or key label no other test uses (at most 32 characters)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class BridgeBase:
    """What the session shares: a token store, a token and a PKI directory."""

    softhsm_conf: Path
    token_label: str
    pki_dir: Path
    port: int

    def config(self, data_dir: Path, pki_dir: Path | None = None) -> BridgeConfig:
        """Return a configuration using the shared token, rooted at data_dir."""
        url = f"http://127.0.0.1:{self.port}"
        data: dict[str, Any] = {
            "data_dir": str(data_dir),
            "database": {"url": "sqlite:///bridge.db"},
            "hsm": {
                "module": str(SOFTHSM_MODULE),
                "softhsm_conf": str(self.softhsm_conf),
                "token_label": self.token_label,
                "pin": TEST_PIN,
                "pin_file": None,
            },
            "pki": {"dir": str(pki_dir or self.pki_dir), "revocation_url": url},
            "timestamp": {"url": f"{url}/tsa"},
        }
        return BridgeConfig.model_validate(data)


@pytest.fixture(scope="session")
def bridge_base(tmp_path_factory: pytest.TempPathFactory) -> BridgeBase:
    """A token with the office's keys and the development PKI, made once."""
    if not SOFTHSM_MODULE.exists() or shutil.which("softhsm2-util") is None:
        pytest.fail("SoftHSM2 is not installed; run make test, which installs it")
    root = tmp_path_factory.mktemp("bridge-base")
    conf = root / "softhsm2.conf"
    write_softhsm_conf(conf, root / "tokens")
    base = BridgeBase(conf, unique_label("test"), root / "pki", free_port())
    create_softhsm_token(conf, base.token_label, TEST_PIN, TEST_SO_PIN)
    config = base.config(root / "data")
    with open_token(config) as token:
        token.generate_ec_key(config.hsm.signing_key_label)
        token.generate_ec_key(config.hsm.seal_key_label)
        create_dev_pki(config, token)
    return base


@pytest.fixture(scope="session")
def _session_token(
    bridge_base: BridgeBase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HsmToken]:
    config = bridge_base.config(tmp_path_factory.mktemp("token-user"))
    with open_token(config) as token:
        yield token


@pytest.fixture
def bridge_config(bridge_base: BridgeBase, tmp_path: Path) -> BridgeConfig:
    """A configuration with a fresh data directory and its own PKI copy.

    The token is the session's; the database is SQLite in the data
    directory; the trust service URLs point at the session's port.
    """
    data_dir = tmp_path / "bridge"
    pki_dir = data_dir / "pki"
    shutil.copytree(bridge_base.pki_dir, pki_dir)
    return bridge_base.config(data_dir, pki_dir)


@pytest.fixture
def hsm_token(_session_token: HsmToken) -> HsmToken:
    """The logged-in token holding the signing and seal keys and certificates."""
    return _session_token


@pytest.fixture
def dev_pki(bridge_config: BridgeConfig) -> DevPki:
    """The development PKI of ``bridge_config``."""
    return load_dev_pki(bridge_config)


@pytest.fixture
def trust_services(bridge_config: BridgeConfig) -> Iterator[RunningTrustServices]:
    """The TSA, CRL and OCSP services for ``bridge_config``, during one test."""
    with serve_trust_services(bridge_config) as running:
        yield running


@pytest.fixture
def bridge(
    bridge_config: BridgeConfig, trust_services: RunningTrustServices
) -> Iterator[Bridge]:
    """A bridge with its token, trust services and a fresh SQLite database.

    Test files that need another kind of bridge define their own.
    """
    bridge = Bridge(bridge_config)
    yield bridge
    bridge.close()
