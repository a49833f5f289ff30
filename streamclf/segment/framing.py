"""Blocks of any length in, fixed-length frames out, each as it came and high-passed.

The high-pass (DC offset and mains hum out) runs once per pushed block, its state carried across
blocks; a partial frame at a block's end waits for the next block.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .buffer import FILTERED, RAW
from .highpass import HighPass


class Framer:
    def __init__(self, highpass: HighPass, frame: int) -> None:
        self._highpass = highpass
        self._frame = frame
        self._pending = np.zeros((2, frame), dtype=np.float32)  # rows RAW, FILTERED
        self._pending_len = 0

    def reset(self) -> None:
        self._highpass.reset()
        self._pending_len = 0

    def frames(self, samples: np.ndarray) -> Iterator[np.ndarray]:
        """The whole frames ``samples`` completes, as (2, frame) arrays: rows RAW and FILTERED."""
        raw = np.asarray(samples, dtype=np.float32).reshape(-1)
        data = np.empty((2, len(raw)), dtype=np.float32)
        data[RAW], data[FILTERED] = raw, self._highpass(raw)
        frame, pos = self._frame, 0
        if self._pending_len:
            pos = min(frame - self._pending_len, len(raw))
            self._pending[:, self._pending_len : self._pending_len + pos] = data[:, :pos]
            self._pending_len += pos
            if self._pending_len < frame:
                return
            yield self._pending
            self._pending_len = 0
        while len(raw) - pos >= frame:
            yield data[:, pos : pos + frame]
            pos += frame
        self._pending_len = len(raw) - pos
        self._pending[:, : self._pending_len] = data[:, pos:]
