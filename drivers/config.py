"""The devices' configuration: which backend drives each device, and how.

The embedded defaults simulate every device, so the agent runs on a laptop
or CI machine unchanged; a kiosk's TOML file names its real backends. The
agent's configuration embeds :class:`DevicesConfig` as its ``devices``
section; ``kiosk devices`` loads it alone with :func:`load_devices_config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from kiosk.settings import Section, load_settings

ENV_PREFIX = "KIOSK_DEVICES"
DEFAULT_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


class CameraSection(Section):
    """One camera: the document camera or the face camera."""

    backend: Literal["simulated", "picamera2", "v4l2"] = Field(
        "simulated", description="picamera2 (Raspberry Pi), v4l2 (USB) or simulated."
    )
    role: Literal["document", "face"] = Field(
        "document", description="What the camera looks at; sets focus and exposure."
    )
    device: str = Field(
        "0",
        max_length=200,
        description="picamera2 camera index, or a V4L2 index or /dev/videoN path.",
    )
    preview_width: int = Field(640, ge=64, le=4096, description="Preview width.")
    preview_height: int = Field(480, ge=48, le=4096, description="Preview height.")
    still_width: int = Field(2592, ge=64, le=9600, description="Still width.")
    still_height: int = Field(1944, ge=48, le=7200, description="Still height.")
    fps: float = Field(15.0, gt=0, le=120, description="Preview frames per second.")
    stall_timeout_s: float = Field(
        2.0, gt=0, le=60, description="No frame for this long counts as a stall."
    )
    max_restarts: int = Field(
        3, ge=0, le=100, description="Restarts in a row before the camera is failed."
    )
    source: Path | None = Field(
        None,
        description="Simulated camera: an image file, or a directory of images "
        "played in name order (a face turning, for liveness). None: a test card.",
    )
    loop: bool = Field(True, description="Simulated camera: replay the sequence.")


class DocumentPrinterSection(Section):
    """The A4 printer that prints certified copies, through CUPS."""

    backend: Literal["simulated", "cups"] = Field(
        "simulated", description="cups, or simulated (writes PDFs to a directory)."
    )
    host: str = Field("127.0.0.1", max_length=253, description="CUPS server host.")
    port: int = Field(631, ge=1, le=65535, description="CUPS server port.")
    queue: str = Field(
        "kiosk-a4",
        pattern=r"^[A-Za-z0-9_.\-]{1,127}$",
        description="CUPS queue (printer) name.",
    )
    request_timeout_s: float = Field(
        10.0, gt=0, le=120, description="Timeout of one request to CUPS."
    )
    job_timeout_s: float = Field(
        300.0, gt=0, le=3600, description="Default time to wait for a job to finish."
    )
    poll_interval_s: float = Field(
        0.2, gt=0, le=10, description="How often a job's state is asked."
    )
    output_dir: Path = Field(
        Path("var/kiosk/printed"),
        description="Simulated printer: where printed PDFs are written.",
    )


class ReceiptPrinterSection(Section):
    """The ESC/POS receipt printer."""

    backend: Literal["simulated", "network", "usb", "serial"] = Field(
        "simulated",
        description="network (TCP 9100), usb, serial, or simulated (an in-process "
        "ESC/POS simulator on a local port).",
    )
    host: str = Field("127.0.0.1", max_length=253, description="Network printer.")
    port: int = Field(9100, ge=1, le=65535, description="Network printer port.")
    usb_vendor: int = Field(0x04B8, ge=0, le=0xFFFF, description="USB vendor id.")
    usb_product: int = Field(0x0202, ge=0, le=0xFFFF, description="USB product id.")
    serial_device: str = Field(
        "/dev/ttyUSB0", max_length=200, description="Serial printer's port."
    )
    baudrate: int = Field(
        19200, ge=1200, le=921600, description="Serial printer's line speed."
    )
    timeout_s: float = Field(
        5.0, gt=0, le=60, description="Timeout of each connect, write and read."
    )
    width_px: int = Field(
        512, ge=128, le=1024, description="Printable width in dots (80 mm: 512-576)."
    )
    font: Path = Field(DEFAULT_FONT, description="TrueType font with Vietnamese.")
    font_size: int = Field(24, ge=8, le=96, description="Text size in dots.")
    native_qr: bool = Field(
        True, description="Print QR codes with GS ( k; False sends an image."
    )
    qr_size: int = Field(6, ge=1, le=16, description="QR module size in dots.")
    attempts: int = Field(
        2, ge=1, le=10, description="Tries per receipt before it is reported failed."
    )


class InputPinSection(Section):
    """One GPIO input (presence sensor, lid or tray switch)."""

    line: int = Field(ge=0, le=1023, description="Line offset on the GPIO chip.")
    active_low: bool = Field(False, description="Logical 1 when the line is low.")
    bias: Literal["default", "pull_up", "pull_down", "disable"] = Field("default")
    debounce_ms: float = Field(
        30.0, ge=0, le=5000, description="A level must hold this long to count."
    )


class OutputPinSection(Section):
    """One GPIO output (status light, buzzer)."""

    line: int = Field(ge=0, le=1023, description="Line offset on the GPIO chip.")
    active_low: bool = Field(False, description="Drive low for logical 1.")
    initial: bool = Field(False, description="Logical level set when opened.")


def _default_inputs() -> dict[str, InputPinSection]:
    return {
        "presence": InputPinSection.model_validate({"line": 17}),
        "lid": InputPinSection.model_validate(
            {"line": 27, "active_low": True, "bias": "pull_up"}
        ),
        "headphones": InputPinSection.model_validate({"line": 24}),
    }


def _default_outputs() -> dict[str, OutputPinSection]:
    return {
        "light": OutputPinSection.model_validate({"line": 22}),
        "buzzer": OutputPinSection.model_validate({"line": 23}),
    }


class GpioSection(Section):
    """GPIO lines through the Linux character device, mapped by name."""

    backend: Literal["simulated", "periphery"] = Field(
        "simulated", description="periphery (/dev/gpiochipN) or simulated."
    )
    chip: str = Field("/dev/gpiochip0", max_length=200, description="GPIO chip.")
    inputs: dict[str, InputPinSection] = Field(
        default_factory=_default_inputs, description="Inputs by name."
    )
    outputs: dict[str, OutputPinSection] = Field(
        default_factory=_default_outputs, description="Outputs by name."
    )

    @model_validator(mode="after")
    def _check_lines(self) -> GpioSection:
        names = set(self.inputs) & set(self.outputs)
        if names:
            raise ValueError(f"pin names used twice: {sorted(names)}")
        lines = [pin.line for pin in self.inputs.values()]
        lines += [pin.line for pin in self.outputs.values()]
        if len(lines) != len(set(lines)):
            raise ValueError("two pins share one GPIO line")
        return self


class CodeReaderSection(Section):
    """Where QR and bar codes are read from."""

    backend: Literal["camera", "serial", "hid", "simulated"] = Field(
        "camera",
        description=(
            "camera (decode frames), serial (a scanner in serial/USB CDC mode), "
            "hid (a scanner in keyboard mode; ASCII codes only), simulated."
        ),
    )
    camera: str = Field(
        "document", max_length=64, description="Camera whose frames are decoded."
    )
    serial_device: str = Field(
        "/dev/ttyACM0", max_length=200, description="The serial scanner's port."
    )
    hid_device: str = Field(
        "/dev/input/by-id/usb-scanner-event-kbd",
        max_length=200,
        description="The keyboard-mode scanner's input event device.",
    )
    baudrate: int = Field(
        9600, ge=1200, le=921600, description="Serial scanner's line speed."
    )
    decode_interval_s: float = Field(
        0.2, gt=0, le=5, description="Camera reader: pause between decodes."
    )


def _default_cameras() -> dict[str, CameraSection]:
    return {
        "document": CameraSection.model_validate({"role": "document"}),
        "face": CameraSection.model_validate(
            {"role": "face", "still_width": 1280, "still_height": 960}
        ),
    }


class DevicesConfig(Section):
    """Every device of one kiosk (the agent embeds this as ``devices``)."""

    cameras: dict[str, CameraSection] = Field(
        default_factory=_default_cameras, description="Cameras by name."
    )
    document_printer: DocumentPrinterSection = Field(
        default_factory=DocumentPrinterSection
    )
    receipt_printer: ReceiptPrinterSection = Field(
        default_factory=ReceiptPrinterSection
    )
    gpio: GpioSection = Field(default_factory=GpioSection)
    code_reader: CodeReaderSection = Field(default_factory=CodeReaderSection)

    @model_validator(mode="after")
    def _check_code_camera(self) -> DevicesConfig:
        reader = self.code_reader
        if reader.backend == "camera" and reader.camera not in self.cameras:
            raise ValueError(
                f"code_reader.camera {reader.camera!r} is not one of the cameras "
                f"{sorted(self.cameras)}"
            )
        return self


def load_devices_config(path: Path | None = None) -> DevicesConfig:
    """Load the devices' configuration (all simulated when ``path`` is None)."""
    return load_settings(DevicesConfig, path, ENV_PREFIX)
