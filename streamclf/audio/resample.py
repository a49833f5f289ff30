"""Streaming sample-rate conversion (soxr) and down-mixing to mono."""

from __future__ import annotations

import numpy as np
import soxr


def to_mono(block: np.ndarray) -> np.ndarray:
    """``(n,)`` or ``(n, channels)`` samples as mono float32 ``(n,)`` (the channel mean)."""
    if block.ndim == 1:
        return block.astype(np.float32, copy=False)
    if block.shape[1] == 1:
        return block[:, 0].astype(np.float32, copy=False)
    return block.mean(axis=1, dtype=np.float32)


class StreamResampler:
    """Converts a mono float32 stream from ``in_rate`` to ``out_rate`` block by block.

    State carries across blocks, so the output is the same however the input is cut.
    When the rates match it passes blocks through untouched.
    """

    def __init__(self, in_rate: int, out_rate: int, quality: str = "HQ") -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} → {out_rate}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._quality = quality
        self._stream = self._new_stream()

    @property
    def is_identity(self) -> bool:
        return self.in_rate == self.out_rate

    def _new_stream(self) -> soxr.ResampleStream | None:
        if self.is_identity:
            return None
        return soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality=self._quality)

    def process(self, block: np.ndarray) -> np.ndarray:
        """Resample the next block (mono or multi-channel, which is down-mixed first)."""
        mono = to_mono(block)
        if self._stream is None:
            return mono
        return np.asarray(self._stream.resample_chunk(np.ascontiguousarray(mono)), dtype=np.float32)

    def flush(self) -> np.ndarray:
        """End of stream: the samples still held in the filter; afterwards the resampler is reset."""
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        tail = np.asarray(self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
        self.reset()
        return tail.astype(np.float32, copy=False)

    def reset(self) -> None:
        """Start a new, unrelated stream (e.g. after the device was reopened)."""
        self._stream = self._new_stream()
