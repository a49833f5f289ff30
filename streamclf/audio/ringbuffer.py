"""A fixed-size float32 ring buffer between one producer and one consumer.

The producer is usually an audio callback: :meth:`RingBuffer.write` never blocks for longer
than a short copy under a lock, never allocates, and when the buffer is full it drops the
OLDEST unread audio and counts it. The consumer reads with :meth:`RingBuffer.read` and
sleeps in :meth:`RingBuffer.wait` until audio arrives.
"""

from __future__ import annotations

import threading

import numpy as np


class RingBuffer:
    """Preallocated ``(capacity, channels)`` float32 storage; single producer, single consumer.

    The lock is held only while indices move and samples are copied (microseconds for an
    audio block), so the producer never waits on the consumer's processing.
    """

    def __init__(self, capacity_samples: int, channels: int = 1) -> None:
        if capacity_samples < 1:
            raise ValueError(f"ring buffer capacity must be ≥ 1 sample, got {capacity_samples}")
        if channels < 1:
            raise ValueError(f"ring buffer needs ≥ 1 channel, got {channels}")
        self._data = np.zeros((capacity_samples, channels), dtype=np.float32)
        self._capacity = capacity_samples
        self._channels = channels
        self._written = 0  # samples ever written (monotonic)
        self._read = 0  # samples ever consumed or dropped (monotonic)
        self._overflow_samples = 0
        self._overflows = 0
        self._lock = threading.Lock()
        self._readable = threading.Event()

    @property
    def capacity(self) -> int:
        """Samples (per channel) the buffer holds."""
        return self._capacity

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def available(self) -> int:
        """Unread samples waiting for the consumer."""
        with self._lock:
            return self._written - self._read

    @property
    def total_written(self) -> int:
        """Samples the producer has written since creation (including ones later dropped)."""
        return self._written

    @property
    def overflow_samples(self) -> int:
        """Samples dropped because the consumer fell behind a full buffer."""
        return self._overflow_samples

    @property
    def overflows(self) -> int:
        """Writes that had to drop old audio."""
        return self._overflows

    def write(self, block: np.ndarray) -> None:
        """Append ``block`` (``(n,)`` or ``(n, channels)``); drop the oldest audio when full."""
        frames = block.shape[0]
        if frames == 0:
            return
        if block.ndim == 1:
            block = block.reshape(frames, 1)  # a view, no copy
        skipped = 0
        if frames > self._capacity:  # only the newest `capacity` samples can be kept
            skipped = frames - self._capacity
            block = block[skipped:]
            frames = self._capacity
        with self._lock:
            start = (self._written + skipped) % self._capacity
            first = min(frames, self._capacity - start)
            self._data[start : start + first] = block[:first]
            if first < frames:
                self._data[: frames - first] = block[first:]
            self._written += frames + skipped
            excess = self._written - self._read - self._capacity
            if excess > 0:
                self._read += excess
                self._overflow_samples += excess
                self._overflows += 1
        if not self._readable.is_set():
            self._readable.set()

    def read(self, max_samples: int | None = None) -> np.ndarray:
        """Up to ``max_samples`` of the oldest unread audio (all of it when None), as a new array.

        Shape ``(n,)`` for a mono buffer, ``(n, channels)`` otherwise; ``n`` may be 0.
        """
        with self._lock:
            count = self._written - self._read
            if max_samples is not None:
                count = max(0, min(count, max_samples))
            out = np.empty((count, self._channels), dtype=np.float32)
            start = self._read % self._capacity
            first = min(count, self._capacity - start)
            out[:first] = self._data[start : start + first]
            if first < count:
                out[first:] = self._data[: count - first]
            self._read += count
            if self._written == self._read:
                self._readable.clear()
        return out[:, 0] if self._channels == 1 else out

    def wait(self, timeout: float | None) -> bool:
        """Sleep until audio is available (or :meth:`wake` is called); True when audio is waiting."""
        self._readable.wait(timeout)
        return self.available > 0

    def wake(self) -> None:
        """Release a consumer sleeping in :meth:`wait` (e.g. the stream ended)."""
        self._readable.set()

    def clear(self) -> None:
        """Forget unread audio (counters are kept)."""
        with self._lock:
            self._read = self._written
            self._readable.clear()
