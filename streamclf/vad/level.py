"""Level tracking in front of the voice detector: noise floor, background spectrum, automatic gain.

Per frame (vectorised numpy, no per-sample Python), two views of how far the frame stands out
of the background, each against its own noise peak:

* **level**: frame RMS in dBFS above an adaptive noise floor. The floor falls quickly to quieter
  frames, rises slowly (``rise_db_per_s``) through louder ones, and jumps up to the quietest frame
  of the last 3 s when the noise got louder, so it sits near the low end of the background's level
  whatever it is. The level peak is the 98th percentile of non-speech frames above the floor (a
  streaming quantile), which widens the margin for fluctuating noise.
* **spectrum**: the mean dB by which the frame's ``TOP_BANDS`` most raised bands (of ``BANDS``
  mel-spaced bands) stand above the background's mean spectrum, learned over frames that look like
  background. Speech raises a few bands far above coloured noise where the whole-band level barely
  moves (pink noise, or a near talker over distant murmur); the spectrum peak is its 98th
  percentile over non-speech frames.

A frame is *loud enough* when either view clears its peak (and ``margin_db``); *strong* when one
clears it with some dB to spare, more over voice-like background (babble), and its level rises
at least ``STRONG_MIN_ABOVE_DB`` over the floor. Also:

* an automatic gain that brings the sound standing out of the noise to ``TARGET_DBFS``
  before the detector sees it (quiet talkers at -50 dBFS look like normal ones to webrtcvad).
  It follows the loudest recent frame (``GAIN_RELEASE_DB_PER_S``), so a word's own rise and fall
  reach the detector as they were;
* ``low_band_ratio``: the share of the frame's energy between 80 and 1500 Hz, where voiced
  speech has most of its energy and dish clatter, clicks and hiss have little;
  ``low_band_excess_db``: how far that band stands above the background's.

At the start of a stream nothing is known of the background: for ``COLD_START_S`` every frame is
taken into the background spectrum, the floor follows every frame at the warm-up's rate, and the
margins are raised. Over murmur, when nearly every recent frame was speech, every frame teaches the
spectrum (``_learn_when_busy``): murmur that has drifted away from it. When the background gets louder,
the floor follows slowly, jumps to the quietest frame of ``MIN_WINDOW_S`` when even that is above
it, and a sound that stays loud and steady for ``STEADY_WINDOW_S`` restarts the tracker from its
level (``update`` says so: what looked like speech since was that sound). Frames of digital
silence teach nothing once a background has been heard.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

TARGET_DBFS = -22.0
"""Level, in dBFS, that the gain brings frames standing out of the noise to."""
MAX_GAIN_DB = 40.0
AGC_FLOOR_OFFSET_DB = 15.0
"""Frames louder than the floor by this, dB, are brought to TARGET_DBFS; quieter ones keep their
distance below it (the background is never amplified to speech level)."""
MIN_GAIN_DB = -12.0
GAIN_RELEASE_DB_PER_S = 20.0
"""The gain is set by the loudest recent frame, whose level it forgets at this rate. A word's
syllables and fading end keep their contour (silero-vad hears speech in it: with every frame
brought to the same level, it missed a quarter of the words in reverberant rooms), and a talker
who goes on quietly after a loud word is brought up within a second or two."""
SILENCE_DBFS = -100.0
"""Frames quieter than this count as digital silence (floor of the energy scale)."""
NO_SIGNAL_DBFS = -90.0
"""Frames this quiet carry no signal (digital silence around a file's words, a sound card's first
buffers): once a background has been heard they teach nothing about it."""
ABSOLUTE_MIN_DBFS = -88.0
"""No frame below this level is speech, whatever the floor (the soft "w" and fading end of a talker
at -50 dBFS lie near -80 dBFS, and the high-pass in front takes a little more off them)."""
VOICED_BAND_HZ = (80.0, 1500.0)
HISS_BAND_HZ = 1500.0
"""Where the band whose flatness tells a hiss from ringing tones begins (``high_band_flatness``)."""
HISS_PARTS = 8
"""Sub-bands that flatness is taken in (each about 400 Hz wide at 16 kHz)."""
AUDIBLE_MARGIN_DB = 4.0
"""Level above the background, dB, of audio that counts as part of an utterance next to its speech frames."""
LEVEL_STRONG_DB = 3.0
"""Extra level, dB above the level peak's margin, of the voiced frames that confirm an utterance."""
LEVEL_BABBLE_DB = 7.0
"""Raise of LEVEL_STRONG_DB, dB, when nearly all the background's energy is in the voiced band (babble)."""
SPECTRUM_STRONG_DB = 1.0
"""Extra band excess, dB above the spectrum peak's margin, of the voiced frames that confirm an utterance."""
SPECTRUM_BABBLE_DB = 2.0
"""Raise of SPECTRUM_STRONG_DB, dB, over voice-like background."""
WARM_UP_S = 1.5
"""At stream start the floor rises WARM_UP_RISE_DB_PER_S for this many seconds, to find the noise fast."""
WARM_UP_RISE_DB_PER_S = 20.0
WARM_UP_STEP_FACTOR = 3.0
"""The noise-peak quantile trackers take steps this much larger during the warm-up."""
COLD_START_DB = 10.0
COLD_START_S = 0.5
"""Extra margin, dB, at the very start of a stream, shrinking to 0 over COLD_START_S: before any
background has been heard, a murmur already under way when the stream starts is not speech."""
MIN_WINDOW_S = 3.0
"""The floor jumps up to the quietest frame of this many seconds when that is above it."""
MIN_WINDOW_BLOCKS = 6
STEADY_WINDOW_S = 2.0
STEADY_RANGE_DB = 8.0
STEADY_PERCENTILES = (10.0, 90.0)
"""A sound that has stayed loud enough, and within STEADY_RANGE_DB of itself (between these
percentiles of its frames' levels), for STEADY_WINDOW_S is a new background (a fan, a tap, noise
after digital silence), not speech: speech dips back towards the floor within a second. The tracker
then starts over on it, its floor at that sound's level."""
NOISE_QUANTILE = 0.98
"""The noise peaks track this quantile of non-speech frames' level above the floor and band excess."""
NOISE_PEAK_STEP_DB = 0.5
"""Step of the quantile trackers, dB (rise by ~0.5 dB per frame above them, fall ~0.5 dB/s)."""
NOISE_PEAK_MARGIN_DB = 1.0
"""Speech must clear a noise peak by this much, dB."""
VOICED_SHARE_RATE = 0.01
"""Per-frame rate of the running mean of the background's voiced-band share (its first
1 / VOICED_SHARE_RATE frames are averaged evenly: no pull towards a made-up start value)."""
BANDS = 20
"""Mel-spaced bands between BAND_RANGE_HZ in which the background's spectrum is learned."""
BAND_RANGE_HZ = (100.0, 8000.0)
TOP_BANDS = 6
"""The band excess is the mean excess, dB, of this many bands that stand out most."""
STRONG_MIN_ABOVE_DB = 3.0
"""A frame strong by its spectrum alone must still be this much, dB, above the noise floor: a voice on
top of the background adds to its level, a background that only changes colour (another talker in
the murmur, a tap turned) does not."""
SPECTRUM_TIME_S = 2.0
"""Time constant, s, of the background spectrum's running mean."""
BUSY_WINDOW_S = 2.0
BUSY_SHARE = 0.85
"""Over murmur, when at least this share of the last BUSY_WINDOW_S was speech or an utterance,
every frame teaches the background spectrum (see ``_learn_when_busy``)."""


