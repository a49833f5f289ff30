"""The automatic gain in front of the voice detectors.

Sound that stands out of the noise is brought to ``target_dbfs`` before the detector hears it, so a
quiet talker at -50 dBFS looks like a normal one to webrtcvad. The gain follows the loudest recent
frame and forgets it at ``gain_release_db_per_s``: a word's syllables and fading end reach the
detector with their own rise and fall (silero-vad hears speech in that contour), and a talker who
goes on quietly after a loud word is brought up within a second or two. Frames near the noise floor
keep their distance under the target: the background is never amplified to speech level.
"""

from __future__ import annotations

import numpy as np

from .tuning import Tuning


class AutoGain:
    def __init__(self, tuning: Tuning, frames_per_s: float, enabled: bool = True) -> None:
        self._tuning = tuning
        self._enabled = enabled
        self._release = tuning.gain_release_db_per_s / frames_per_s
        self.reset()

    def reset(self) -> None:
        self._reference_db = -np.inf  # the loudest recent frame, forgotten at the release rate

    def step(self, energy_db: float, floor_db: float) -> float:
        """The linear gain for a frame at ``energy_db`` over a noise floor at ``floor_db``."""
        if not self._enabled:
            return 1.0
        t = self._tuning
        self._reference_db = max(energy_db, self._reference_db - self._release)
        reference = max(self._reference_db, floor_db + t.agc_floor_offset_db)
        gain_db = min(max(t.target_dbfs - reference, t.min_gain_db), t.max_gain_db)
        return float(10.0 ** (gain_db / 20.0))
