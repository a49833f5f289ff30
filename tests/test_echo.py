"""The echo tracker: what a room's decay can explain, and what it cannot."""

from __future__ import annotations

import numpy as np

from streamclf.vad.echo import DECAY_DB_PER_S, RUN_FRAMES, EchoTracker

RATE, FRAME, BANDS = 16000, 320, 20
STEP_DB = DECAY_DB_PER_S * FRAME / RATE


def feed(tracker: EchoTracker, levels_db: list[np.ndarray]) -> list[bool]:
    return [tracker.update(10.0 ** (level / 10.0)) for level in levels_db]


def test_a_tail_falling_faster_than_the_envelope_is_echo_after_a_run() -> None:
    rng = np.random.default_rng(0)
    vowel = rng.uniform(-40.0, -20.0, BANDS)
    tail = [vowel - 3.0 - 2.0 * STEP_DB * (k + 1) + rng.uniform(-1.0, 1.0, BANDS) for k in range(8)]
    echo = feed(EchoTracker(RATE, FRAME), [vowel, vowel, *tail])
    assert echo[:2] == [False, False]
    assert echo[2 : 2 + RUN_FRAMES - 1] == [False] * (RUN_FRAMES - 1)
    assert all(echo[2 + RUN_FRAMES - 1 :])


def test_steady_sound_and_a_new_sound_in_other_bands_are_not_echo() -> None:
    low = np.full(BANDS, -80.0)
    low[:6] = -25.0  # a vowel: energy in the low bands only
    fricative = low - 20.0
    fricative[14:] = -45.0  # quieter overall, but it raises the high bands
    tracker = EchoTracker(RATE, FRAME)
    assert not any(feed(tracker, [low] * 10))
    assert not any(feed(tracker, [fricative] * 5))


def test_a_slower_decay_than_the_envelope_is_never_echo() -> None:
    start = np.full(BANDS, -20.0)
    slow = [start - 0.5 * STEP_DB * k for k in range(30)]  # a room with twice the RT60 covered
    assert not any(feed(EchoTracker(RATE, FRAME), slow))


def test_reset_forgets_the_envelope() -> None:
    tracker = EchoTracker(RATE, FRAME)
    loud, quiet = np.full(BANDS, -10.0), np.full(BANDS, -60.0)
    assert feed(tracker, [loud, quiet, quiet])[-1]
    tracker.reset()
    assert not any(feed(tracker, [quiet, quiet, quiet]))
