"""The audio an utterance may need, as it came and high-passed, with each frame's features.

One preallocated buffer: row ``RAW`` is what segments carry, row ``FILTERED`` what edges are judged
on. While idle it keeps only the history an onset can reach back into; while an utterance is open it
grows up to the longest segment. Each frame's :class:`FrameFeatures` are kept beside its audio, so
judging an edge later never computes a frame's spectrum again.
"""

from __future__ import annotations

import numpy as np

from .features import FrameFeatures

RAW, FILTERED = 0, 1


class AudioWindow:
    def __init__(self, history: int, max_length: int, frame: int) -> None:
        self._history = history
        self._frame = frame
        self._audio = np.zeros((2, history + max_length + frame), dtype=np.float32)
        self._features: list[FrameFeatures | None] = [None] * (self._audio.shape[1] // frame + 2)
        self.start = 0
        """Stream sample of the first sample held."""
        self.fill = 0
        """Samples held."""

    @property
    def end(self) -> int:
        """Stream sample one past the last sample held."""
        return self.start + self.fill

    def restart(self, at: int) -> None:
        """Hold nothing; the next frame appended starts at stream sample ``at``."""
        self.start, self.fill = at, 0

    def append(self, pair: np.ndarray, features: FrameFeatures, keep_all: bool) -> None:
        """Keep one frame (rows RAW and FILTERED) and its features; unless ``keep_all``, only the
        history is kept before it."""
        length = pair.shape[1]
        if not keep_all and self.fill + length > self._history:
            keep = max(self._history - length, 0)
            self._audio[:, :keep] = self._audio[:, self.fill - keep : self.fill]
            self.start += self.fill - keep
            self.fill = keep
        self._features[self._slot(self.end)] = features
        self._audio[:, self.fill : self.fill + length] = pair
        self.fill += length

    def drop_before(self, at: int) -> None:
        """Forget what lies before stream sample ``at``."""
        drop = at - self.start
        if drop > 0:
            self._audio[:, : self.fill - drop] = self._audio[:, drop : self.fill]
            self.fill -= drop
            self.start = at

    def features_at(self, at: int) -> FrameFeatures:
        """The features of the held frame that starts at stream sample ``at``."""
        features = self._features[self._slot(at)]
        assert features is not None
        return features

    def audio(self, start: int, end: int) -> np.ndarray:
        """A copy of the audio as it came, stream samples ``start`` to ``end``."""
        return self._audio[RAW, start - self.start : end - self.start].copy()

    def _slot(self, at: int) -> int:
        return (at // self._frame) % len(self._features)
