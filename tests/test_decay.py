"""The room's decay rate: measured from the falls after loud sounds, unknown in a dry place."""

from __future__ import annotations

import numpy as np
import pytest

from streamclf.config import VadSettings
from streamclf.segment import make_segmenter
from streamclf.segment.decay import RoomDecay
from streamclf.segment.tuning import TUNING
from tests.audio import RATE, TEN_WORDS, needs_espeak, ten_word_stream
from trainer.augment import reverberate
from trainer.noise import make_noise, set_level_dbfs

MIN_MEASURED = TUNING.decay_min_measured
FRAME = 320
FRAME_S = FRAME / RATE
FLOOR_DBFS = -75.0


def word_levels(rng: np.random.Generator, fall_db_per_s: float | None, words: int) -> list[float]:
    """Frame levels, dBFS: words at -20 dBFS, each followed by a fall at ``fall_db_per_s`` (None: the
    level drops to the floor at once) with a dB of jitter, then the floor."""
    levels: list[float] = []
    for _ in range(words):
        levels += list(-20.0 + rng.uniform(-2.0, 2.0, 15))
        if fall_db_per_s is not None:
            depth = np.arange(1, 200) * fall_db_per_s * FRAME_S
            levels += list(-22.0 - depth[-22.0 - depth > FLOOR_DBFS] + rng.uniform(-1.0, 1.0))
        levels += list(FLOOR_DBFS + rng.uniform(-1.0, 1.0, 25))
    return levels


def measure(levels: list[float]) -> float | None:
    room = RoomDecay(TUNING, RATE, FRAME)
    for level in levels:
        room.update(level, level - FLOOR_DBFS)
    return room.rate_db_per_s


@pytest.mark.parametrize("rt60_s", [0.3, 0.6, 1.0, 1.4])
def test_the_rate_of_a_rooms_falls_is_measured(rt60_s: float) -> None:
    rate = 60.0 / rt60_s
    measured = measure(word_levels(np.random.default_rng(1), rate, words=6))
    assert measured is not None and measured == pytest.approx(rate, rel=0.1)


def test_a_dry_places_rate_stays_unknown() -> None:
    assert measure(word_levels(np.random.default_rng(2), None, words=10)) is None


def test_falls_cut_short_by_the_next_sound_measure_nothing() -> None:
    rng = np.random.default_rng(3)
    levels: list[float] = []
    for _ in range(10):  # a slow fall (60 dB/s) that the next word interrupts after 10 dB
        levels += list(-20.0 + rng.uniform(-2.0, 2.0, 15)) + [-22.0 - 1.2 * k for k in range(1, 9)]
    assert measure(levels) is None


def test_a_fade_that_stops_and_starts_measures_nothing() -> None:
    # a talker's own fade: 30 dB down in steps, held between them; a room's sound falls evenly
    rng = np.random.default_rng(4)
    levels: list[float] = []
    for _ in range(10):
        levels += list(-20.0 + rng.uniform(-2.0, 2.0, 15))
        levels += [-30.0] * 5 + [-31.0] * 5 + [-45.0] * 5 + [-46.0] * 3 + [-60.0] * 3
        levels += list(FLOOR_DBFS + rng.uniform(-1.0, 1.0, 25))
    assert measure(levels) is None


def test_one_fall_is_not_enough_and_reset_forgets_the_room() -> None:
    levels = word_levels(np.random.default_rng(4), 80.0, words=MIN_MEASURED)
    one_word = len(levels) // MIN_MEASURED
    room = RoomDecay(TUNING, RATE, FRAME)
    for level in levels[:one_word]:
        room.update(level, level - FLOOR_DBFS)
    assert room.rate_db_per_s is None
    for level in levels[one_word:]:
        room.update(level, level - FLOOR_DBFS)
    assert room.rate_db_per_s is not None
    room.reset()
    assert room.rate_db_per_s is None


def rate_heard(audio: np.ndarray) -> float | None:
    """The room's rate as the segmenter measured it, after the whole stream."""
    segmenter = make_segmenter(VadSettings(), RATE)
    for pos in range(0, len(audio), 480):
        segmenter.push(audio[pos : pos + 480])
    return segmenter.room_decay_db_per_s


@needs_espeak
@pytest.mark.parametrize("rt60_s", [0.5, 0.9])
def test_spoken_words_in_a_room_measure_its_rt60(rt60_s: float) -> None:
    rng = np.random.default_rng(5)
    stream = ten_word_stream(rng, texts=TEN_WORDS, gap_range_s=(0.6, 1.0), level_dbfs=-20.0)
    wet = reverberate(stream.audio, RATE, rng, rt60_s, 3.0)
    room_noise = set_level_dbfs(make_noise("pink", len(wet), rng), -70.0)
    measured = rate_heard(wet + room_noise)
    assert measured is not None and measured == pytest.approx(60.0 / rt60_s, rel=0.25)


@needs_espeak
def test_dry_spoken_words_measure_no_slow_room() -> None:
    # close talking in a quiet room: the words' own fades are fast, or too short to measure
    rng = np.random.default_rng(6)
    stream = ten_word_stream(rng, texts=TEN_WORDS, gap_range_s=(0.6, 1.0), level_dbfs=-20.0)
    room_noise = set_level_dbfs(make_noise("pink", len(stream.audio), rng), -70.0)
    measured = rate_heard(stream.audio + room_noise)
    assert measured is None or measured > 150.0, measured
