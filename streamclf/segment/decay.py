"""How fast the room's sound dies away, measured from the falls after loud sounds.

When a sound stops in a room, its level falls at the room's decay rate, 60 dB per RT60: 200 dB/s
in a furnished room with an RT60 of 0.3 s, 60 dB/s in a bare kitchen with 1 s. Speech that goes
quiet by itself falls more slowly than that or as fast, never faster: the room's rate is the
fastest of the falls it hears. In a dry place (close talking, a headset, outdoors) a word's level
drops to the floor within a frame or two.

Each fall from a loud frame (``decay_peak_db`` over the noise floor) is followed until the level rises
again (``decay_rise_db``: new sound) or nears the floor; its slope is fitted over the part between
``decay_skip_db`` and ``decay_depth_db`` under the peak (above it lies the direct sound's own stop, below it
the floor). A fall fitted over at least ``decay_min_points`` frames and ``decay_min_span_db``, its levels
within ``decay_max_scatter_db`` of the line, is one measurement; the room's rate is the ``decay_quantile`` of
the last ``decay_kept`` of them. A dry place's falls are too short or too uneven to measure, and so are
those over a loud noise (10 dB SNR): the rate stays unknown.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from .tuning import Tuning


class RoomDecay:
    """Streaming estimate of the room's decay rate, dB/s (see the module docstring)."""

    def __init__(self, tuning: Tuning, sample_rate: int, frame_samples: int) -> None:
        self._t = tuning
        self._frame_s = frame_samples / sample_rate
        self._rates: deque[float] = deque(maxlen=tuning.decay_kept)
        self.reset()

    def reset(self) -> None:
        self._rates.clear()
        self.rate_db_per_s: float | None = None
        """The room's decay rate, dB/s, or None while too few falls were measured."""
        self._before = -np.inf  # level of the frame before the previous one, dBFS
        self._previous = -np.inf
        self._peak: float | None = None  # the fall under way: the level it fell from, dBFS
        self._lowest = 0.0
        self._points: list[tuple[int, float]] = []  # (frame number, level) in its fitted part
        self._frames = 0

    def update(self, energy_db: float, above_floor_db: float) -> None:
        """Take one frame's level, dBFS, and its height above the noise floor, dB."""
        if self._peak is not None:
            rises = energy_db >= self._lowest + self._t.decay_rise_db
            if rises or above_floor_db <= self._t.decay_floor_gap_db:
                self._finish()
            else:
                self._follow(energy_db)
        floor_db = energy_db - above_floor_db
        peak_before = self._previous >= self._before and energy_db < self._previous
        if self._peak is None and peak_before and self._previous - floor_db >= self._t.decay_peak_db:
            self._peak = self._lowest = self._previous
            self._points = []
            self._follow(energy_db)
        self._before, self._previous = self._previous, energy_db
        self._frames += 1

    def _follow(self, energy_db: float) -> None:
        """One more frame of the fall under way."""
        assert self._peak is not None
        self._lowest = min(self._lowest, energy_db)
        if self._peak - self._t.decay_depth_db <= energy_db <= self._peak - self._t.decay_skip_db:
            self._points.append((self._frames, energy_db))

    def _finish(self) -> None:
        """The fall ended: measure it if it was long and deep enough."""
        points, self._peak, self._points = self._points, None, []
        if len(points) < self._t.decay_min_points or points[0][1] - points[-1][1] < self._t.decay_min_span_db:
            return
        frames, levels = np.array(points, dtype=np.float64).T
        times = frames * self._frame_s
        slope, offset = np.polyfit(times, levels, 1)
        scatter = float(np.std(levels - (slope * times + offset)))
        if slope < 0.0 and scatter <= self._t.decay_max_scatter_db:
            self._rates.append(-float(slope))
            if len(self._rates) >= self._t.decay_min_measured:
                self.rate_db_per_s = float(np.percentile(self._rates, self._t.decay_quantile))
