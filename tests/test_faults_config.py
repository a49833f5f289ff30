"""Fault injection, configuration and flags; property tests of the loader and the segmenter.

``tests/test_config.py`` covers the example file, named bad values and a first property test.
Here: every key of every section gets values of every wrong type and out-of-range values
(hypothesis), bad command-line flags exit 2 or 3 with one line, and the segmenter keeps its
promises for any stream of frames: segments never overlap, never run backwards, never exceed
the maximum length, and every frame of a voiced stretch that opens an utterance lands in
exactly one segment, however the stream is cut into blocks.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from streamclf import config
from streamclf.errors import EXIT_STARTUP, EXIT_USAGE, ConfigError
from streamclf.segment import FrameSegmenter, Segment, SegmentEvent, SpeechStart, make_segmenter
from streamclf.segment.tuning import TUNING

RATE = 16000
FRAME_MS = 20
FRAME = RATE * FRAME_MS // 1000

# --------------------------------------------------------------------------- the loader

ALL_KEYS = [(section, f.name) for section, cls in config.SECTIONS.items() for f in dataclasses.fields(cls)]

text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
any_toml_value = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    text,
    st.lists(st.integers(-5, 5), max_size=3),
    st.lists(text, max_size=3),
    st.dictionaries(text, st.integers(), max_size=2),
)


def toml_literal(value: Any) -> str:
    """``value`` written as TOML (only the types the strategies above make)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        # a JSON string is a TOML basic string, once DEL is escaped too
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_literal(k)} = {toml_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(ALL_KEYS), any_toml_value)
def test_any_value_for_any_key_is_accepted_valid_or_refused_naming_that_key(
    tmp_path: Path, key: tuple[str, str], value: Any
) -> None:
    """Through a real TOML file: the loader either returns settings that validate again, or
    raises ConfigError naming exactly the key it was given."""
    section, name = key
    path = tmp_path / "c.toml"
    path.write_text(f"[{section}]\n{name} = {toml_literal(value)}\n")
    try:
        loaded = config.load_settings(path)
    except ConfigError as exc:
        assert exc.key == f"{section}.{name}", (exc.key, value)
        assert "\n" not in str(exc)
        return
    got = getattr(getattr(loaded, section), name)
    # what was accepted round-trips: loading the accepted value again gives the same settings
    again = config.settings_from_dict({section: {name: list(got) if isinstance(got, tuple) else got}})
    assert again == loaded


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(
        [
            k
            for k in ALL_KEYS
            if k[1]
            in {
                "frame_ms",
                "aggressiveness",
                "hangover_ms",
                "preroll_ms",
                "min_utterance_ms",
                "max_utterance_s",
                "open_ms",
                "top_k",
                "threshold",
                "ring_seconds",
                "block_ms",
                "status_interval_s",
                "queue_size",
                "max_batch",
                "stdout_buffer",
            }
        ]
    ),
    st.one_of(st.integers(-(10**6), -1), st.floats(-1e9, -1e-9), st.integers(10**7, 10**9)),
)
def test_negative_and_huge_numbers_are_refused_naming_the_key(key: tuple[str, str], value: float) -> None:
    section, name = key
    with pytest.raises(ConfigError) as info:
        config.settings_from_dict({section: {name: value}})
    assert info.value.key == f"{section}.{name}"


