"""The :class:`~streamclf.segment.events.Segmenter` over any frame detector: the parts wired together.

Blocks become frames (``framing.py``), each frame its features (``features.py``), the state machine
takes them (``machine.py``), and the background learns from each frame once the machine has judged
it; a new steady background (a fan switched on) drops what is open.
"""

from __future__ import annotations

import numpy as np

from ..config import VadSettings
from ..vad import FrameDetector
from ..vad.murmur import MurmurCheck
from .background import BackgroundModel
from .buffer import FILTERED, RAW, AudioWindow
from .events import SegmentEvent
from .features import FrameAnalyser
from .framing import Framer
from .gain import AutoGain
from .highpass import HighPass
from .machine import StateMachine
from .spectrum import BandLayout
from .states import State
from .timing import Timing
from .tuning import TUNING, Tuning


class FrameSegmenter:
    def __init__(
        self,
        settings: VadSettings,
        detector: FrameDetector,
        murmur_check: MurmurCheck | None = None,
        tuning: Tuning = TUNING,
    ) -> None:
        self.sample_rate = detector.sample_rate
        frame = detector.frame_samples
        t = Timing.of(settings, tuning, self.sample_rate, frame)
        self._framer = Framer(HighPass(self.sample_rate, tuning.high_pass_hz, tuning.high_pass_order), frame)
        frames_per_s = self.sample_rate / frame
        layout = BandLayout(tuning, self.sample_rate, frame)
        self.background = BackgroundModel(tuning, layout, frames_per_s, settings.margin_db)
        gain = AutoGain(tuning, frames_per_s, settings.agc)
        self._analyser = FrameAnalyser(tuning, layout, detector, self.background, gain, murmur_check,
                                       t.murmur_linger_frames)
        self._window = AudioWindow(t.history, t.max_length, frame)
        self._machine = StateMachine(t, tuning, self.background, self._window)
        self.reset()

    def reset(self) -> None:
        """Back to the start of a new stream: sample counter, ids and adaptation cleared."""
        self.samples_seen = 0
        self._framer.reset()
        self.background.reset()
        self._analyser.reset()
        self._machine.reset()

    @property
    def state(self) -> State:
        return self._machine.state

    @property
    def murmur_check(self) -> MurmurCheck | None:
        """silero-vad's second opinion over murmur (None: not asked)."""
        return self._analyser.murmur_check

    @property
    def room_decay_db_per_s(self) -> float | None:
        """How fast the room's sound dies away, dB/s, as measured so far (None: not known)."""
        return self._analyser.room.rate_db_per_s

    def push(self, samples: np.ndarray) -> list[SegmentEvent]:
        """Feed a block of any length of float32 mono samples; returns the events it completed."""
        events: list[SegmentEvent] = []
        self.samples_seen += len(samples)
        for pair in self._framer.frames(samples):
            features = self._analyser.analyse(pair[RAW], pair[FILTERED])
            heard = self._machine.step(pair, features, events)
            confirmed = self._machine.confirmed
            if self.background.learn(features.energy_db, features.bands, features.band_excess_db,
                                     features.voiced_share, heard.speech, learn_noise=not confirmed):
                self._machine.drop(events)  # a new steady background: what was open is that sound
        return events

    def flush(self) -> list[SegmentEvent]:
        """End of stream: emit the utterance in progress (reason "flush") if it qualifies."""
        events: list[SegmentEvent] = []
        self._machine.flush(events)
        return events