@dataclass(frozen=True)
class FrameLevel:
    energy_db: float
    """Frame RMS, dBFS."""
    above_floor_db: float
    """energy_db minus the noise floor, dB."""
    band_excess_db: float
    """How far, dB, the frame's TOP_BANDS most raised bands stand above the background's spectrum."""
    loud_enough: bool
    """Above the background by the (adaptive) margin, in level or spectrum, and above ABSOLUTE_MIN_DBFS."""
    strong: bool
    """Loud enough with some dB to spare: an utterance needs such frames to be confirmed."""
    gain: float
    """Linear gain to apply before the detector."""
    low_band_ratio: float
    """Share of the frame's energy in VOICED_BAND_HZ, 0..1."""
    low_band_excess_db: float
    """How far, dB, the frame's power below VOICED_BAND_HZ's top stands above the background's there."""
    band_power: np.ndarray = field(compare=False, repr=False)
    """The frame's power in each of the BANDS mel bands."""
    high_band_power: np.ndarray = field(compare=False, repr=False)
    """The frame's power spectrum above HISS_BAND_HZ (a view, FFT bins)."""

    @property
    def high_band_flatness(self) -> float:
        """Spectral flatness above HISS_BAND_HZ, 0..1 (see ``_flatness``): high for hiss (a
        fricative, a fan), low for ringing tones (a clink of china). Computed when asked for."""
        return _flatness(self.high_band_power)


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
        self._gain_release = GAIN_RELEASE_DB_PER_S / self._frames_per_s
        self._block_frames = max(1, round(MIN_WINDOW_S / MIN_WINDOW_BLOCKS * self._frames_per_s))
        self._warm_up_frames = round(WARM_UP_S * self._frames_per_s)
        self._warm_up_rise = WARM_UP_RISE_DB_PER_S / self._frames_per_s
        self._cold_frames = max(1, round(COLD_START_S * self._frames_per_s))
        self._spectrum_rate = 1.0 / (SPECTRUM_TIME_S * self._frames_per_s)
        self._block_mins: deque[float] = deque(maxlen=MIN_WINDOW_BLOCKS)
        self._steady: deque[float] = deque(maxlen=max(2, round(STEADY_WINDOW_S * self._frames_per_s)))
        self._busy: deque[bool] = deque(maxlen=max(2, round(BUSY_WINDOW_S * self._frames_per_s)))
        freqs = np.fft.rfftfreq(frame_samples, 1.0 / sample_rate)
        self._voiced_bins = (freqs >= VOICED_BAND_HZ[0]) & (freqs <= VOICED_BAND_HZ[1])
        self._hiss_from = int(np.searchsorted(freqs, HISS_BAND_HZ))
        self._band_bins, self._band_starts = _mel_bands(freqs, sample_rate)
        self._top = min(TOP_BANDS, len(self._band_starts))
        band_low_edges = freqs[self._band_bins][self._band_starts]
        self._voiced_bands = max(1, int(np.sum(band_low_edges[1:] <= VOICED_BAND_HZ[1])))
        self._window = np.hanning(frame_samples).astype(np.float32)
        self.reset()

    def reset(self) -> None:
        self.floor_db: float | None = None
        self._gain_reference_db = -np.inf  # the loudest recent frame, forgotten at GAIN_RELEASE_DB_PER_S
        self.level_peak_db = 0.0
        self.spectrum_peak_db = 0.0
        self.noise_voiced_share = 0.0
        self._background: np.ndarray | None = None  # band powers, running mean
        self._background_power = 0.0  # frame power, running mean over the same frames
        self._learned = 0  # frames taken into the background spectrum
        self._share_frames = 0
        self._marked: tuple[float, float, np.ndarray | None, float] = (0.0, 0.0, None, 0.0)
        self._frames = 0
        self._block_mins.clear()
        self._steady.clear()
        self._busy.clear()
        self._busy_count = 0
        self._block_min = np.inf
        self._block_count = 0

    # --- per frame --------------------------------------------------------------------

    def measure(self, frame: np.ndarray, unfiltered: np.ndarray | None = None) -> FrameLevel:
        """Measure one frame; ``unfiltered``: the same frame before the high-pass in front of the
        tracker (see ``_power_and_spectrum``)."""
        power, spectrum = self._power_and_spectrum(frame, unfiltered)
        energy = max(10.0 * np.log10(power), SILENCE_DBFS) if power > 0.0 else SILENCE_DBFS
        if self.floor_db is None:
            self.floor_db = energy
        total = float(spectrum.sum())
        ratio = float(spectrum[self._voiced_bins].sum()) / total if total > 0.0 else 0.0
        bands = self._bands(spectrum)
        if self._background is None:
            self._background = bands.copy()
        if self._frames < self._cold_frames:
            # nothing is known of the background yet: every frame of the cold start is taken
            # for it, the current one included (so no early frame can stand far above it)
            self._learn_spectrum(bands, power)
        excess = self._excess(bands)
        above = energy - self.floor_db
        cold = COLD_START_DB * max(1.0 - self._frames / self._cold_frames, 0.0)
        level_margin = self._level_margin_db() + cold
        spectrum_margin = max(self._margin_db, self.spectrum_peak_db + NOISE_PEAK_MARGIN_DB) + cold
        loud = (above >= level_margin or excess >= spectrum_margin) and energy >= ABSOLUTE_MIN_DBFS
        babble = self._voice_likeness()
        level_strong = self.level_peak_db + NOISE_PEAK_MARGIN_DB + LEVEL_STRONG_DB + LEVEL_BABBLE_DB * babble
        spectrum_strong = (
            self.spectrum_peak_db + NOISE_PEAK_MARGIN_DB + SPECTRUM_STRONG_DB + SPECTRUM_BABBLE_DB * babble
        )
        spectrum_is_strong = excess >= spectrum_strong + cold and above >= STRONG_MIN_ABOVE_DB
        strong = loud and (above >= level_strong + cold or spectrum_is_strong)
        gain_db = 0.0
        if self._agc:
            self._gain_reference_db = max(energy, self._gain_reference_db - self._gain_release)
            reference = max(self._gain_reference_db, self.floor_db + AGC_FLOOR_OFFSET_DB)
            gain_db = min(max(TARGET_DBFS - reference, MIN_GAIN_DB), MAX_GAIN_DB)
        low = self._voiced_bands
        low_excess = 10.0 * float(np.log10(bands[:low].sum() / self._background[:low].sum()))
        gain = 10.0 ** (gain_db / 20.0)
        high = spectrum[self._hiss_from :]
        return FrameLevel(energy, above, excess, loud, strong, gain, ratio, low_excess, bands, high)

    def audible(self, frame: np.ndarray, unfiltered: np.ndarray | None = None) -> bool:
        """Whether ``frame`` stands out of the noise at all (used to widen detected boundaries)."""
        power, spectrum = self._power_and_spectrum(frame, unfiltered)
        if power <= 0.0 or self.floor_db is None or self._background is None:
            return False
        energy = 10.0 * np.log10(power)
        if energy < ABSOLUTE_MIN_DBFS:
            return False
        if energy - self.floor_db >= max(AUDIBLE_MARGIN_DB, self.level_peak_db + NOISE_PEAK_MARGIN_DB):
            return True
        excess = self._excess(self._bands(spectrum))
        return excess >= max(AUDIBLE_MARGIN_DB, self.spectrum_peak_db + NOISE_PEAK_MARGIN_DB)

    def _power_and_spectrum(
        self, frame: np.ndarray, unfiltered: np.ndarray | None
    ) -> tuple[float, np.ndarray]:
        """Mean power and (windowed) power spectrum of ``frame``.

        With ``unfiltered`` (the frame before a high-pass), neither the power nor any frequency bin
        counts more than it did before the filter. The filter takes out an offset and hum; the low
        ringing it leaves after a click was never in the input, and is not taken for sound.
        """
        power = float(np.dot(frame, frame)) / max(len(frame), 1)
        spectrum = np.abs(np.fft.rfft(frame * self._window)) ** 2
        if unfiltered is not None:
            power = min(power, float(np.dot(unfiltered, unfiltered)) / max(len(unfiltered), 1))
            np.minimum(spectrum, np.abs(np.fft.rfft(unfiltered * self._window)) ** 2, out=spectrum)
        return power, spectrum

    def update(self, level: FrameLevel, speech: bool, learn_noise: bool = True) -> bool:
        """Adapt floor, background spectrum and noise peaks once the frame's decision is known.

        ``learn_noise`` False: the frame belongs to a confirmed utterance and says nothing
        about the noise. Returns True when the background stepped up to a new steady sound: the
        tracker starts over on it, and what looked like speech since was that sound.
        """
        assert self.floor_db is not None
        cold = self._frames < self._cold_frames
        energy = level.energy_db
        if energy <= NO_SIGNAL_DBFS < self.floor_db:
            return False
        new_floor = self._steady_step(energy)
        if new_floor is not None:
            # a new background: learn it from scratch (spectrum, peaks, voice-likeness, with a cold
            # start's margins), from its own level
            self.reset()
            self.floor_db = new_floor
            return True
        if energy < self.floor_db:
            self.floor_db += 0.3 * (energy - self.floor_db)
        else:
            # the cold start takes every frame for the background (as for the spectrum): a floor
            # begun on a quiet first frame catches up with murmur already under way
            warming_up = cold or (self._frames <= self._warm_up_frames and learn_noise and not speech)
            rise = self._warm_up_rise if warming_up else self._rise
            self.floor_db += min(rise, energy - self.floor_db)
        self._frames += 1
        self._track_window_minimum(energy)
        if not learn_noise or speech:
            self._learn_when_busy(level, busy=True)
            return False
        self._learn_when_busy(level, busy=False)
        above = energy - self.floor_db
        if not cold and above < self.level_peak_db + NOISE_PEAK_MARGIN_DB:
            # only frames within the background's usual level: a word too soft to be detected
            # must not teach the spectrum its vowels
            self._learn_spectrum(level.band_power, 10.0 ** (energy / 10.0))
        self._share_frames += 1
        share_rate = max(1.0 / self._share_frames, VOICED_SHARE_RATE)
        self.noise_voiced_share += share_rate * (level.low_band_ratio - self.noise_voiced_share)
        step = NOISE_PEAK_STEP_DB * (WARM_UP_STEP_FACTOR if self._frames <= self._warm_up_frames else 1.0)
        self.level_peak_db = _quantile_step(self.level_peak_db, above, step)
        self.spectrum_peak_db = _quantile_step(self.spectrum_peak_db, level.band_excess_db, step)
        return False

    # --- what an opened utterance taught ----------------------------------------------

    def mark(self) -> None:
        """Remember what was learned of the noise (an utterance opens: it may turn out to be speech)."""
        background = self._background.copy() if self._background is not None else None
        self._marked = (self.level_peak_db, self.spectrum_peak_db, background, self._background_power)

    def forget_since_mark(self) -> None:
        """The opened utterance was speech after all: undo what its frames taught about the noise."""
        level_peak, spectrum_peak, background, power = self._marked
        self.level_peak_db = min(self.level_peak_db, level_peak)
        self.spectrum_peak_db = min(self.spectrum_peak_db, spectrum_peak)
        if background is not None and self._background is not None:
            np.minimum(self._background, background, out=self._background)
            self._background_power = min(self._background_power, power)

    # --- background -------------------------------------------------------------------

    def _voice_likeness(self) -> float:
        """0 when at most half the background's energy is in the voiced band, 1 from 90 % (babble)."""
        return min(max((self.noise_voiced_share - 0.5) / 0.4, 0.0), 1.0)

    @property
    def voice_like(self) -> bool:
        """Whether the background is murmur (babble, a TV): more voice-like than not."""
        return self._voice_likeness() >= 0.5

    def _bands(self, spectrum: np.ndarray) -> np.ndarray:
        return np.add.reduceat(spectrum[self._band_bins], self._band_starts) + 1e-12

    def _excess(self, bands: np.ndarray) -> float:
        """Mean dB of the TOP_BANDS bands that stand out most over the background's spectrum."""
        assert self._background is not None
        ratios = bands / self._background
        top = np.partition(ratios, len(ratios) - self._top)[-self._top :]
        return float(np.mean(10.0 * np.log10(top)))

    def _learn_spectrum(self, bands: np.ndarray, power: float) -> None:
        """Running mean of the background's band powers and power (even weights at first)."""
        assert self._background is not None
        rate = max(1.0 / (self._learned + 1), self._spectrum_rate)
        self._background += rate * (bands - self._background)
        self._background_power += rate * (power - self._background_power)
        self._learned += 1

    def _learn_when_busy(self, level: FrameLevel, busy: bool) -> None:
        """Over murmur, let every frame teach the background spectrum while nearly all of the last
        BUSY_WINDOW_S was speech or an utterance.

        The spectrum learns only from frames taken for noise. When murmur drifts away from the
        spectrum it was learned from (other talkers come to the fore), each of its frames stands
        out, is taken for speech and teaches nothing: the spectrum stays stale and utterances run
        into each other. Commands leave gaps: a word or two, then a pause. Murmur that seems to
        talk on with hardly a pause for seconds is the background.
        """
        if len(self._busy) == self._busy.maxlen:
            self._busy_count -= self._busy[0]
        self._busy.append(busy)
        self._busy_count += busy
        full = len(self._busy) == self._busy.maxlen
        if busy and full and self._busy_count >= BUSY_SHARE * len(self._busy) and self.voice_like:
            self._learn_spectrum(level.band_power, 10.0 ** (level.energy_db / 10.0))

    def _level_margin_db(self) -> float:
        """How far, dB, a frame's level must stand above the floor to stand out (past the cold start)."""
        return max(self._margin_db, self.level_peak_db + NOISE_PEAK_MARGIN_DB)

    def _steady_step(self, energy: float) -> float | None:
        """The new floor when the last STEADY_WINDOW_S were loud enough and steady, else None."""
        assert self.floor_db is not None
        self._steady.append(energy)
        level_margin = self._level_margin_db()
        if len(self._steady) < (self._steady.maxlen or 0) or energy - self.floor_db < level_margin:
            return None  # (the percentiles only when this frame is loud: idle frames stay cheap)
        low, high = np.percentile(self._steady, STEADY_PERCENTILES)
        if low - self.floor_db >= level_margin and high - low <= STEADY_RANGE_DB:
            return float(low)
        return None

    def _track_window_minimum(self, energy: float) -> None:
        """Raise the floor (and the background spectrum) when the noise got louder.

        The slow rise alone would take many seconds to follow noise that just got louder
        (a tap opened, a fan switched on); speech always dips within a few seconds. When even
        the quietest frame of the last MIN_WINDOW_S is louder than the background's mean, the
        frames may all look like speech and teach the spectrum nothing: it is scaled up instead.
        """
        self._block_min = min(self._block_min, energy)
        self._block_count += 1
        if self._block_count < self._block_frames:
            return
        self._block_mins.append(self._block_min)
        self._block_min = np.inf
        self._block_count = 0
        if len(self._block_mins) < MIN_WINDOW_BLOCKS:
            return
        self._rebase(min(self._block_mins))

    def _rebase(self, level_db: float) -> None:
        """The background is at least ``level_db`` loud now: raise the floor and spectrum to it."""
        if self.floor_db is not None and level_db > self.floor_db:
            # excursions were measured from the old floor: shift the level peak with it
            self.level_peak_db = max(self.level_peak_db - (level_db - self.floor_db), 0.0)
            self.floor_db = level_db
        if self._background is not None and self._background_power > 0.0:
            rise = level_db - 10.0 * np.log10(self._background_power)
            if rise > 0.0:
                self._background *= 10.0 ** (rise / 10.0)
                self._background_power *= 10.0 ** (rise / 10.0)
                self.spectrum_peak_db = max(self.spectrum_peak_db - rise, 0.0)


