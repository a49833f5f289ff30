"""The echo tracker: what a room's decay can explain, and what it cannot."""

from __future__ import annotations

import numpy as np

from streamclf.segment.echo import EchoTracker, envelope_rate
from streamclf.segment.tuning import TUNING

DECAY_DB_PER_S = TUNING.echo_decay_db_per_s
RUN_FRAMES = TUNING.echo_run_frames
SLOWEST_DB_PER_S = TUNING.echo_slowest_db_per_s

RATE, FRAME, BANDS = 16000, 320, 20
STEP_DB = DECAY_DB_PER_S * FRAME / RATE


def feed(
    tracker: EchoTracker, levels_db: list[np.ndarray], room_decay_db_per_s: float | None = None
) -> list[bool]:
    return [tracker.update(10.0 ** (level / 10.0), room_decay_db_per_s) for level in levels_db]


def test_a_tail_falling_faster_than_the_envelope_is_echo_after_a_run() -> None:
    rng = np.random.default_rng(0)
    vowel = rng.uniform(-40.0, -20.0, BANDS)
    tail = [vowel - 3.0 - 2.0 * STEP_DB * (k + 1) + rng.uniform(-1.0, 1.0, BANDS) for k in range(8)]
    echo = feed(EchoTracker(TUNING, RATE, FRAME), [vowel, vowel, *tail])
    assert echo[:2] == [False, False]
    assert echo[2 : 2 + RUN_FRAMES - 1] == [False] * (RUN_FRAMES - 1)
    assert all(echo[2 + RUN_FRAMES - 1 :])


def test_steady_sound_and_a_new_sound_in_other_bands_are_not_echo() -> None:
    low = np.full(BANDS, -80.0)
    low[:6] = -25.0  # a vowel: energy in the low bands only
    fricative = low - 20.0
    fricative[14:] = -45.0  # quieter overall, but it raises the high bands
    tracker = EchoTracker(TUNING, RATE, FRAME)
    assert not any(feed(tracker, [low] * 10))
    assert not any(feed(tracker, [fricative] * 5))


def test_a_slower_decay_than_the_envelope_is_never_echo() -> None:
    start = np.full(BANDS, -20.0)
    slow = [start - 0.5 * STEP_DB * k for k in range(30)]  # a room with twice the RT60 covered
    assert not any(feed(EchoTracker(TUNING, RATE, FRAME), slow))


def test_reset_forgets_the_envelope() -> None:
    tracker = EchoTracker(TUNING, RATE, FRAME)
    loud, quiet = np.full(BANDS, -10.0), np.full(BANDS, -60.0)
    assert feed(tracker, [loud, quiet, quiet])[-1]
    tracker.reset()
    assert not any(feed(tracker, [quiet, quiet, quiet]))


def test_a_slow_rooms_tail_is_echo_once_the_room_is_known() -> None:
    # a bare kitchen (RT60 1 s): its tail falls at 60 dB/s, more slowly than the first envelope
    room = 60.0
    start = np.full(BANDS, -20.0)
    tail = [start - 3.0 - room * FRAME / RATE * (k + 1) for k in range(20)]
    assert not any(feed(EchoTracker(TUNING, RATE, FRAME), [start, *tail]))
    assert all(feed(EchoTracker(TUNING, RATE, FRAME), [start, *tail], room)[RUN_FRAMES + 1 :])


def test_the_envelope_follows_only_a_room_slower_than_its_first_guess() -> None:
    assert envelope_rate(TUNING, None) == DECAY_DB_PER_S
    assert envelope_rate(TUNING, 400.0) == DECAY_DB_PER_S  # a fast room: the first guess explains its echo
    assert SLOWEST_DB_PER_S < envelope_rate(TUNING, 100.0) < DECAY_DB_PER_S  # slower than the room it heard
    assert envelope_rate(TUNING, 10.0) == SLOWEST_DB_PER_S
