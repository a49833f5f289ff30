"""Level tracking in front of the voice detector: noise floor, automatic gain, spectral check.

Per frame (vectorised numpy, no per-sample Python):

* ``energy_db``: frame RMS in dBFS.
* an adaptive noise floor: falls quickly to quieter frames, rises slowly (``rise_db_per_s``)
  through louder ones, and jumps up to the quietest frame of the last 3 s when the noise got
  louder, so it sits near the low end of the background's level whatever it is;
* the noise peak: the 98th percentile of non-speech frames above the floor (a streaming
  quantile), which widens the margin for fluctuating noise such as babble or pink noise;
* an automatic gain that brings each frame standing out of the noise to ``TARGET_DBFS``
  before the detector sees it (quiet talkers at -50 dBFS look like normal ones to webrtcvad);
* ``low_band_ratio``: the share of the frame's energy between 80 and 1500 Hz, where voiced
  speech has most of its energy and dish clatter, clicks and hiss have little.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

TARGET_DBFS = -22.0
"""Level, in dBFS, that the gain brings frames standing out of the noise to."""
MAX_GAIN_DB = 40.0
AGC_FLOOR_OFFSET_DB = 15.0
"""Frames louder than the floor by this, dB, are brought to TARGET_DBFS; quieter ones keep their
distance below it (the background is never amplified to speech level)."""
MIN_GAIN_DB = -12.0
SILENCE_DBFS = -100.0
"""Frames quieter than this count as digital silence (floor of the energy scale)."""
ABSOLUTE_MIN_DBFS = -72.0
"""No frame below this level is speech, whatever the floor."""
VOICED_BAND_HZ = (80.0, 1500.0)
AUDIBLE_MARGIN_DB = 4.0
"""Level above the floor, dB, of audio that counts as part of an utterance next to its speech frames."""
STRONG_EXTRA_DB = 3.0
"""Extra level, dB above the noise peak's margin, of the voiced frames that confirm an utterance."""
BABBLE_EXTRA_DB = 3.0
"""Raise of STRONG_EXTRA_DB, dB, when nearly all the background's energy is in the voiced band (babble)."""
WARM_UP_S = 1.5
"""At stream start the floor rises WARM_UP_RISE_DB_PER_S for this many seconds, to find the noise fast."""
WARM_UP_RISE_DB_PER_S = 20.0
WARM_UP_STEP_FACTOR = 3.0
"""The noise-peak quantile tracker takes steps this much larger during the warm-up."""
COLD_START_DB = 10.0
COLD_START_S = 0.5
"""Extra margin, dB, at the very start of a stream, shrinking to 0 over COLD_START_S: before any
background has been heard, a murmur already under way when the stream starts is not speech."""
MIN_WINDOW_S = 3.0
"""The floor jumps up to the quietest frame of this many seconds when that is above it."""
MIN_WINDOW_BLOCKS = 6
NOISE_QUANTILE = 0.98
"""The noise peak tracks this quantile of non-speech frames' level above the floor."""
NOISE_PEAK_STEP_DB = 0.5
"""Step of the quantile tracker, dB (rises by ~0.5 dB per frame above it, falls ~0.5 dB/s)."""
NOISE_PEAK_MARGIN_DB = 1.0
"""Speech must clear the noise peak by this much, dB."""


@dataclass(frozen=True)
class FrameLevel:
    energy_db: float
    """Frame RMS, dBFS."""
    above_floor_db: float
    """energy_db minus the noise floor, dB."""
    loud_enough: bool
    """Above the floor by the (adaptive) margin and above ABSOLUTE_MIN_DBFS."""
    strong: bool
    """Loud enough with STRONG_EXTRA_DB to spare: an utterance needs such frames to be confirmed."""
    gain: float
    """Linear gain to apply before the detector."""
    low_band_ratio: float
    """Share of the frame's energy in VOICED_BAND_HZ, 0..1."""


