"""A streaming high-pass filter in front of level tracking and the voice detector.

Cheap sound cards and USB microphones add a DC offset, and mains wiring adds a 50 or 60 Hz hum.
Neither carries speech, but both count in a frame's level: a -40 dBFS offset alone hid a
-45 dBFS talker from the noise floor, and the gain that feeds webrtcvad turned the offset up
instead of the voice. A 4th-order Butterworth high-pass at ``Tuning.high_pass_hz`` (100 Hz) takes both out
(50 Hz by 24 dB, 60 Hz by 18 dB) and leaves voiced speech, whose energy lies above 100 Hz, alone.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfilt, sosfilt_zi


class HighPass:
    """Filters consecutive blocks of one stream; the filter state carries across blocks."""

    def __init__(self, sample_rate: int, cutoff_hz: float, order: int) -> None:
        self._sos = butter(order, cutoff_hz, btype="highpass", fs=sample_rate, output="sos")
        self._steady = sosfilt_zi(self._sos)  # the state for a constant input of 1
        self._state: np.ndarray | None = None

    def reset(self) -> None:
        """A new stream: the next block sets the starting state."""
        self._state = None

    def __call__(self, block: np.ndarray) -> np.ndarray:
        """``block`` filtered, as float32 (the same length)."""
        if len(block) == 0:
            return np.asarray(block, dtype=np.float32)
        if self._state is None:
            # start as if the first sample's value had always been there: an offset present
            # from the first sample makes no step, so no click at stream start
            self._state = self._steady * float(block[0])
        out, self._state = sosfilt(self._sos, block, zi=self._state)
        return np.asarray(out, dtype=np.float32)
