"""The background model on its own: what makes a frame stand out of a background it has learned."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamclf.segment.background import BackgroundModel, StandOut
from streamclf.segment.spectrum import BandLayout
from streamclf.segment.tuning import TUNING
from tests.audio import RATE, vowel_tone
from trainer.noise import make_noise, set_level_dbfs

FRAME = 320  # 20 ms
HISS_FLATNESS = TUNING.hiss_flatness
NOISE_PEAK_MARGIN_DB = TUNING.noise_peak_margin_db
SPECTRUM_STRONG_DB = TUNING.spectrum_strong_db


@dataclass(frozen=True)
class Measured:
    stand_out: StandOut
    energy_db: float
    high_band_flatness: float


class Tracker:
    """A frame's spectrum judged against, and taught to, one background model."""

    def __init__(self) -> None:
        self.layout = BandLayout(TUNING, RATE, FRAME)
        self.background = BackgroundModel(TUNING, self.layout, RATE / FRAME, margin_db=6.0)

    def measure(self, frame: np.ndarray) -> Measured:
        power, spectrum = self.layout.power_and_spectrum(frame, None)
        energy = 10.0 * np.log10(power)
        bands = self.layout.bands(spectrum)
        out = self.background.stand_out(energy, power, bands)
        return Measured(out, energy, self.layout.high_band_flatness(spectrum))

    def learn(self, frame: np.ndarray) -> None:
        power, spectrum = self.layout.power_and_spectrum(frame, None)
        energy = 10.0 * np.log10(power)
        bands = self.layout.bands(spectrum)
        out = self.background.stand_out(energy, power, bands)
        share = self.layout.voiced_share(spectrum)
        self.background.learn(energy, bands, out.band_excess_db, share, speech=False, learn_noise=True)


def tracker_after(background: np.ndarray) -> Tracker:
    """A tracker that has heard ``background`` (no speech in it)."""
    tracker = Tracker()
    for frame in background[: len(background) // FRAME * FRAME].reshape(-1, FRAME):
        tracker.learn(frame)
    return tracker


def test_a_new_colour_at_the_same_level_is_not_strong_but_the_same_sound_louder_is() -> None:
    rng = np.random.default_rng(3)
    tracker = tracker_after(set_level_dbfs(make_noise("pink", 4 * RATE, rng, RATE), -40.0))
    # the background's level, but a spectrum it never had: a vowel-like tone carries most of it
    vowel = vowel_tone(FRAME / RATE, rng)
    pink = make_noise("pink", FRAME, rng, RATE)
    recoloured = set_level_dbfs(set_level_dbfs(pink, -55.0) + set_level_dbfs(vowel, -41.0), -40.0)
    same_level = tracker.measure(recoloured.astype(np.float32))
    # its spectrum stands out of the background further than a strong frame's must
    assert same_level.stand_out.loud, same_level
    spectrum_strong = tracker.background.spectrum_peak_db + NOISE_PEAK_MARGIN_DB + SPECTRUM_STRONG_DB
    assert same_level.stand_out.band_excess_db >= spectrum_strong + 1.0, (same_level, spectrum_strong)
    assert abs(same_level.energy_db + 40.0) < 0.5
    assert not same_level.stand_out.strong, same_level  # a background changing colour is not a talker
    louder = tracker.measure((recoloured * 10 ** (10 / 20)).astype(np.float32))
    assert louder.stand_out.strong, louder


def _band_noise(low_hz: float, rng: np.random.Generator, tilt_db_per_octave: float = 0.0) -> np.ndarray:
    """One frame of noise above ``low_hz``, its spectrum tilted by ``tilt_db_per_octave``."""
    spectrum = np.fft.rfft(rng.standard_normal(4 * FRAME))
    freqs = np.fft.rfftfreq(4 * FRAME, 1.0 / RATE)
    gain = np.where(freqs >= low_hz, (np.maximum(freqs, 1.0) / 1000.0) ** (tilt_db_per_octave / 6.02), 0.0)
    return set_level_dbfs(np.fft.irfft(spectrum * gain)[FRAME : 2 * FRAME], -30.0).astype(np.float32)


def _ringing(rng: np.random.Generator) -> np.ndarray:
    """One frame of a struck dish: two to five decaying tones between 1.5 and 7 kHz."""
    t = np.arange(FRAME) / RATE
    out = np.zeros(FRAME)
    for _ in range(rng.integers(2, 6)):
        ring = np.sin(2 * np.pi * rng.uniform(1500, 7000) * t) * np.exp(-t / rng.uniform(0.015, 0.12))
        out += rng.uniform(0.2, 1.0) * ring
    return set_level_dbfs(out, -30.0).astype(np.float32)


def test_a_hiss_reads_flat_in_the_high_band_and_a_clink_does_not() -> None:
    rng = np.random.default_rng(8)
    tracker = tracker_after(set_level_dbfs(make_noise("pink", RATE, rng, RATE), -70.0))
    # white noise, a fricative's steeply rising hiss ("s" above 3.5 kHz), a falling one ("f", "th")
    hisses = [
        tracker.measure(_band_noise(low, rng, tilt)).high_band_flatness
        for low, tilt in [(0.0, 0.0), (3500.0, 12.0), (1500.0, -6.0)]
        for _ in range(10)
    ]
    clinks = [tracker.measure(_ringing(rng)).high_band_flatness for _ in range(30)]
    assert min(hisses) >= HISS_FLATNESS + 0.1, sorted(hisses)[:5]
    assert max(clinks) <= HISS_FLATNESS - 0.1, sorted(clinks)[-5:]
