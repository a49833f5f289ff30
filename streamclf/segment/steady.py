"""Windows over the last seconds that say the background has changed under way.

* :class:`WindowMinimum`: the quietest frame of the last few seconds. Speech always dips within a
  few seconds; when even that dip is above the floor, the noise got louder (a tap opened) and the
  floor should jump to it rather than creep up at its slow rate.
* :class:`SteadySound`: a sound that has stayed loud, and within a few dB of itself, for seconds is
  a new background (a fan, a tap, noise after digital silence), not speech: speech dips back towards
  the floor within a second.
* :class:`BusyWindow`: nearly every frame for seconds was speech. Over murmur that is the murmur
  having drifted away from the spectrum it was learned from: commands leave pauses.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from .tuning import Tuning


class WindowMinimum:
    """The quietest frame of the last ``min_window_s``, kept in ``min_window_blocks`` blocks."""

    def __init__(self, tuning: Tuning, frames_per_s: float) -> None:
        self._blocks = tuning.min_window_blocks
        self._block_frames = max(1, round(tuning.min_window_s / self._blocks * frames_per_s))
        self._mins: deque[float] = deque(maxlen=self._blocks)
        self.reset()

    def reset(self) -> None:
        self._mins.clear()
        self._block_min = np.inf
        self._block_count = 0

    def step(self, energy_db: float) -> float | None:
        """Take a frame's level; at the end of each block once the window is full, its minimum."""
        self._block_min = min(self._block_min, energy_db)
        self._block_count += 1
        if self._block_count < self._block_frames:
            return None
        self._mins.append(self._block_min)
        self._block_min = np.inf
        self._block_count = 0
        if len(self._mins) < self._blocks:
            return None
        return min(self._mins)


class BusyWindow:
    """Whether at least ``busy_share`` of the last ``busy_window_s`` was speech or an utterance."""

    def __init__(self, tuning: Tuning, frames_per_s: float) -> None:
        self._share = tuning.busy_share
        self._flags: deque[bool] = deque(maxlen=max(2, round(tuning.busy_window_s * frames_per_s)))
        self.reset()

    def reset(self) -> None:
        self._flags.clear()
        self._count = 0

    def step(self, busy: bool) -> bool:
        if len(self._flags) == self._flags.maxlen:
            self._count -= self._flags[0]
        self._flags.append(busy)
        self._count += busy
        return len(self._flags) == self._flags.maxlen and self._count >= self._share * len(self._flags)


class SteadySound:
    """Whether the last ``steady_window_s`` were loud and steady (see the module docstring)."""

    def __init__(self, tuning: Tuning, frames_per_s: float) -> None:
        self._t = tuning
        self._levels: deque[float] = deque(maxlen=max(2, round(tuning.steady_window_s * frames_per_s)))

    def reset(self) -> None:
        self._levels.clear()

    def step(self, energy_db: float, floor_db: float, margin_db: float) -> float | None:
        """Take a frame's level; the new floor when the window was loud and steady, else None."""
        self._levels.append(energy_db)
        if len(self._levels) < (self._levels.maxlen or 0) or energy_db - floor_db < margin_db:
            return None  # (the percentiles only when this frame is loud: idle frames stay cheap)
        low, high = np.percentile(self._levels, self._t.steady_percentiles)
        if low - floor_db >= margin_db and high - low <= self._t.steady_range_db:
            return float(low)
        return None
