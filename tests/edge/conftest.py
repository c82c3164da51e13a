"""Fixtures for the agent: a controller on simulated cameras and a store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.camera import Camera, CaptureMode
from drivers.config import DevicesConfig
from drivers.devices import Devices, build_devices
from edge.config import AgentConfig
from edge.face import SimulatedFaceChecker
from edge.printing import CopyPrinter
from edge.simulation import SceneCameraBackend, write_media
from edge.store import AgentStore
from edge.visit import Devices as VisitDevices
from edge.visit import VisitController
from tests.cloud_bridge.conftest import (  # noqa: F401  (fixtures)
    _session_token,
    bridge_base,
    bridge_config,
    trust_services,
)


def agent_config(tmp_path: Path, **overrides: Any) -> AgentConfig:
    """Return an agent configuration rooted in ``tmp_path``, all simulated."""
    data: dict[str, Any] = {
        "data_dir": str(tmp_path / "kiosk"),
        "office_code": "PHUONG-MAU",
        "session": {"auto_capture": False},
        "devices": {
            "document_printer": {"output_dir": str(tmp_path / "printed")},
            "code_reader": {"backend": "simulated"},
        },
    }
    data.update(overrides)
    return AgentConfig.model_validate(data)


class Rig:
    """A controller on simulated cameras, with its store and devices."""

    def __init__(self, tmp_path: Path, fetch: Any = None) -> None:
        self.config = agent_config(tmp_path)
        self.media = write_media(tmp_path / "media")
        self.devices: Devices = build_devices(
            DevicesConfig.model_validate(self.config.devices.model_dump(mode="json"))
        )
        self.scenes = {
            "document": SceneCameraBackend(
                {k: self.media[k] for k in ("idle", "card", "pages")}, fps=20
            ),
            "face": SceneCameraBackend(
                {k: self.media[k] for k in ("idle", "face")}, fps=20
            ),
        }
        self.cameras = {
            "document": Camera("camera.document", self.scenes["document"]),
            "face": Camera("camera.face", self.scenes["face"], CaptureMode.FACE),
        }
        for camera in self.cameras.values():
            camera.start()
        self.store = AgentStore(tmp_path / "agent.db")
        self.printer = CopyPrinter(
            self.devices.document_printer,
            self.devices.receipt_printer,
            fetch or (lambda digest: b""),
            self.config.lookup_url,
        )
        self.controller = self.make_controller()

    def make_controller(self) -> VisitController:
        """Return a controller on this rig (as after a restart)."""
        return VisitController(
            self.config,
            self.store,
            VisitDevices(
                self.cameras["document"],
                self.cameras["face"],
                lambda camera, scene: self.scenes[camera].show(scene),
            ),
            SimulatedFaceChecker(),
            self.printer,
        )

    def close(self) -> None:
        """Stop the cameras and devices."""
        for camera in self.cameras.values():
            camera.stop()
        self.devices.close()
        self.store.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    """A visit controller on simulated devices."""
    built = Rig(tmp_path)
    yield built
    built.close()
