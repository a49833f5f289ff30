"""Playing a clip in `review` through sounddevice, in the background while a key is awaited.

Review without sound still works: when playback fails (no output device, no PortAudio) the player
logs one warning line and stays silent for the rest of the session.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class Player:
    """Plays one clip at a time; a new clip or :meth:`stop` cuts the one playing."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._sd: Any = None

    def play(self, audio: np.ndarray, rate: int) -> None:
        if not self.enabled:
            return
        try:
            sd = self._sounddevice()
        except (ImportError, OSError) as exc:  # no PortAudio library
            self._off(exc)
            return
        try:
            sd.stop()
            sd.play(audio, rate)
        except (sd.PortAudioError, OSError, ValueError) as exc:
            self._off(exc)

    def stop(self) -> None:
        if self._sd is not None:
            with contextlib.suppress(Exception):  # nothing to report: the next play reports it
                self._sd.stop()

    def _sounddevice(self) -> Any:
        if self._sd is None:
            import sounddevice

            self._sd = sounddevice
        return self._sd

    def _off(self, exc: BaseException) -> None:
        why = (str(exc).splitlines() or [type(exc).__name__])[0]
        log.warning("playback off: %s (review goes on without sound)", why)
        self.enabled = False
