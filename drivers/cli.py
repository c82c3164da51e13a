"""``kiosk devices``: list the devices with their health, and exercise one."""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path

import click
from PIL import Image

from drivers.config import load_devices_config
from drivers.devices import Devices, build_devices
from drivers.health import HealthState
from drivers.receipt import Receipt

logger = logging.getLogger(__name__)

CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Devices TOML file (default: every device simulated).",
)


@click.group()
def devices() -> None:
    """Check and exercise the kiosk's devices."""


def _open(config_path: Path | None) -> Devices:
    built = build_devices(load_devices_config(config_path))
    built.start()
    return built


def _settle(built: Devices, timeout: float = 3.0) -> None:
    """Give cameras time to deliver a first frame before reporting."""
    deadline = time.monotonic() + timeout
    for camera in built.cameras.values():
        while camera.latest_frame() is None and time.monotonic() < deadline:
            if camera.health().reason.value == "camera gone":
                break
            time.sleep(0.05)


@devices.command()
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_context
def check(ctx: click.Context, config_path: Path | None, as_json: bool) -> None:
    """List the configured devices, their backends and health."""
    built = _open(config_path)
    try:
        _settle(built)
        report = built.refresh()
        rows = []
        for name, device in built.named().items():
            health = report[name]
            rows.append(
                {
                    "name": name,
                    "backend": built.backends.get(name, ""),
                    **health.as_dict(),
                    "capabilities": sorted(c.value for c in device.capabilities),
                }
            )
    finally:
        built.close()
    if as_json:
        click.echo(json.dumps({"devices": rows}, ensure_ascii=False, indent=2))
    else:
        for row in rows:
            reason = f" ({row['reason']})" if row["reason"] else ""
            click.echo(f"{row['name']:<18} {row['backend']:<10} {row['state']}{reason}")
    if any(row["state"] == HealthState.FAILED.value for row in rows):
        ctx.exit(1)


@devices.command()
@CONFIG_OPTION
@click.argument("name")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(),
    show_default=True,
    help="Where a camera test writes its still image.",
)
@click.option(
    "--seconds",
    type=click.FloatRange(0, 300),
    default=10.0,
    show_default=True,
    help="How long an input or code reader test waits for something to happen.",
)
def test(config_path: Path | None, name: str, output: Path, seconds: float) -> None:
    """Exercise one device: capture, print a test page or receipt, blink, read.

    NAME is a device from 'kiosk devices check' (camera.document,
    receipt_printer, document_printer, code_reader) or a GPIO pin name.
    """
    built = _open(config_path)
    try:
        click.echo(_exercise(built, name, output, seconds))
    finally:
        built.close()


def _exercise(built: Devices, name: str, output: Path, seconds: float) -> str:
    if name.startswith("camera."):
        camera = built.cameras.get(name.removeprefix("camera."))
        if camera is None:
            raise click.BadParameter(f"no camera {name}", param_hint="NAME")
        frame = camera.capture_still()
        output.mkdir(parents=True, exist_ok=True)
        path = output / f"{name}.jpg"
        Image.fromarray(frame.image, "RGB").save(path, "JPEG", quality=90)
        return f"{name}: captured {frame.size[0]}x{frame.size[1]} to {path}"
    if name == "receipt_printer":
        receipt = Receipt(
            "TEST-0001",
            "000000",
            ("Phiếu thử máy in", "Kiểm tra tiếng Việt: ắ ề ỗ ự ỹ"),
            "TEST-0001",
        )
        seconds = built.receipt_printer.print_receipt(receipt)
        return f"{name}: test receipt printed in {seconds:.2f} s"
    if name == "document_printer":
        job = built.document_printer.print_pdf(_test_page(), 1, "kiosk test page")
        status = job.wait()
        return f"{name}: test page job {job.id} {status.state.value}"
    if name == "code_reader":
        code = built.code_reader.read(seconds)
        if code is None:
            return f"{name}: nothing read in {seconds:g} s"
        return f"{name}: read {code!r}"
    if name in built.pins.outputs:
        built.pins.output(name).blink(3)
        return f"{name}: blinked 3 times"
    if name in built.pins.inputs:
        pin = built.pins.input(name)
        level = pin.value
        click.echo(f"{name}: level {int(level)}; change it within {seconds:g} s")
        if pin.wait_for(not level, seconds):
            return f"{name}: changed to {int(not level)}"
        return f"{name}: no change in {seconds:g} s"
    raise click.BadParameter(
        f"no device named {name!r}; see 'kiosk devices check'", param_hint="NAME"
    )


def _test_page() -> bytes:
    page = Image.new("RGB", (1240, 1754), "white")
    buffer = io.BytesIO()
    page.save(buffer, "PDF", resolution=150.0)
    return buffer.getvalue()
