"""Two model slots (A and B), an atomic switch between them, and the state file.

Layout under the update directory::

    slots/a/, slots/b/   each a complete unpacked bundle (bundle.toml, models/)
    current -> slots/a   the slot the kiosk loads models from
    state.json           the pending switch (if on probation) and failed targets

A slot is written under a temporary name and renamed into place, so an
inactive slot is complete or absent. The switch writes ``current.new`` and
renames it over ``current``; both renames are atomic and the directory is
fsynced, so after a power cut ``current`` names one complete slot.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ota.errors import InstallError

logger = logging.getLogger(__name__)

SLOTS = ("a", "b")


@dataclass
class Pending:
    """A switch on probation: the new slot, the one to return to, and the target."""

    slot: str
    previous: str
    target: str
    switched_at: float


@dataclass
class SlotState:
    """What survives restarts: the switch on probation and refused targets."""

    pending: Pending | None = None
    failed_targets: list[str] = field(default_factory=list)
    installed_sequence: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SlotState:
        """Rebuild a state from its JSON form."""
        pending = data.get("pending")
        return cls(
            pending=Pending(**pending) if pending else None,
            failed_targets=list(data.get("failed_targets", [])),
            installed_sequence=int(data.get("installed_sequence", 0)),
        )


class SlotStore:
    """Manage the slots, the ``current`` link and the state file of a kiosk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.current_link = root / "current"
        self.state_path = root / "state.json"

    def slot_dir(self, slot: str) -> Path:
        """Return the directory of ``slot``."""
        return self.root / "slots" / slot

    def current_slot(self) -> str | None:
        """Return the slot ``current`` points to, or None before the first install."""
        try:
            return self.current_link.readlink().name
        except FileNotFoundError:
            return None

    def current_dir(self) -> Path:
        """Return the directory the kiosk loads models from.

        Raises:
            InstallError: no slot has been installed yet.
        """
        slot = self.current_slot()
        if slot is None:
            raise InstallError(
                f"no model slot is installed in {self.root}; run 'kiosk ota seed'"
            )
        return self.slot_dir(slot)

    def inactive_slot(self) -> str:
        """Return the slot that is not current."""
        return "b" if self.current_slot() == "a" else "a"

    def prepare(self, slot: str) -> Path:
        """Empty ``slot`` and return a fresh temporary directory to unpack into."""
        if slot == self.current_slot():
            raise InstallError(f"slot {slot} is in use; refusing to overwrite it")
        staging = self.root / "slots" / f".{slot}.new"
        for path in (staging, self.slot_dir(slot)):
            shutil.rmtree(path, ignore_errors=True)
        staging.mkdir(parents=True)
        return staging

    def commit(self, staging: Path, slot: str) -> Path:
        """Rename the unpacked ``staging`` directory into place as ``slot``."""
        target = self.slot_dir(slot)
        staging.replace(target)
        fsync_dir(target.parent)
        return target

    def switch(self, slot: str) -> None:
        """Point ``current`` at ``slot`` atomically and durably."""
        if not (self.slot_dir(slot) / "bundle.toml").is_file():
            raise InstallError(f"slot {slot} is not complete; refusing to switch")
        link = self.root / "current.new"
        link.unlink(missing_ok=True)
        link.symlink_to(Path("slots") / slot)
        link.replace(self.current_link)
        fsync_dir(self.root)
        logger.info("switched the models to slot %s", slot)

    def read_state(self) -> SlotState:
        """Return the saved state (empty when there is none)."""
        try:
            return SlotState.from_json(json.loads(self.state_path.read_bytes()))
        except FileNotFoundError:
            return SlotState()
        except (ValueError, TypeError) as exc:
            logger.error(
                "update state %s is corrupt (%s); starting afresh", self.state_path, exc
            )
            return SlotState()

    def write_state(self, state: SlotState) -> None:
        """Save ``state`` atomically and durably."""
        self.root.mkdir(parents=True, exist_ok=True)
        partial = self.root / "state.json.new"
        with partial.open("w", encoding="utf-8") as handle:
            json.dump(asdict(state), handle)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(self.state_path)
        fsync_dir(self.root)


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries to disk, so renames in it survive a power cut."""
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
