"""Speak screen text through espeak-ng, interruptibly, with volume steps.

Only the screen's instructions are spoken: callers pass text built from
the message catalogue, never the citizen's name, number or address, since
the loudspeaker is heard by everyone nearby.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from typing import Protocol

logger = logging.getLogger(__name__)

VOICES = {"vi": "vi", "en": "en"}
VOLUMES = (40, 70, 100, 130, 160)
DEFAULT_VOLUME = 2


class Speaker(Protocol):
    """Something that speaks text aloud."""

    def say(self, text: str, language: str, volume: int) -> None:
        """Start speaking ``text``, cutting off whatever was being said."""

    def stop(self) -> None:
        """Stop speaking."""


class EspeakSpeaker:
    """Speak with a command such as ``espeak-ng -v {voice} -a {volume}``."""

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None

    def say(self, text: str, language: str, volume: int) -> None:
        """Start speaking; the text goes on standard input, not the command line."""
        self.stop()
        args = [
            part.format(voice=VOICES.get(language, "vi"), volume=volume)
            for part in self.command
        ]
        try:
            process = subprocess.Popen(
                args,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            logger.warning("cannot speak with %s: %s", args[0], exc)
            return
        with self._lock:
            self._process = process
        if process.stdin is not None:
            try:
                process.stdin.write(text.encode("utf-8"))
                process.stdin.close()
            except OSError:
                logger.debug("speech was interrupted")

    def stop(self) -> None:
        """Interrupt the current speech."""
        with self._lock:
            process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            process.wait(timeout=2)


class RecordingSpeaker:
    """Keep what would be spoken (tests, and kiosks without audio)."""

    def __init__(self) -> None:
        self.spoken: list[tuple[str, str, int]] = []

    def say(self, text: str, language: str, volume: int) -> None:
        """Record the text."""
        self.spoken.append((text, language, volume))

    def stop(self) -> None:
        """Nothing to stop."""
