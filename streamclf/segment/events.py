"""What a segmenter emits, and the protocol the rest of the daemon sees.

Each :class:`SpeechStart` is followed by its :class:`Segment` or by a :class:`SpeechEnd` before the
next :class:`SpeechStart`. Sample indices count from the stream's start at the segmenter's rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class SpeechStart:
    sample: int
    """Stream sample index (segmenter rate) of the first speech frame."""


@dataclass(frozen=True)
class SpeechEnd:
    """An utterance announced by :class:`SpeechStart` was dropped: no :class:`Segment` follows.

    It was shorter than ``min_utterance_ms``, or it was a new steady background (a fan switched on).
    """

    sample: int
    """Stream sample index (segmenter rate) where it was dropped."""


@dataclass(frozen=True)
class Segment:
    id: int
    start_sample: int
    """First sample, pre-roll included."""
    end_sample: int
    """One past the last sample."""
    sample_rate: int
    audio: np.ndarray
    """float32 mono, ``end_sample - start_sample`` samples (a copy: the segmenter keeps no reference)."""
    reason: str
    """Why it closed: "silence", "max_length" or "flush"."""
    closed_at: float
    """time.monotonic() when the segmenter closed it."""

    @property
    def start(self) -> float:
        return self.start_sample / self.sample_rate

    @property
    def end(self) -> float:
        return self.end_sample / self.sample_rate

    @property
    def duration(self) -> float:
        return (self.end_sample - self.start_sample) / self.sample_rate


SegmentEvent = SpeechStart | SpeechEnd | Segment


class Segmenter(Protocol):
    sample_rate: int
    samples_seen: int

    def push(self, samples: np.ndarray) -> list[SegmentEvent]: ...

    def flush(self) -> list[SegmentEvent]: ...

    def reset(self) -> None: ...