@pytest.mark.parametrize("frame_ms", [0, 5, 15, 25, 40, 100])
def test_frame_length_must_be_10_20_or_30_ms(frame_ms: int) -> None:
    with pytest.raises(ConfigError, match=r"vad\.frame_ms"):
        config.settings_from_dict({"vad": {"frame_ms": frame_ms}})


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamclf", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("flags", "code", "needle"),
    [
        (["--top-k", "0"], EXIT_STARTUP, "model.top_k"),
        (["--threshold", "1.5"], EXIT_STARTUP, "model.threshold"),
        (["--threshold", "nan"], EXIT_STARTUP, "model.threshold"),
        (["--speed", "-1"], EXIT_STARTUP, "capture.speed"),
        (["--rate", "12"], EXIT_STARTUP, "capture.sample_rate"),
        (["--channels", "0"], EXIT_STARTUP, "capture.channels"),
        (["--top-k", "three"], EXIT_USAGE, "--top-k"),
        (["--vad", "psychic"], EXIT_USAGE, "--vad"),
        (["--no-such-flag"], EXIT_USAGE, "--no-such-flag"),
    ],
)
def test_bad_flags_exit_with_one_line_naming_them(flags: list[str], code: int, needle: str) -> None:
    proc = run_cli("listen", "--json", "--source", "-", *flags)
    assert proc.returncode == code, proc.stderr
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    if code == EXIT_STARTUP:
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_config_that_is_not_a_file_or_not_utf8_exits_3(tmp_path: Path) -> None:
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00[vad]\x00")
    for path in (binary, tmp_path, tmp_path / "missing.toml"):
        proc = run_cli("listen", "--json", "--source", "-", "--config", str(path))
        assert proc.returncode == EXIT_STARTUP, (path, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# --------------------------------------------------------------------------- the segmenter


class EnergyDetector:
    """A frame detector that calls a frame speech when it is not digital silence: with it the
    test decides, frame by frame, what the detector says (the level tracker still judges)."""

    sample_rate = RATE
    frame_samples = FRAME
    needs_every_frame = False

    def is_speech(self, frame: np.ndarray) -> bool:
        return bool(np.abs(frame).max() > 1e-4)

    def reset(self) -> None:
        pass


def tone_frames(count: int, level_db: float, phase: int) -> np.ndarray:
    t = (np.arange(count * FRAME) + phase) / RATE
    voiced = np.sin(2 * np.pi * 180 * t) + 0.5 * np.sin(2 * np.pi * 360 * t)
    return (voiced / np.sqrt(0.625) * 10 ** (level_db / 20)).astype(np.float32)


MIN_RUN = 8
"""Voiced stretches at least this many frames long open (and confirm) an utterance."""
MAX_RUN = 80
"""Longest voiced stretch, frames (1.6 s)."""
STEADY_FRAMES = round(TUNING.steady_window_s * 1000 / FRAME_MS)


def never_steady(audio: np.ndarray) -> bool:
    """Whether every ``steady_window_s`` of ``audio`` is more than a tenth silent.

    Tones with short gaps that fill nine tenths of the level tracker's steady window are a new
    steady background by design (a fan, a hum), not speech: they fall outside the promise below.
    """
    loud = np.abs(audio[: len(audio) // FRAME * FRAME].reshape(-1, FRAME)).max(axis=1) > 1e-4
    if len(loud) < STEADY_FRAMES:
        return True
    in_window = np.convolve(loud, np.ones(STEADY_FRAMES, dtype=int), mode="valid")
    return bool(in_window.max() < STEADY_FRAMES * 0.9)


def starts_in_an_echo(runs: list[tuple[int, float, int]]) -> bool:
    """Whether a stretch of MIN_RUN frames or more starts under the echo envelope of a louder one
    before it (16 dB under a loud tone 20 ms earlier): the segmenter takes such frames for that
    tone's reverberation by design (see streamclf.segment.echo), so they may hold nothing open."""
    frame_s = FRAME_MS / 1000.0
    earlier: list[tuple[int, float]] = []  # (frame after the stretch, its level)
    frame = 0
    for count, level, gap in runs:
        allowed = max(
            (
                loud - TUNING.echo_decay_db_per_s * (frame - end + 1) * frame_s - TUNING.echo_tolerance_db
                for end, loud in earlier
            ),
            default=-np.inf,
        )
        if count >= MIN_RUN and level < allowed:
            return True
        earlier.append((frame + count, level))
        frame += count + gap
    return False


runs_strategy = st.lists(
    st.tuples(st.integers(1, MAX_RUN), st.floats(-35.0, -8.0), st.integers(1, 60)), min_size=1, max_size=16
)
"""(voiced frames, their level in dBFS, silent frames after them), repeated."""


def build(runs: list[tuple[int, float, int]]) -> tuple[np.ndarray, list[int]]:
    """Audio (always starting with 0.5 s of digital silence) and the frame indices that belong
    to voiced stretches of at least MIN_RUN frames."""
    parts = [np.zeros(RATE // 2, np.float32)]
    must_cover: list[int] = []
    frame = len(parts[0]) // FRAME
    for count, level, gap in runs:
        parts.append(tone_frames(count, level, frame * FRAME))
        if count >= MIN_RUN:
            must_cover.extend(range(frame, frame + count))
        parts.append(np.zeros(gap * FRAME, np.float32))
        frame += count + gap
    parts.append(np.zeros(RATE, np.float32))  # the last utterance closes on silence
    return np.concatenate(parts), must_cover


def segment_all(segmenter: FrameSegmenter, audio: np.ndarray, cuts: list[int]) -> list[SegmentEvent]:
    events: list[SegmentEvent] = []
    bounds = sorted({0, len(audio), *(c % (len(audio) + 1) for c in cuts)})
    for a, b in itertools.pairwise(bounds):
        events.extend(segmenter.push(audio[a:b]))
    events.extend(segmenter.flush())
    assert_every_start_is_closed(events)
    return events


def assert_every_start_is_closed(events: list[SegmentEvent]) -> None:
    """Each SpeechStart is followed by its Segment or by a SpeechEnd (dropped), before the next."""
    announced = False
    for event in events:
        assert announced != isinstance(event, SpeechStart), events
        announced = isinstance(event, SpeechStart)
    assert not announced, "a speech start was never closed"


def vad_settings(max_s: float) -> config.VadSettings:
    return dataclasses.replace(config.VadSettings(), frame_ms=FRAME_MS, max_utterance_s=max_s)


def run_case(
    runs: list[tuple[int, float, int]], cuts: list[int], max_s: float
) -> tuple[np.ndarray, list[int], list[Segment]]:
    audio, must_cover = build(runs)
    segmenter = FrameSegmenter(vad_settings(max_s), EnergyDetector())
    events = segment_all(segmenter, audio, cuts)
    return audio, must_cover, [e for e in events if isinstance(e, Segment)]


@settings(max_examples=60, deadline=None)
@given(runs_strategy, st.lists(st.integers(0, 10**7), max_size=40), st.sampled_from([0.5, 1.0, 8.0]))
def test_segments_never_overlap_run_backwards_or_exceed_the_maximum(
    runs: list[tuple[int, float, int]], cuts: list[int], max_s: float
) -> None:
    audio, _must_cover, segments = run_case(runs, cuts, max_s)
    max_samples = round(max_s * RATE)
    assert [s.id for s in segments] == list(range(len(segments)))
    for s in segments:
        assert 0 <= s.start_sample < s.end_sample <= len(audio)  # never backwards, inside the stream
        assert s.end_sample - s.start_sample <= max_samples
        assert len(s.audio) == s.end_sample - s.start_sample
        assert np.array_equal(s.audio, audio[s.start_sample : s.end_sample])  # the stream's own samples
    for a, b in itertools.pairwise(segments):
        assert a.end_sample <= b.start_sample  # in order, never overlapping
    # the same stream in one block gives the same segments: block boundaries change nothing
    _, _, whole = run_case(runs, [], max_s)
    assert [(s.start_sample, s.end_sample, s.reason) for s in whole] == [
        (s.start_sample, s.end_sample, s.reason) for s in segments
    ]


@settings(max_examples=60, deadline=None)
@given(runs_strategy, st.lists(st.integers(0, 10**7), max_size=40), st.sampled_from([0.5, 1.0, 8.0]))
def test_every_frame_of_a_voiced_stretch_that_opens_an_utterance_lands_in_exactly_one_segment(
    runs: list[tuple[int, float, int]], cuts: list[int], max_s: float
) -> None:
    assume(not starts_in_an_echo(runs))
    audio, must_cover, segments = run_case(runs, cuts, max_s)
    assume(never_steady(audio))
    covered = np.zeros(len(audio) // FRAME + 1, dtype=int)  # segments holding samples of each frame
    for s in segments:
        covered[s.start_sample // FRAME : -(-s.end_sample // FRAME)] += 1
    missing = [f for f in must_cover if covered[f] != 1]
    assert not missing, f"voiced frames {missing[:10]} not in exactly one segment"


@pytest.fixture(scope="module")
def speech_clips() -> list[np.ndarray]:
    from tests.tiny_model import spoken_word

    return [spoken_word(w, RATE) for w in ("yes", "seven hundred and twelve", "stop")]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.floats(0.05, 1.5), st.floats(-40.0, -6.0)), min_size=1, max_size=12
    ),
    st.sampled_from([10, 20, 30]),
    st.integers(0, 3),
)
def test_real_webrtc_segmenter_on_speech_and_noise_keeps_its_promises(
    speech_clips: list[np.ndarray], pieces: list[tuple[int, float, float]], frame_ms: int, aggressiveness: int
) -> None:
    """Real speech (espeak-ng), white noise and silence in any order, any VAD frame length."""
    rng = np.random.default_rng(len(pieces))
    parts = []
    for kind, seconds, level in pieces:
        if kind < 3:
            clip = speech_clips[kind]
            parts.append(clip * np.float32(10 ** (level / 20) / max(1e-6, float(np.abs(clip).max()))))
        else:
            parts.append((rng.standard_normal(int(seconds * RATE)) * 10 ** (level / 20)).astype(np.float32))
        parts.append(np.zeros(int(seconds * RATE * 0.5), np.float32))
    audio = np.clip(np.concatenate(parts), -1, 1).astype(np.float32)
    vad = dataclasses.replace(
        config.VadSettings(), frame_ms=frame_ms, aggressiveness=aggressiveness, max_utterance_s=1.0
    )
    segmenter = make_segmenter(vad, RATE)
    events = segment_all(segmenter, audio, [int(len(audio) * f) for f in (0.13, 0.5, 0.77)])
    segments = [e for e in events if isinstance(e, Segment)]
    starts = [e for e in events if isinstance(e, SpeechStart)]
    assert segmenter.samples_seen == len(audio)
    for s in segments:
        assert 0 <= s.start_sample < s.end_sample <= len(audio)
        assert s.end_sample - s.start_sample <= RATE
    for a, b in itertools.pairwise(segments):
        assert a.end_sample <= b.start_sample
    # every segment was announced by a speech start inside it
    for s in segments:
        assert any(s.start_sample <= st_.sample < s.end_sample for st_ in starts), s
