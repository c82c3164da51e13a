"""Turn the kiosk's screen on when someone walks up.

:class:`CommandScreen` runs a configured command, ``xset dpms force on``
under X11 by default (``wlr-randr --output HDMI-A-1 --on`` or ``vcgencmd
display_power 1`` elsewhere); :class:`BacklightScreen` clears the
backlight's ``bl_power`` in sysfs for DSI panels. Both say whether it
worked and never raise: a screen that stays dark is logged, the visit goes
on.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

logger = logging.getLogger(__name__)

DEFAULT_WAKE_COMMAND = ("xset", "dpms", "force", "on")


class ScreenPower(Protocol):
    """Switch the screen on."""

    def wake(self) -> bool:
        """Turn the screen on; True when it worked."""


class CommandScreen:
    """Wake the screen with a command."""

    def __init__(
        self, command: Sequence[str] = DEFAULT_WAKE_COMMAND, timeout_s: float = 5.0
    ) -> None:
        self.command = list(command)
        self.timeout_s = timeout_s

    def wake(self) -> bool:
        """Run the command; log why it failed."""
        if not self.command:
            return False
        try:
            subprocess.run(
                self.command,
                capture_output=True,
                timeout=self.timeout_s,
                check=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            logger.warning(
                "the screen did not wake with %s: %s; check the screen wake "
                "command in the agent's configuration",
                self.command[0],
                exc,
            )
            return False
        logger.debug("screen woken")
        return True


class BacklightScreen:
    """Wake a panel by writing 0 (on) to its backlight's ``bl_power``."""

    def __init__(self, device: Path) -> None:
        self.path = device / "bl_power"

    def wake(self) -> bool:
        """Write the power state; log why it failed."""
        try:
            self.path.write_text("0\n")
        except OSError as exc:
            logger.warning("the backlight %s did not wake: %s", self.path, exc)
            return False
        return True
