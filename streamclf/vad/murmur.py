"""A second opinion over murmur: silero-vad's speech probability, for frames of any length.

Over babble or a TV, level and spectrum cannot tell a near talker from a swell of the distant
ones: both raise the voiced bands by as much. silero-vad, fed the same gain-normalised frames as
the frame detector, hears one voice in the first and mostly not in the second. The segmenter runs
this check only while the background is murmur, so it costs nothing elsewhere.
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import StartupError
from .silero import SUPPORTED_RATES, SileroDetector

log = logging.getLogger(__name__)


class MurmurCheck:
    """The latest speech probability of silero-vad over the frames pushed so far."""

    def __init__(self, sample_rate: int, reset_after_s: float) -> None:
        self._model = SileroDetector(sample_rate, threshold=0.5, reset_after_s=reset_after_s)
        self._pending = np.zeros(self._model.frame_samples, dtype=np.float32)
        self._fill = 0
        self.probability = 0.0
        """Of the last complete model frame (32 ms at 16 kHz); 0 before the first."""

    def push(self, frame: np.ndarray) -> None:
        """Take one frame of gain-normalised audio; runs the model on each complete model frame."""
        pos = 0
        while pos < len(frame):
            take = min(len(frame) - pos, len(self._pending) - self._fill)
            self._pending[self._fill : self._fill + take] = frame[pos : pos + take]
            self._fill += take
            pos += take
            if self._fill == len(self._pending):
                self._model.is_speech(self._pending)
                self.probability = self._model.probability
                self._fill = 0

    def reset(self) -> None:
        self._model.reset()
        self._fill = 0
        self.probability = 0.0


def make_murmur_check(sample_rate: int, reset_after_s: float) -> MurmurCheck | None:
    """The check for ``vad.murmur_check``; None (with a warning) at a rate silero-vad cannot take."""
    if sample_rate not in SUPPORTED_RATES:
        log.warning("vad: no murmur check at %d Hz (silero-vad takes 8000 or 16000 Hz)", sample_rate)
        return None
    try:
        return MurmurCheck(sample_rate, reset_after_s)
    except StartupError:
        raise StartupError(
            "vad.murmur_check needs silero-vad and onnxruntime: pip install 'streamclf[silero]', "
            "or set vad.murmur_check = false"
        ) from None