def _flatness(power: np.ndarray, parts: int = HISS_PARTS) -> float:
    """Spectral flatness of ``power`` (geometric over arithmetic mean) in ``parts`` equal sub-bands,
    averaged weighted by each sub-band's power: 0 for pure tones, about 0.56 for white noise.

    Within a narrow sub-band, a hiss's slope hardly matters, so a fricative's rising spectrum still
    reads as noise-like; a ringing mode dominates its sub-band and reads as a tone.
    """
    width = len(power) // parts
    if width < 2:
        return 0.0
    split = power[: width * parts].reshape(parts, width).astype(np.float64)
    mean = split.mean(axis=1)
    total = float(mean.sum())
    if total <= 0.0:
        return 0.0
    geometric = np.exp(np.mean(np.log(np.maximum(split, total * 1e-12)), axis=1))
    return float(np.sum(geometric)) / total


def _quantile_step(peak: float, value: float, step: float) -> float:
    """One step of a streaming NOISE_QUANTILE tracker over ``value`` clipped to 0..30 dB."""
    if min(max(value, 0.0), 30.0) > peak:
        return peak + step * NOISE_QUANTILE
    return max(peak - step * (1.0 - NOISE_QUANTILE), 0.0)


def _mel_bands(freqs: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """FFT bin indices inside BAND_RANGE_HZ and the start of each of (up to) BANDS mel-spaced bands."""
    low, high = BAND_RANGE_HZ[0], min(BAND_RANGE_HZ[1], sample_rate / 2.0)
    bins = np.flatnonzero((freqs >= low) & (freqs <= high))
    mel = 2595.0 * np.log10(1.0 + freqs[bins] / 700.0)
    edges = np.linspace(mel[0], mel[-1] + 1e-6, BANDS + 1)
    starts = np.unique(np.searchsorted(mel, edges[:-1]))
    return bins, starts[starts < len(bins)]
