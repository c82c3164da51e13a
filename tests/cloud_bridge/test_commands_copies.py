"""``kiosk copy make|revoke`` and ``kiosk verify`` as an operator runs them."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import uvicorn
from click.testing import CliRunner, Result

from cloud_bridge.config import BridgeConfig
from cloud_bridge.context import Bridge
from cloud_bridge.http.app import create_app
from cloud_bridge.trust_services import RunningTrustServices
from kiosk.cli import cli
from tests.cloud_bridge.samples import jpeg_bytes, scan_page
from tests.conftest import free_port
from tests.models.test_qr import phone_photo


def write_config(config: BridgeConfig, path: Path) -> Path:
    """Write ``config`` as the TOML file an operator would keep."""
    hsm = config.hsm
    assert hsm.pin is not None
    pin_file = path.parent / "hsm-pin"
    pin_file.write_text(hsm.pin.get_secret_value(), encoding="utf-8")
    path.write_text(
        f'data_dir = "{config.data_dir}"\n'
        "[database]\n"
        f'url = "{config.database.url}"\n'
        "[hsm]\n"
        f'module = "{hsm.module}"\n'
        f'softhsm_conf = "{hsm.softhsm_conf}"\n'
        f'token_label = "{hsm.token_label}"\n'
        f'pin_file = "{pin_file}"\n'
        "[pki]\n"
        f'dir = "{config.pki.dir}"\n'
        f'revocation_url = "{config.pki.revocation_url}"\n'
        "[timestamp]\n"
        f'url = "{config.timestamp.url}"\n',
        encoding="utf-8",
    )
    return path


def kiosk(*args: str) -> Result:
    """Run the ``kiosk`` command line in this process."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def config_file(
    bridge_config: BridgeConfig, trust_services: RunningTrustServices, tmp_path: Path
) -> Path:
    """A configuration file for the test's bridge, its trust services running."""
    return write_config(bridge_config, tmp_path / "bridge.toml")


@pytest.fixture
def made(config_file: Path, tmp_path: Path) -> dict[str, object]:
    """The JSON summary of a copy made with ``kiosk copy make``."""
    pages = []
    for seed in (1, 2):
        page = tmp_path / f"page{seed}.jpg"
        page.write_bytes(jpeg_bytes(scan_page(seed=seed)))
        pages.append(str(page))
    out = tmp_path / "copy.pdf"
    result = kiosk(
        "copy", "make", *pages, "--out", str(out), "--type", "diploma",
        "--config", str(config_file), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


@pytest.fixture
def bridge_url(bridge_config: BridgeConfig) -> Iterator[str]:
    """The bridge's HTTP server, running in a thread on a free port."""
    port = free_port()
    bridge = Bridge(bridge_config)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(bridge), host="127.0.0.1", port=port, log_level="error"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(url + "/healthz", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(timeout=10)
    bridge.close()


def test_copy_make_writes_a_signed_copy(made: dict[str, object]) -> None:
    assert made["cert_number"] == 1
    assert made["pages"] == 2
    assert Path(str(made["pdf"])).read_bytes()[:5] == b"%PDF-"
    assert len(str(made["access_code"])) == 9


def test_verify_exit_status_follows_the_verdict(
    made: dict[str, object], config_file: Path, tmp_path: Path
) -> None:
    pdf = Path(str(made["pdf"]))
    good = kiosk("verify", str(pdf), "--offline", "--config", str(config_file))
    data = bytearray(pdf.read_bytes())
    data[len(data) // 4] ^= 0x01
    changed = tmp_path / "changed.pdf"
    changed.write_bytes(bytes(data))
    bad = kiosk(
        "verify", str(changed), "--offline", "--json", "--config", str(config_file)
    )

    assert good.exit_code == 0, good.output
    assert "VALID" in good.output
    assert bad.exit_code == 1
    assert json.loads(bad.stdout)["valid"] is False


def test_verify_asks_the_bridge_and_sees_a_revocation(
    made: dict[str, object], config_file: Path, bridge_url: str
) -> None:
    pdf = str(made["pdf"])
    before = kiosk(
        "verify", pdf, "--bridge", bridge_url, "--json", "--config", str(config_file)
    )
    revoked = kiosk(
        "copy", "revoke", str(made["copy_id"]), "--reason", "cấp nhầm",
        "--by", "supervisor", "--config", str(config_file),
    )  # fmt: skip
    after = kiosk(
        "verify", pdf, "--bridge", bridge_url, "--json", "--config", str(config_file)
    )

    assert before.exit_code == 0, before.output
    assert json.loads(before.stdout)["status"] == "valid"
    assert json.loads(before.stdout)["archive_match"] is True
    assert revoked.exit_code == 0
    assert after.exit_code == 1
    assert json.loads(after.stdout)["status"] == "revoked"


def test_verify_qr_from_a_photo_of_the_printed_copy(
    made: dict[str, object], config_file: Path, tmp_path: Path
) -> None:
    subprocess.run(
        ["pdftoppm", "-r", "150", "-f", "2", "-l", "2", "-singlefile",
         str(made["pdf"]), str(tmp_path / "last")],
        check=True,
    )  # fmt: skip
    page = cv2.imread(str(tmp_path / "last.ppm"), cv2.IMREAD_COLOR)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(phone_photo(np.asarray(page, np.uint8), seed=21))

    result = kiosk("verify", "--qr", str(photo), "--json", "--config", str(config_file))

    assert result.exit_code == 0, result.output
    claims = json.loads(result.stdout)
    assert claims["copy_id"] == made["copy_id"]
    assert claims["cert_number"] == made["cert_number"]
    assert claims["page_count"] == 2


def test_verify_qr_without_a_code_says_so(config_file: Path, tmp_path: Path) -> None:
    blank = tmp_path / "blank.jpg"
    blank.write_bytes(jpeg_bytes(scan_page(seed=9)))

    result = kiosk("verify", "--qr", str(blank), "--config", str(config_file))

    assert result.exit_code == 1
    assert "no QR code" in result.output


def test_copy_make_refuses_an_unknown_type(config_file: Path, tmp_path: Path) -> None:
    page = tmp_path / "p.jpg"
    page.write_bytes(jpeg_bytes(scan_page(seed=4)))

    result = CliRunner().invoke(
        cli,
        ["copy", "make", str(page), "--out", str(tmp_path / "o.pdf"),
         "--type", "passport", "--config", str(config_file)],
    )  # fmt: skip

    assert result.exit_code != 0
    assert "choose one of" in str(result.exception) + result.output
    assert not (tmp_path / "o.pdf").exists()


def test_intake_without_a_client_certificate_says_what_to_set(
    config_file: Path, tmp_path: Path
) -> None:
    pem = tmp_path / "x.pem"
    pem.write_text("-", encoding="utf-8")

    result = kiosk_unchecked(
        "bridge", "intake", "--config", str(config_file),
        "--cert", str(pem), "--key", str(pem), "--client-ca", str(pem),
    )  # fmt: skip

    assert result.exit_code != 0
    assert "intake.cert_file" in result.output


def kiosk_unchecked(*args: str) -> Result:
    """Run the ``kiosk`` command line, keeping its errors as results."""
    return CliRunner().invoke(cli, list(args))
