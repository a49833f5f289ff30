"""LevelTracker on its own: what makes a frame stand out of a background it has learned."""

from __future__ import annotations

import numpy as np

from streamclf.vad.level import NOISE_PEAK_MARGIN_DB, SPECTRUM_STRONG_DB, LevelTracker
from tests.audio import RATE, vowel_tone
from trainer.noise import make_noise, set_level_dbfs

FRAME = 320  # 20 ms


def tracker_after(background: np.ndarray) -> LevelTracker:
    """A tracker that has heard ``background`` (no speech in it)."""
    tracker = LevelTracker(RATE, FRAME, margin_db=6.0)
    for frame in background[: len(background) // FRAME * FRAME].reshape(-1, FRAME):
        tracker.update(tracker.measure(frame), speech=False)
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
    assert same_level.loud_enough, same_level
    spectrum_strong = tracker.spectrum_peak_db + NOISE_PEAK_MARGIN_DB + SPECTRUM_STRONG_DB
    assert same_level.band_excess_db >= spectrum_strong + 1.0, (same_level, spectrum_strong)
    assert abs(same_level.energy_db + 40.0) < 0.5
    assert not same_level.strong, same_level  # a background changing colour is not a talker
    louder = tracker.measure((recoloured * 10 ** (10 / 20)).astype(np.float32))
    assert louder.strong, louder
