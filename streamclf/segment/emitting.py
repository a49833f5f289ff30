"""A closed utterance becomes a :class:`Segment`: its edges placed, its audio copied out.

The end moves forward over audible frames just after the last speech (a soft last consonant) and
gets the tail; in noise, pre-roll and tail grow for the soft edges the noise hides. Segments never
overlap: each starts no earlier than the last one ended.
"""

from __future__ import annotations

import time

from . import edges
from .buffer import AudioWindow
from .edges import Audible
from .events import Segment
from .states import Utterance
from .timing import Timing
from .tuning import Tuning


class SegmentWriter:
    def __init__(self, window: AudioWindow, timing: Timing, tuning: Tuning, audible: Audible) -> None:
        self._window = window
        self._t = timing
        self._tuning = tuning
        self._audible = audible
        self.reset()

    def reset(self) -> None:
        self._next_id = 0
        self.last_end = 0
        """Stream sample where the last segment ended."""

    def masked_pads(self, peak_above_db: float) -> tuple[int, int]:
        t = self._t
        return edges.masked_pads(peak_above_db, self._tuning, t.max_extra_preroll, t.max_extra_tail)

    def length(self, utterance: Utterance, peak_above_db: float) -> int:
        """Samples of speech, with the soft edges the noise hid ("up" at 10 dB SNR shows only its vowel)."""
        extra = sum(self.masked_pads(peak_above_db))
        return utterance.last_speech_end - utterance.onset + utterance.weak_lead + extra

    def segment(
        self, utterance: Utterance, peak_above_db: float, reason: str, end: int | None = None
    ) -> Segment:
        """The segment for ``utterance``; ``end`` None: placed after its last speech (else a cut)."""
        window = self._window
        extra_preroll, extra_tail = self.masked_pads(peak_above_db)
        if end is None:
            limit = min(utterance.last_speech_end + self._t.reach, window.end)
            speech_end = edges.reach_forward(utterance.last_speech_end, limit, self._t.frame, self._audible)
            end = min(speech_end + self._t.tail + extra_tail, window.end)
        # (a continuation after a cut has its onset at the window's start: it starts right at the cut)
        start = max(utterance.onset - self._t.preroll - extra_preroll, window.start)
        segment = Segment(self._next_id, start, end, self._t.sample_rate, window.audio(start, end), reason,
                          time.monotonic())
        self._next_id += 1
        self.last_end = end
        return segment