class LevelTracker:
    def __init__(
        self,
        sample_rate: int,
        frame_samples: int,
        margin_db: float,
        agc: bool = True,
        rise_db_per_s: float = 2.0,
    ) -> None:
        self._frames_per_s = sample_rate / frame_samples
        self._margin_db = margin_db
        self._agc = agc
        self._rise = rise_db_per_s / self._frames_per_s
        self._block_frames = max(1, round(MIN_WINDOW_S / MIN_WINDOW_BLOCKS * self._frames_per_s))
        self._warm_up_frames = round(WARM_UP_S * self._frames_per_s)
        self._warm_up_rise = WARM_UP_RISE_DB_PER_S / self._frames_per_s
        self._cold_frames = max(1, round(COLD_START_S * self._frames_per_s))
        self._block_mins: deque[float] = deque(maxlen=MIN_WINDOW_BLOCKS)
        freqs = np.fft.rfftfreq(frame_samples, 1.0 / sample_rate)
        self._band = (freqs >= VOICED_BAND_HZ[0]) & (freqs <= VOICED_BAND_HZ[1])
        self._window = np.hanning(frame_samples).astype(np.float32)
        self.reset()

    def reset(self) -> None:
        self.floor_db: float | None = None
        self.noise_peak_db = 0.0
        self.noise_voiced_share = 0.0
        self._last_ratio = 0.0
        self._block_mins.clear()
        self._marked_peak_db = 0.0
        self._frames = 0
        self._block_min = np.inf
        self._block_count = 0

    def measure(self, frame: np.ndarray) -> FrameLevel:
        power = float(np.dot(frame, frame)) / len(frame)
        energy = max(10.0 * np.log10(power), SILENCE_DBFS) if power > 0.0 else SILENCE_DBFS
        if self.floor_db is None:
            self.floor_db = energy
        above = energy - self.floor_db
        cold = COLD_START_DB * max(1.0 - self._frames / self._cold_frames, 0.0)
        margin = max(self._margin_db, self.noise_peak_db + NOISE_PEAK_MARGIN_DB) + cold
        loud = above >= margin and energy >= ABSOLUTE_MIN_DBFS
        strong = loud and above >= self.noise_peak_db + NOISE_PEAK_MARGIN_DB + cold + self._strong_extra_db()
        spectrum = np.abs(np.fft.rfft(frame * self._window)) ** 2
        total = float(spectrum.sum())
        ratio = float(spectrum[self._band].sum()) / total if total > 0.0 else 0.0
        self._last_ratio = ratio
        gain_db = 0.0
        if self._agc:
            reference = max(energy, self.floor_db + AGC_FLOOR_OFFSET_DB)
            gain_db = min(max(TARGET_DBFS - reference, MIN_GAIN_DB), MAX_GAIN_DB)
        return FrameLevel(energy, above, loud, strong, 10.0 ** (gain_db / 20.0), ratio)

    def audible(self, frame: np.ndarray) -> bool:
        """Whether ``frame`` stands out of the noise at all (used to widen detected boundaries)."""
        power = float(np.dot(frame, frame)) / max(len(frame), 1)
        if power <= 0.0 or self.floor_db is None:
            return False
        energy = 10.0 * np.log10(power)
        threshold = self.floor_db + max(AUDIBLE_MARGIN_DB, self.noise_peak_db + NOISE_PEAK_MARGIN_DB)
        return energy >= max(threshold, ABSOLUTE_MIN_DBFS)

    def _voice_likeness(self) -> float:
        """0 when at most half the background's energy is in the voiced band, 1 from 90 % (babble)."""
        return min(max((self.noise_voiced_share - 0.5) / 0.4, 0.0), 1.0)

    def _strong_extra_db(self) -> float:
        """STRONG_EXTRA_DB, raised by up to BABBLE_EXTRA_DB when the background itself is voice-like."""
        return STRONG_EXTRA_DB + BABBLE_EXTRA_DB * self._voice_likeness()

    @property
    def voice_like(self) -> bool:
        """Whether the background is murmur (babble, a TV): more voice-like than not."""
        return self._voice_likeness() >= 0.5

    def mark(self) -> None:
        """Remember the noise peak (an utterance opens: it may turn out to be speech)."""
        self._marked_peak_db = self.noise_peak_db

    def forget_since_mark(self) -> None:
        """The opened utterance was speech after all: undo what its frames taught the noise peak."""
        self.noise_peak_db = min(self.noise_peak_db, self._marked_peak_db)

    def update(self, level: FrameLevel, speech: bool, learn_noise: bool = True) -> None:
        """Adapt floor and noise peak once the frame's decision is known.

        ``learn_noise`` False: the frame belongs to a confirmed utterance and says nothing
        about the noise's peaks.
        """
        assert self.floor_db is not None
        energy = level.energy_db
        if energy < self.floor_db:
            self.floor_db += 0.3 * (energy - self.floor_db)
        else:
            warming_up = self._frames <= self._warm_up_frames and learn_noise and not speech
            rise = self._warm_up_rise if warming_up else self._rise
            self.floor_db += min(rise, energy - self.floor_db)
        self._frames += 1
        self._track_window_minimum(energy)
        if learn_noise and not speech:
            excursion = min(max(energy - self.floor_db, 0.0), 30.0)
            step = NOISE_PEAK_STEP_DB * (WARM_UP_STEP_FACTOR if self._frames <= self._warm_up_frames else 1.0)
            self.noise_voiced_share += 0.01 * (self._last_ratio - self.noise_voiced_share)
            if excursion > self.noise_peak_db:
                self.noise_peak_db += step * NOISE_QUANTILE
            else:
                self.noise_peak_db = max(self.noise_peak_db - step * (1.0 - NOISE_QUANTILE), 0.0)

    def _track_window_minimum(self, energy: float) -> None:
        """Raise the floor to the quietest frame of the last MIN_WINDOW_S when that is above it.

        The slow rise alone would take many seconds to follow noise that just got louder
        (a tap opened, a fan switched on); speech always dips within a few seconds.
        """
        self._block_min = min(self._block_min, energy)
        self._block_count += 1
        if self._block_count < self._block_frames:
            return
        self._block_mins.append(self._block_min)
        self._block_min = np.inf
        self._block_count = 0
        if len(self._block_mins) == self._block_mins.maxlen:
            window_min = min(self._block_mins)
            if self.floor_db is not None and window_min > self.floor_db:
                # excursions were measured from the old floor: shift the noise peak with it
                self.noise_peak_db = max(self.noise_peak_db - (window_min - self.floor_db), 0.0)
                self.floor_db = window_min
