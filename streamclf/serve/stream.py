"""One client's audio stream: its own resampler, segmenter and counters.

Time restarts at 0 with each ``audio-start``: ``start``/``end`` of its utterances are seconds of
that stream's audio, counted in samples, whatever its rate. Segments go to the shared worker
wrapped as :class:`StreamSegment`, which names the stream (``source``) and its key for routing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from ..audio.resample import StreamResampler
from ..segment import Segment, Segmenter, SegmentEvent
from .pcm import AudioFormat

SegmenterFactory = Callable[[], Segmenter]


@dataclass
class StreamCounters:
    """What ``status`` reports per stream (all counts since the client connected)."""

    chunks: int = 0
    samples: int = 0
    """Audio samples at the model's rate."""
    segments: int = 0
    classified: int = 0
    detections: int = 0
    """Accepted utterances answered with a ``detection``."""
    rejected: int = 0
    """Classified utterances under the threshold or not a command: no ``detection``, counted here."""
    ignored: int = 0
    """Accepted utterances not among the names its ``detect`` asked for: no ``detection``."""
    errors: int = 0
    dropped_segments: int = 0
    waits: int = 0
    """Times its audio waited because it had ``serve.stream_segments`` segments with the worker."""
    bad_input: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class StreamSegment:
    """A segment as the shared worker sees it: the segment, its stream's name and key."""

    segment: Segment
    source: str
    key: int

    @property
    def id(self) -> int:
        return self.segment.id

    @property
    def sample_rate(self) -> int:
        return self.segment.sample_rate

    @property
    def audio(self) -> np.ndarray:
        return self.segment.audio

    @property
    def closed_at(self) -> float:
        return self.segment.closed_at

    @property
    def start(self) -> float:
        return self.segment.start

    @property
    def end(self) -> float:
        return self.segment.end


class AudioStream:
    """The audio side of one connection (used from the event loop's thread only)."""

    def __init__(self, key: int, name: str, segmenter: Segmenter) -> None:
        self.key = key
        self.name = name
        self.segmenter = segmenter
        self.counters = StreamCounters()
        self.format: AudioFormat | None = None
        self._resampler: StreamResampler | None = None
        self.pending = 0
        """Segments with the worker and not yet answered."""
        self.speaking = False
        """An utterance is open: its speech start was announced, its end not yet."""

    @property
    def started(self) -> bool:
        return self.format is not None

    def start(self, fmt: AudioFormat) -> None:
        """A new stream (``audio-start``): time restarts at 0."""
        self.segmenter.reset()
        self.format = fmt
        self._resampler = StreamResampler(fmt.rate, self.segmenter.sample_rate)

    def push(self, frames: np.ndarray, fmt: AudioFormat) -> list[SegmentEvent]:
        """``(n, channels)`` samples in ``fmt`` (a chunk may change the rate: the resampler follows)."""
        assert self._resampler is not None
        if fmt.rate != self._resampler.in_rate:
            tail = self._resampler.flush()
            self._resampler = StreamResampler(fmt.rate, self.segmenter.sample_rate)
            frames_out = np.concatenate([tail, self._resampler.process(frames)])
        else:
            frames_out = self._resampler.process(frames)
        self.format = fmt
        self.counters.chunks += 1
        self.counters.samples += len(frames_out)
        return self.segmenter.push(frames_out)

    def finish(self) -> list[SegmentEvent]:
        """``audio-stop``: what the resampler and segmenter still hold."""
        if self._resampler is None:
            return []
        tail = self._resampler.flush()
        items = self.segmenter.push(tail) if tail.size else []
        self.format = None
        self._resampler = None
        return items + self.segmenter.flush()

    def wrap(self, segment: Segment) -> StreamSegment:
        return StreamSegment(segment, self.name, self.key)
