"""The microphone as `listen` hears it: the same source, resampler and segmenter, read on demand.

`listen`'s pipeline runs these in its own thread and hands segments to a classifier; enrolment
only needs the segments, one at a time, so here the caller's loop reads the device block by
block (:meth:`MicListener.poll`) and keeps the input level for the meter.
"""

from __future__ import annotations

import collections
import math
from dataclasses import replace

import numpy as np

from ..audio.resample import StreamResampler
from ..audio.sources import Source, open_source
from ..audiofolder import SAMPLE_RATE
from ..config import CaptureSettings, VadSettings
from ..segment import Segment, SpeechEnd, SpeechStart, make_segmenter

SILENT_DBFS = -120.0


class MicListener:
    """A microphone (``capture.device`` as `listen` picks it) cut into utterances at 16 kHz."""

    def __init__(self, capture: CaptureSettings, vad: VadSettings) -> None:
        self.source: Source = open_source(replace(capture, source="mic"))
        self.segmenter = make_segmenter(vad, SAMPLE_RATE)
        self._resampler: StreamResampler | None = None
        self._segments: collections.deque[Segment] = collections.deque()
        self.level_dbfs = SILENT_DBFS
        """The last block's level, for the meter."""
        self.speaking = False
        """Speech has started and not yet ended."""

    def open(self) -> None:
        """Open the device; StartupError (exit 3) names it when it is missing or refuses to open."""
        self.source.open()
        self._resampler = StreamResampler(self.source.sample_rate, SAMPLE_RATE)

    def close(self) -> None:
        self.source.close()

    @property
    def device(self) -> str:
        """The device's name as the user knows it (for messages)."""
        return self.source.name.removeprefix("mic:")

    def poll(self, timeout: float) -> Segment | None:
        """Read what the device has (waiting up to ``timeout`` s) and return the oldest utterance
        closed so far, or None. SourceLost when the device goes away."""
        if not self._segments:
            block = self.source.read(timeout)
            if block is not None and block.size:
                self._consume(block)
        return self._segments.popleft() if self._segments else None

    def discard(self) -> None:
        """Forget closed utterances nobody asked for (said before a take started)."""
        self._segments.clear()

    def _consume(self, block: np.ndarray) -> None:
        assert self._resampler is not None, "open() first"
        energy = float(np.dot(block, block)) / max(1, block.size)
        self.level_dbfs = max(SILENT_DBFS, 10.0 * math.log10(energy + 1e-12))
        for item in self.segmenter.push(self._resampler.process(block)):
            if isinstance(item, SpeechStart):
                self.speaking = True
            elif isinstance(item, SpeechEnd):
                self.speaking = False
            else:
                self.speaking = False
                self._segments.append(item)
