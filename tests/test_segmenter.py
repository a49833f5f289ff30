"""The segmenter on generated audio with known boundaries: tone bursts, silence, noise and speech."""

from __future__ import annotations

import dataclasses
import itertools
import subprocess
import sys
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamclf.config import VadSettings
from streamclf.errors import StartupError
from streamclf.segment import Segment, SpeechEnd, SpeechStart, make_segmenter
from streamclf.vad.murmur import MurmurCheck
from tests.audio import (
    RATE,
    TEN_WORDS,
    needs_espeak,
    needs_flite,
    spoken_words,
    ten_word_stream,
    tone_bursts,
    vowel_tone,
)
from trainer.augment import reverberate
from trainer.noise import make_noise, set_level_dbfs
from trainer.streams import Stream, build_stream
from trainer.tts import Voice, synthesize

EXACT = VadSettings(preroll_ms=0, tail_ms=0, masked_pad=False)
"""No padding: segment boundaries are the detected speech boundaries."""


def run(audio: np.ndarray, vad: VadSettings = EXACT, blocks: Sequence[int] | None = None) -> list[Segment]:
    seg = make_segmenter(vad, RATE)
    events = []
    if blocks is None:
        events += seg.push(audio)
    else:
        pos = 0
        for size in blocks:
            events += seg.push(audio[pos : pos + size])
            pos += size
        events += seg.push(audio[pos:])
    events += seg.flush()
    return [e for e in events if isinstance(e, Segment)]


def bounds(segments: list[Segment]) -> list[tuple[float, float]]:
    return [(s.start, s.end) for s in segments]


def assert_within(found: list[Segment], truth: Sequence[tuple[float, float]], tolerance: float) -> None:
    assert len(found) == len(truth), (bounds(found), truth)
    for seg, (start, end) in zip(found, truth, strict=True):
        assert abs(seg.start - start) <= tolerance, (seg.start, start)
        assert abs(seg.end - end) <= tolerance, (seg.end, end)


def test_tone_bursts_over_silence_are_found_within_60_ms() -> None:
    audio, truth = tone_bursts([(0.5, 0.8), (1.5, 2.5), (3.0, 3.2), (4.1, 5.3)], total_s=6.0)
    assert_within(run(audio), truth, 0.06)


@pytest.mark.parametrize("noise", ["white", "pink", "hum"])
def test_tone_bursts_over_noise_are_found_within_60_ms(noise: str) -> None:
    audio, truth = tone_bursts(
        [(1.0, 1.4), (2.2, 2.5), (3.5, 4.5)],
        total_s=5.5,
        noise=noise,
        noise_dbfs=-40.0,
        rng=np.random.default_rng(5),
    )
    assert_within(run(audio), truth, 0.06)


def test_default_padding_adds_preroll_and_tail_and_stays_within_60_ms() -> None:
    audio, truth = tone_bursts([(0.5, 0.9), (2.0, 2.6)], total_s=3.5)
    vad = VadSettings()
    found = run(audio, vad)
    assert_within(found, truth, 0.06)
    exact = run(audio)
    for padded, bare in zip(found, exact, strict=True):
        assert padded.start_sample == bare.start_sample - vad.preroll_ms * RATE // 1000
        assert padded.end_sample == bare.end_sample + vad.tail_ms * RATE // 1000


@pytest.mark.parametrize("kind", ["silence", "white", "pink", "brown", "hum", "clicks", "clatter"])
def test_no_segments_in_silence_or_noise(kind: str) -> None:
    rng = np.random.default_rng(11)
    if kind == "silence":
        audio = np.zeros(10 * RATE, dtype=np.float32)
    else:
        audio = set_level_dbfs(make_noise(kind, 10 * RATE, rng, RATE), -35.0)
    assert run(audio, VadSettings()) == []


@needs_espeak
def test_espeak_words_are_found_within_60_ms() -> None:
    stream = ten_word_stream(np.random.default_rng(3))
    truth = [(w.start, w.end) for w in stream.words]
    assert_within(run(stream.audio), truth, 0.06)
    assert_within(run(stream.audio, VadSettings()), truth, 0.1)


@needs_espeak
@pytest.mark.parametrize("level", [-50.0, -6.0])
def test_quiet_and_loud_talkers(level: float) -> None:
    stream = ten_word_stream(np.random.default_rng(4), level_dbfs=level)
    assert_within(run(stream.audio), [(w.start, w.end) for w in stream.words], 0.06)


@needs_espeak
@pytest.mark.parametrize("noise", ["white", "pink", "clatter"])
def test_words_in_noise_at_10_db_snr(noise: str) -> None:
    stream = ten_word_stream(np.random.default_rng(6), noise=noise, snr_db=10.0, lead_s=2.0)
    found = run(stream.audio, VadSettings())
    assert len(found) == 10, bounds(found)
    errors = [
        max(abs(s.start - w.start), abs(s.end - w.end)) for s, w in zip(found, stream.words, strict=True)
    ]
    assert max(errors) <= 0.35, errors  # soft word edges drown in the noise...
    assert sorted(errors)[8] <= 0.2, errors  # ...but nine words in ten are within 200 ms


@needs_espeak
@pytest.mark.parametrize("interference", ["offset", "hum 50 Hz", "hum 60 Hz"])
def test_a_sound_cards_offset_or_mains_hum_does_not_hide_a_quiet_talker(interference: str) -> None:
    stream = ten_word_stream(np.random.default_rng(4), level_dbfs=-45.0)
    t = np.arange(len(stream.audio)) / RATE
    if interference == "offset":
        extra = np.full(len(t), 0.03)  # -30 dBFS
    else:
        hz = float(interference.split()[1])
        extra = 10 ** (-35.0 / 20.0) * np.sqrt(2.0) * np.sin(2.0 * np.pi * hz * t)
    audio = (stream.audio + extra).astype(np.float32)
    found = run(audio, VadSettings())
    # (what is left of the hum masks the softest word edges, as noise does: default padding, and
    # its masked-edge extra)
    assert_within(found, [(w.start, w.end) for w in stream.words], 0.15)
    for segment in found:  # segments carry the audio as it came, offset and hum included
        np.testing.assert_array_equal(segment.audio, audio[segment.start_sample : segment.end_sample])


@needs_espeak
def test_words_with_short_gaps_stay_apart() -> None:
    stream = ten_word_stream(np.random.default_rng(8), gap_range_s=(0.3, 0.35))
    found = run(stream.audio, VadSettings())
    assert len(found) == 10, bounds(found)


def test_short_blips_are_dropped_and_min_length_is_respected() -> None:
    audio, _ = tone_bursts([(0.5, 0.54), (1.5, 1.9)], total_s=2.5)
    found = run(audio, VadSettings(min_utterance_ms=200))
    assert_within(found, [(1.5, 1.9)], 0.06)
    assert run(audio, VadSettings(min_utterance_ms=500)) == []


def syllables(duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Continuous 'speech' without pauses: a vowel tone with a 4 Hz syllable-like envelope."""
    tone = vowel_tone(duration_s, rng)
    t = np.arange(len(tone)) / RATE
    envelope = 0.2 + 0.8 * np.abs(np.sin(np.pi * 4.0 * t))
    return (tone * envelope).astype(np.float32)


def test_long_utterance_is_cut_at_max_length_and_goes_on() -> None:
    rng = np.random.default_rng(2)
    audio = np.concatenate([np.zeros(RATE // 2), syllables(20.0, rng), np.zeros(RATE)]).astype(np.float32)
    vad = VadSettings(max_utterance_s=3.0)
    found = run(audio, vad)
    assert len(found) >= 7
    assert all(s.end_sample - s.start_sample <= 3 * RATE for s in found)
    assert [s.reason for s in found[:-1]] == ["max_length"] * (len(found) - 1)
    assert found[-1].reason == "silence"
    for before, after in itertools.pairwise(found):
        assert after.start_sample == before.end_sample  # cut, not lost
    assert found[0].start == pytest.approx(0.5, abs=0.06)
    assert found[-1].end == pytest.approx(20.5, abs=0.1)


@needs_espeak
def test_continuous_speech_is_cut_into_pieces_no_longer_than_max() -> None:
    text = (
        "the quick brown fox jumps over the lazy dog while seven hungry cats watch from the kitchen "
        "window and the rain keeps falling on the old red roof of the house next to the station "
        "where a long train is slowly pulling away towards the mountains in the north"
    )
    speech = synthesize(text, Voice("espeak-ng", "en-us", rate=120))
    assert len(speech) > 18 * RATE
    found = run(np.concatenate([speech, np.zeros(RATE, np.float32)]), VadSettings(max_utterance_s=2.0))
    assert all(s.end_sample - s.start_sample <= 2 * RATE for s in found)
    assert sum(s.reason == "max_length" for s in found) >= 3
    covered = sum(s.end_sample - s.start_sample for s in found)
    assert covered > 0.8 * len(speech)


def test_flush_emits_the_utterance_in_progress() -> None:
    audio, _ = tone_bursts([(0.5, 1.5)], total_s=1.5)
    seg = make_segmenter(EXACT, RATE)
    pushed = seg.push(audio)
    assert [type(e) for e in pushed] == [SpeechStart]
    flushed = seg.flush()
    assert len(flushed) == 1 and isinstance(flushed[0], Segment)
    assert flushed[0].reason == "flush"
    assert flushed[0].start == pytest.approx(0.5, abs=0.06)


def test_speech_start_comes_before_its_segment_with_the_onset_sample() -> None:
    audio, _ = tone_bursts([(1.0, 1.6)], total_s=2.5)
    seg = make_segmenter(VadSettings(), RATE)
    events = seg.push(audio) + seg.flush()
    assert [type(e) for e in events] == [SpeechStart, Segment]
    start, segment = events
    assert isinstance(start, SpeechStart) and isinstance(segment, Segment)
    assert start.sample / RATE == pytest.approx(1.0, abs=0.03)
    assert segment.start_sample == start.sample - VadSettings().preroll_ms * RATE // 1000


@needs_espeak
def test_segment_audio_is_the_stream_slice_and_blocks_of_any_size_give_the_same_segments() -> None:
    stream = ten_word_stream(np.random.default_rng(9), noise="pink", snr_db=15.0)
    whole = run(stream.audio, VadSettings())
    assert len(whole) == 10
    rng = np.random.default_rng(1)
    for blocks in ([1] * 500 + [7] * 300, list(rng.integers(1, 5000, size=200)), [160] * 2000, [4096] * 300):
        again = run(stream.audio, VadSettings(), blocks)
        assert [(s.start_sample, s.end_sample, s.reason) for s in again] == [
            (s.start_sample, s.end_sample, s.reason) for s in whole
        ]
    for seg in whole:
        assert len(seg.audio) == seg.end_sample - seg.start_sample
        np.testing.assert_array_equal(seg.audio, stream.audio[seg.start_sample : seg.end_sample])


def test_reset_starts_a_new_stream() -> None:
    audio, _ = tone_bursts([(0.5, 0.9), (1.5, 2.0)], total_s=2.5)
    seg = make_segmenter(VadSettings(), RATE)
    first = [e for e in seg.push(audio) + seg.flush() if isinstance(e, Segment)]
    assert seg.samples_seen == len(audio)
    seg.reset()
    assert seg.samples_seen == 0
    second = [e for e in seg.push(audio) + seg.flush() if isinstance(e, Segment)]
    assert [(s.id, s.start_sample, s.end_sample) for s in first] == [
        (s.id, s.start_sample, s.end_sample) for s in second
    ]


def test_unsupported_sample_rate_fails_start_up() -> None:
    with pytest.raises(StartupError, match="sample rate"):
        make_segmenter(VadSettings(), 22050)


# --- silero-vad backend --------------------------------------------------------------

SILERO = VadSettings(backend="silero")


@needs_espeak
def test_silero_backend_finds_espeak_words() -> None:
    pytest.importorskip("silero_vad")
    pytest.importorskip("onnxruntime")
    stream = ten_word_stream(np.random.default_rng(3), voice=Voice("espeak-ng", "en-gb", rate=160, pitch=40))
    found = run(stream.audio, SILERO)
    assert_within(found, [(w.start, w.end) for w in stream.words], 0.1)


@needs_espeak
def test_silero_backend_still_responds_after_a_minute_of_clatter() -> None:
    pytest.importorskip("silero_vad")
    rng = np.random.default_rng(12)
    clatter = set_level_dbfs(make_noise("clatter", 60 * RATE, rng, RATE), -35.0)
    words = spoken_words(["stop", "seven"])
    gap = np.zeros(RATE, dtype=np.float32)
    tail = np.concatenate([set_level_dbfs(words[0], -20.0), gap, set_level_dbfs(words[1], -20.0), gap])
    audio = np.concatenate(
        [clatter, tail + set_level_dbfs(make_noise("clatter", len(tail), rng, RATE), -35.0)]
    )
    found = run(audio, SILERO)
    late = [s for s in found if s.start > 59.5]
    assert len(late) == 2, bounds(found)


@needs_espeak
def test_silero_backend_finds_words_in_a_reverberant_room() -> None:
    # with every frame brought to the same level before the model, a room's smoothing left silero
    # nothing of a word's contour to hear: it missed one to three words in ten (RT60 0.6 s)
    pytest.importorskip("silero_vad")
    rng = np.random.default_rng(0)
    words = spoken_words(TEN_WORDS)
    levels = list(rng.uniform(-40.0, -10.0, len(words)))
    gaps = list(rng.uniform(0.6, 1.2, len(words) - 1))
    stream = build_stream(words, list(TEN_WORDS), gaps, rng, level_dbfs=levels, lead_s=1.0)
    found = run(reverberate(stream.audio, RATE, rng, 0.6, 2.0), SILERO)
    assert found_once(found, [(w.start, w.end) for w in stream.words]) == len(words), bounds(found)


@pytest.mark.parametrize(
    ("settings", "names"),
    [("backend='silero'", "silero-vad"), ("murmur_check=True", "vad.murmur_check")],
)
def test_missing_silero_package_is_a_clear_startup_error(settings: str, names: str) -> None:
    """Never a silent fallback: run with silero_vad made unimportable."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'silero_vad': raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from streamclf.config import VadSettings\n"
        "from streamclf.errors import StartupError\n"
        "from streamclf.segment import make_segmenter\n"
        "try:\n"
        f"    make_segmenter(VadSettings({settings}), 16000)\n"
        "except StartupError as exc:\n"
        "    print(exc); sys.exit(3)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert names in proc.stdout and "pip install" in proc.stdout
    assert "Traceback" not in proc.stderr


# --- properties ----------------------------------------------------------------------

piece = st.tuples(
    st.sampled_from(["silence", "tone", "white", "clatter"]),
    st.floats(0.02, 2.5),
    st.floats(-55.0, -6.0),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(piece, min_size=1, max_size=8),
    max_s=st.floats(0.5, 3.0),
    block=st.integers(1, 4000),
    seed=st.integers(0, 2**16),
)
def test_segments_never_overlap_run_backwards_or_exceed_max(
    pieces: list[tuple[str, float, float]], max_s: float, block: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    parts = []
    for kind, seconds, level in pieces:
        n = max(1, int(seconds * RATE))
        if kind == "silence":
            parts.append(np.zeros(n, dtype=np.float32))
        elif kind == "tone":
            parts.append(set_level_dbfs(vowel_tone(n / RATE, rng)[:n], level))
        else:
            parts.append(set_level_dbfs(make_noise(kind, n, rng, RATE), level))
    audio = np.concatenate(parts)
    vad = dataclasses.replace(VadSettings(), max_utterance_s=max_s)
    seg = make_segmenter(vad, RATE)
    events = []
    for pos in range(0, len(audio), block):
        events += seg.push(audio[pos : pos + block])
    events += seg.flush()
    segments = [e for e in events if isinstance(e, Segment)]
    max_samples = round(max_s * RATE)
    assert [s.id for s in segments] == list(range(len(segments)))
    previous_end = 0
    for s in segments:
        assert previous_end <= s.start_sample < s.end_sample <= len(audio)
        assert s.end_sample - s.start_sample <= max_samples
        assert len(s.audio) == s.end_sample - s.start_sample
        previous_end = s.end_sample
    starts = [e.sample for e in events if isinstance(e, SpeechStart)]
    assert starts == sorted(starts)
    assert seg.samples_seen == len(audio)


def clink_train(duration_s: float, level_dbfs: float, rng: np.random.Generator) -> np.ndarray:
    """Dish clinks every 50-90 ms: decaying inharmonic high partials, like cutlery on a plate."""
    out = np.zeros(round(duration_s * RATE))
    pos = 0
    while pos < len(out):
        t = np.arange(round(0.08 * RATE)) / RATE
        hit = sum(np.sin(2 * np.pi * rng.uniform(2000, 6000) * t) for _ in range(3)) * np.exp(-t / 0.02)
        stop = min(len(out), pos + len(hit))
        out[pos:stop] += hit[: stop - pos]
        pos += round(rng.uniform(0.05, 0.09) * RATE)
    return set_level_dbfs(out, level_dbfs)


@needs_espeak
@pytest.mark.parametrize("text", ["go", "seven", "down", "zero"])
def test_clatter_right_after_a_word_does_not_hold_its_end_back(text: str) -> None:
    rng = np.random.default_rng(21)
    (word,) = spoken_words([text])
    start, end = RATE, RATE + len(word)
    audio = set_level_dbfs(make_noise("pink", end + 2 * RATE, rng, RATE), -60.0)
    audio[start:end] += set_level_dbfs(word, -25.0)
    clatter_start = end + round(0.04 * RATE)
    audio[clatter_start : clatter_start + RATE // 2] += clink_train(0.5, -28.0, rng)
    seg = make_segmenter(VadSettings(), RATE)
    emitted = []
    for pos in range(0, len(audio), 160):
        for event in seg.push(audio[pos : pos + 160]):
            if isinstance(event, Segment):
                emitted.append((event, seg.samples_seen))
    assert len(emitted) == 1, [(e.start, e.end) for e, _ in emitted]
    segment, at = emitted[0]
    assert segment.start_sample < end and segment.end_sample > start
    # declared a hangover (160 ms) and at most the 60 ms unvoiced hold after the word, not after
    # the half second of clatter
    assert (at - end) / RATE <= 0.25, (at - end) / RATE


@pytest.mark.parametrize("level", [-45.0, -30.0, -20.0])
def test_murmur_already_under_way_when_the_stream_starts_is_not_speech(level: float) -> None:
    rng = np.random.default_rng(int(-level))
    audio = set_level_dbfs(make_noise("babble", 3 * RATE, rng, RATE), level)
    assert [s for s in run(audio, VadSettings()) if s.start < 1.0] == []


def test_murmur_after_a_quiet_first_frame_is_not_speech() -> None:
    # the noise floor starts at the first frame's level: 30 ms of a quiet room 15-20 dB under the
    # murmur that follows (a microphone that opens on a lull) left it far under the murmur. Every
    # murmur frame then passed for speech, and the floor rose over speech at 2 dB/s only: 36 pieces
    # of 3 s gave 9.1 s of segments, most of them whole pieces. In the cold start the floor now
    # follows every frame at the warm-up's 20 dB/s.
    seconds = 0.0
    for level, below, seed in itertools.product([-45.0, -35.0, -25.0], [15.0, 20.0], range(6)):
        rng = np.random.default_rng(seed)
        lull = set_level_dbfs(make_noise("pink", round(0.03 * RATE), rng, RATE), level - below)
        murmur = set_level_dbfs(make_noise("babble", 3 * RATE, rng, RATE), level)
        found = run(np.concatenate([lull, murmur]).astype(np.float32), VadSettings())
        seconds += sum(s.end - s.start for s in found)
    assert seconds <= 3.0, seconds


@pytest.mark.slow
def test_the_murmur_check_keeps_swells_of_distant_talkers_out() -> None:
    # twelve pieces of babble alone, 20 s each at -50..-25 dBFS: a swell of the distant talkers
    # raises level and spectrum like a near one; silero-vad mostly hears no single voice in it
    pieces = []
    for seed in range(12):
        rng = np.random.default_rng(seed)
        babble = make_noise("babble", 20 * RATE, rng, RATE)
        pieces.append(set_level_dbfs(babble, float(rng.uniform(-50, -25))))
    checked = sum(len(run(piece, VadSettings())) for piece in pieces)
    unchecked = sum(len(run(piece, VadSettings(murmur_check=False))) for piece in pieces)
    assert checked <= unchecked - 2, (checked, unchecked)


def test_the_murmur_check_runs_only_over_murmur() -> None:
    rng = np.random.default_rng(5)
    seg = make_segmenter(VadSettings(), RATE)
    assert seg.murmur_check is not None
    seg.push(set_level_dbfs(make_noise("pink", 5 * RATE, rng, RATE), -40.0))
    assert seg.murmur_check.probability == 0.0  # never ran: pink noise is no murmur
    seg.push(set_level_dbfs(make_noise("babble", 5 * RATE, rng, RATE), -40.0))
    assert seg.murmur_check.probability > 0.0
    assert make_segmenter(VadSettings(murmur_check=False), RATE).murmur_check is None


def test_the_murmur_check_hears_the_same_whatever_the_frame_length() -> None:
    rng = np.random.default_rng(6)
    audio = set_level_dbfs(make_noise("babble", 512 * 30, rng, RATE), -25.0).astype(np.float32)
    heard = []
    for frame in (320, 480):
        check = MurmurCheck(RATE, reset_after_s=5.0)
        for pos in range(0, len(audio), frame):
            check.push(audio[pos : pos + frame])
        heard.append(check.probability)
    assert heard[0] == heard[1] > 0.0


def found_once(found: list[Segment], words: Sequence[tuple[float, float]]) -> int:
    """Words overlapped by exactly one segment that overlaps no other word."""

    def hits(start: float, end: float) -> list[Segment]:
        return [s for s in found if s.start < end and s.end > start]

    def words_of(segment: Segment) -> int:
        return sum(1 for ws, we in words if segment.start < we and segment.end > ws)

    return sum(1 for ws, we in words if len(hits(ws, we)) == 1 and words_of(hits(ws, we)[0]) == 1)


@needs_espeak
@needs_flite
@pytest.mark.parametrize(
    ("voice", "seed"),
    [pytest.param(Voice("espeak-ng", "en-us"), seed, id=f"espeak-{seed}") for seed in (100, 102)]
    + [pytest.param(Voice("flite", "slt"), seed, id=f"flite-{seed}") for seed in (100, 101, 102, 104)],
)
def test_words_over_murmur_at_10_db_snr_are_each_found_once(voice: Voice, seed: int) -> None:
    # eight distant talkers 10 dB under the speaker: every frame of the murmur is voiced speech to
    # webrtcvad, and its level swells as much as a word's; the word's own spectrum stands out
    stream = ten_word_stream(
        np.random.default_rng(seed), voice=voice, noise="babble", snr_db=10.0, lead_s=2.0, level_dbfs=-30.0
    )
    found = run(stream.audio, VadSettings())
    assert found_once(found, [(w.start, w.end) for w in stream.words]) == 10, bounds(found)
    assert len(found) == 10, bounds(found)


@needs_espeak
@pytest.mark.parametrize("before", ["digital silence", "quiet room"])
@pytest.mark.parametrize("noise", ["pink", "hum"])
def test_a_fan_switched_on_becomes_background_and_words_over_it_are_found(before: str, noise: str) -> None:
    # 2 s of nothing (zeros, as a sound card or a padded file delivers) or of a quiet room, then a
    # steady noise 30 dB louder for 7 s, with two words over it: the noise's start may pass for
    # speech, its next seconds must not (they did, as one segment after another until the floor
    # caught up 3 s later)
    rng = np.random.default_rng(7)
    quiet = np.zeros(2 * RATE, np.float32)
    if before == "quiet room":
        quiet = set_level_dbfs(make_noise("pink", 2 * RATE, rng, RATE), -70.0)
    audio = np.concatenate([quiet, set_level_dbfs(make_noise(noise, 7 * RATE, rng, RATE), -40.0)])
    words = []
    for text, at in (("seven", 5.5), ("stop", 7.5)):
        (word,) = spoken_words([text])
        start = round(at * RATE)
        audio[start : start + len(word)] += set_level_dbfs(word, -22.0)
        words.append((at, at + len(word) / RATE))
    found = run(audio, VadSettings())
    assert found_once(found, words) == 2, bounds(found)
    noise_segments = [s for s in found if not any(s.start < we and s.end > ws for ws, we in words)]
    assert len(noise_segments) <= 1, bounds(noise_segments)


def test_an_announced_utterance_that_is_dropped_is_closed_by_a_speech_end() -> None:
    # a fan or a television switched on is announced as speech, then found to be a steady
    # background and dropped: a consumer of speech start/end events must not be left thinking
    # someone is still talking
    ends = 0
    for kind, seed in itertools.product(["pink", "babble"], range(8)):
        rng = np.random.default_rng(seed)
        quiet = set_level_dbfs(make_noise("pink", 2 * RATE, rng, RATE), -70.0)
        audio = np.concatenate([quiet, set_level_dbfs(make_noise(kind, 5 * RATE, rng, RATE), -40.0)])
        seg = make_segmenter(VadSettings(), RATE)
        events = seg.push(audio) + seg.flush()
        kinds = [type(e).__name__ for e in events]
        announced = False
        for event in events:
            assert announced != isinstance(event, SpeechStart), kinds  # start, then segment or end
            announced = isinstance(event, SpeechStart)
        assert not announced, kinds
        dropped = [e for e in events if isinstance(e, SpeechEnd)]
        assert all(2 * RATE <= e.sample <= len(audio) for e in dropped), dropped
        ends += len(dropped)
    assert ends > 0


def test_a_fan_switched_on_in_a_quiet_room_is_not_an_utterance() -> None:
    # pink noise 30 dB over a quiet room: webrtcvad says speech, then not, then speech again, while
    # the sound goes on; until the floor learns it, none of that may become a segment
    found = []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        quiet = set_level_dbfs(make_noise("pink", 2 * RATE, rng, RATE), -70.0)
        audio = np.concatenate([quiet, set_level_dbfs(make_noise("pink", 6 * RATE, rng, RATE), -40.0)])
        found += bounds(run(audio, VadSettings()))
    assert len(found) <= 1, found


@needs_espeak
def test_digital_silence_around_words_over_a_faint_hiss_teaches_nothing() -> None:
    # text-to-speech output ends each word with exact zeros; pasted between stretches of a faint
    # steady hiss, the zeros must not drag the floor down (the hiss would then stand 40 dB out of
    # it, be taken for a new background, and the tracker would start over just as a word starts)
    rng = np.random.default_rng(5)
    pieces: list[np.ndarray] = []
    words = []
    at = 0
    for word in spoken_words(["stop", "stop", "stop", "left", "seven"]):
        hiss = set_level_dbfs(make_noise("white", round(1.3 * RATE), rng, RATE), -60.0)
        zeros = np.zeros(round(0.3 * RATE), np.float32)
        pieces += [hiss, set_level_dbfs(word, -20.0), zeros]
        start = at + len(hiss)
        words.append((start / RATE, (start + len(word)) / RATE))
        at = start + len(word) + len(zeros)
    found = run(np.concatenate(pieces), VadSettings())
    assert found_once(found, words) == 5, bounds(found)
    assert len(found) == 5, bounds(found)


@needs_espeak
@needs_flite
def test_murmur_running_into_a_word_rarely_drags_its_onset_forward() -> None:
    # a swell of the murmur that runs straight into a word is speech to the detector and stands
    # out of the noise; it must not become the word's onset. 160 words, two voices, eight seeds:
    # the first onset rule started 12 of them more than 170 ms early (up to 390 ms); keeping 60 ms
    # of weak lead before the first clear frame still started 18 more than 100 ms early.
    early = 0
    words = 0
    for voice in (Voice("espeak-ng", "en-us"), Voice("flite", "slt")):
        for seed in range(100, 108):
            rng = np.random.default_rng(seed)
            stream = ten_word_stream(rng, voice=voice, noise="babble", snr_db=10, lead_s=2.0, level_dbfs=-30)
            found = run(stream.audio, VadSettings())
            for word in stream.words:
                hits = [s for s in found if s.start < word.end and s.end > word.start]
                words += 1
                early += len(hits) == 1 and hits[0].start < word.start - 0.1
    assert words == 160
    assert early <= 4, early


def brighter(audio: np.ndarray, up_to_db: float = 12.0) -> np.ndarray:
    """``audio`` with its treble raised (undoes the babble's distance low-pass, by at most ``up_to_db``)."""
    spectrum = np.fft.rfft(audio)
    freqs = np.fft.rfftfreq(len(audio), 1.0 / RATE)
    spectrum *= np.minimum(1.0 + (freqs / 3000.0) ** 2, 10.0 ** (up_to_db / 20.0))
    return np.fft.irfft(spectrum, len(audio))


@needs_espeak
@needs_flite
@pytest.mark.slow
def test_murmur_whose_talkers_change_is_learned_again() -> None:
    # the murmur changes after 2.5 s (a door opens: nearer talkers, brighter): every frame of it
    # stands out of the spectrum learned before and passes for speech, so nothing teaches the
    # spectrum again unless murmur that goes on with hardly a pause is taken for background.
    # Without that, 160 words over eight seeds: 141 found once, 19 onsets more than 200 ms off (with
    # it: 148 and 8).
    once = far = words = 0
    for voice in (Voice("espeak-ng", "en-us"), Voice("flite", "slt")):
        for seed in range(8):
            rng = np.random.default_rng(seed)
            stream = ten_word_stream(rng, voice=voice, lead_s=3.0, level_dbfs=-30.0)
            n = len(stream.audio)
            before = set_level_dbfs(make_noise("babble", n, rng, RATE), -40.0)
            after = set_level_dbfs(brighter(make_noise("babble", n, rng, RATE)), -40.0)
            fade = np.clip((np.arange(n) - 2.5 * RATE) / (0.05 * RATE), 0.0, 1.0)
            audio = (stream.audio + before * (1.0 - fade) + after * fade).astype(np.float32)
            found = run(audio, VadSettings())
            truth = [(w.start, w.end) for w in stream.words]
            once += found_once(found, truth)
            for start, end in truth:
                hits = [s for s in found if s.start < end and s.end > start]
                words += 1
                far += len(hits) == 1 and abs(hits[0].start - start) > 0.2
    assert words == 160
    assert once >= 146, once
    assert far <= 12, far


@needs_espeak
@needs_flite
@pytest.mark.slow
def test_a_swell_of_murmur_well_under_the_talker_rarely_holds_a_words_end() -> None:
    # murmur at -45 dBFS, words at -25, and right after each word the murmur swells to -35 for
    # 0.4 s: well above the murmur, but 10 dB under the talker who has just spoken. 160 words, two
    # voices, eight seeds: when any voiced frame well above the murmur held the utterance, 40 ends
    # were declared more than 300 ms after the word; holding only within 12 dB of the utterance's
    # loudest frame, 31 (the swell's loudest frames still hold some).
    late = words = 0
    for voice in (Voice("espeak-ng", "en-us"), Voice("flite", "slt")):
        for seed in range(8):
            rng = np.random.default_rng(seed)
            stream = ten_word_stream(rng, voice=voice, lead_s=2.0, level_dbfs=-25.0, gap_range_s=(0.8, 1.5))
            n = len(stream.audio)
            murmur = set_level_dbfs(make_noise("babble", n, rng, RATE), -45.0)
            swell = set_level_dbfs(make_noise("babble", n, rng, RATE), -35.0)
            envelope = np.zeros(n)
            for word in stream.words:
                start = round((word.end + 0.02) * RATE)
                envelope[start : start + round(0.4 * RATE)] = np.hanning(round(0.4 * RATE))
            audio = (stream.audio + murmur + swell * envelope).astype(np.float32)
            seg = make_segmenter(VadSettings(), RATE)
            declared: list[tuple[Segment, float]] = []
            for pos in range(0, n, 480):
                declared += [
                    (e, min(pos + 480, n) / RATE)
                    for e in seg.push(audio[pos : pos + 480])
                    if isinstance(e, Segment)
                ]
            for word in stream.words:
                hits = [at for s, at in declared if s.start < word.end and s.end > word.start]
                words += 1
                late += len(hits) == 1 and hits[0] - word.end > 0.3
    assert words == 160
    assert late <= 35, late


@needs_espeak
@pytest.mark.parametrize("text", ["go", "seven", "down", "left"])
def test_a_clink_just_before_a_word_does_not_move_its_onset(text: str) -> None:
    rng = np.random.default_rng(len(text))
    (word,) = spoken_words([text])
    start = round(1.5 * RATE)
    audio = set_level_dbfs(make_noise("pink", start + len(word) + 2 * RATE, rng, RATE), -60.0)
    audio[start : start + len(word)] += set_level_dbfs(word, -25.0)
    clinks = clink_train(0.3, -28.0, rng)
    clinks_start = start - round(0.06 * RATE) - len(clinks)  # the clinks stop 60 ms before the word
    audio[clinks_start : clinks_start + len(clinks)] += clinks
    found = run(audio, VadSettings())
    assert len(found) == 1, bounds(found)
    # the default 40 ms pre-roll, not the 300 ms of clinks
    assert abs(found[0].start_sample - start) / RATE <= 0.06, bounds(found)


@needs_espeak
@pytest.mark.parametrize("text", ["up", "eight", "on", "go", "seven", "left"])
def test_clinks_running_into_a_word_do_not_move_its_onset(text: str) -> None:
    # no pause between the clinks and the word restarts the candidate: the clinks are speech to
    # the detector and stand out of the noise, but they ring at a few tones where speech hisses
    # or is voiced, and the onset moves past them (it was 100-300 ms early)
    rng = np.random.default_rng(len(text) + 30)
    (word,) = spoken_words([text])
    start = round(1.5 * RATE)
    audio = set_level_dbfs(make_noise("pink", start + len(word) + 2 * RATE, rng, RATE), -60.0)
    audio[start : start + len(word)] += set_level_dbfs(word, -25.0)
    clinks = clink_train(0.3, -28.0, rng)
    audio[start - len(clinks) : start] += clinks  # the last clink rings up to the word
    found = run(audio, VadSettings())
    assert len(found) == 1, bounds(found)
    assert abs(found[0].start_sample - start) / RATE <= 0.06, bounds(found)


def every_voice_saying(
    texts: Sequence[str], voices: Sequence[Voice], seed: int, level: float, noise: str | None
) -> Stream:
    """Each voice saying each text, 0.5-1.0 s apart, in ``noise`` at 10 dB SNR."""
    audios = [synthesize(t, v, RATE) for v in voices for t in texts]
    rng = np.random.default_rng(seed)
    gaps = list(rng.uniform(0.5, 1.0, size=len(audios) - 1))
    return build_stream(
        audios, list(texts) * len(voices), gaps, rng, level_dbfs=level, noise=noise, snr_db=10.0, lead_s=1.5
    )


S_CLUSTER_VOICES = (
    Voice("espeak-ng", "en-us"),
    Voice("espeak-ng", "en-gb+f2", 180, 60),
    Voice("flite", "slt"),
    Voice("flite", "awb"),
)
"""Voices whose "s" stands out of pink noise at 10 dB SNR (flite's kal says it under the noise)."""


@needs_espeak
@needs_flite
def test_a_words_first_s_before_a_stop_is_part_of_the_word() -> None:
    # "stop", "skip", "start": the "s" hisses, then the stop's closure is a pause of 50-100 ms
    # before the vowel. That pause restarted the candidate, and the onset fell on the vowel:
    # after the word's start in 15 of these 16 words, over 100 ms after it in 8
    stream = every_voice_saying(["stop", "skip", "start", "spin"], S_CLUSTER_VOICES, 5, -25.0, "pink")
    words = [(w.start, w.end) for w in stream.words]
    found = run(stream.audio, VadSettings())
    assert found_once(found, words) == len(words), bounds(found)
    errors = [round(s.start - start, 3) for s, (start, _) in zip(found, words, strict=True)]
    assert sum(e > 0.0 for e in errors) <= 4, errors
    assert sum(e > 0.1 for e in errors) <= 3, errors


@needs_espeak
@needs_flite
@pytest.mark.slow
def test_a_words_first_s_before_a_stop_is_part_of_the_word_over_murmur() -> None:
    # over murmur, a frame at the edge of the "s" holds as much of the murmur's voiced band as of
    # the hiss, so it counts as voiced, though that band stands no higher than the murmur's. Taken
    # for the voice, it ended the hiss lead, the closure restarted the candidate and the onset fell
    # on the vowel: 11 of these 64 words started more than 100 ms late
    errors: list[float] = []
    texts = ["stop", "skip", "start", "spin"]
    for seed in range(2, 6):
        stream = every_voice_saying(texts, S_CLUSTER_VOICES, seed, -25.0, "babble")
        words = [(w.start, w.end) for w in stream.words]
        found = run(stream.audio, VadSettings())
        assert found_once(found, words) == len(words), bounds(found)
        errors += [round(s.start - start, 3) for s, (start, _) in zip(found, words, strict=True)]
    assert len(errors) == 64
    assert sum(e > 0.1 for e in errors) <= 2, errors
    assert sum(e < -0.2 for e in errors) <= 1, errors


HIGH_FRONT_VOICES = tuple(
    Voice("espeak-ng", name, 170, pitch)
    for name, pitch in (("en-us+Storm", 50), ("en-us+grandma", 50), ("en-us+john", 50), ("en-us+pablo", 20))
)
"""Voices whose front vowels ("yes", "eight") put most of their energy above 1.5 kHz."""


@needs_espeak
@pytest.mark.parametrize(
    ("noise", "level"), [(None, -45.0), (None, -15.0), ("white", -30.0), ("pink", -30.0), ("clatter", -30.0)]
)
def test_front_vowels_of_high_voices_count_as_voiced(noise: str | None, level: float) -> None:
    # by the voiced band's share alone these words were never confirmed, in silence or in noise;
    # they lift that band far above the background, which a clink or hiss does not
    stream = every_voice_saying(["yes", "eight", "six"], HIGH_FRONT_VOICES, 11, level, noise)
    found = run(stream.audio, VadSettings())
    assert found_once(found, [(w.start, w.end) for w in stream.words]) == len(stream.words), bounds(found)
    assert len(found) == len(stream.words), bounds(found)


@needs_espeak
@needs_flite
def test_a_quiet_talkers_soft_sounds_are_part_of_the_word() -> None:
    # a talker at -50 dBFS: the soft "w" of "one", the "l" of "lights" and a word's fading end lie
    # 30-40 dB under its vowel, near -85 dBFS; they were cut off, up to 200 ms of the word
    voices = [Voice("espeak-ng", "en-us"), Voice("espeak-ng", "en-us+f3", 150, 70)]
    voices += [Voice("flite", name) for name in ("kal", "awb", "slt")]
    texts = ("one", "while", "lights", "music", "no", "yes")
    audios = [synthesize(t, v, RATE) for v in voices for t in texts]
    rng = np.random.default_rng(2)
    gaps = list(rng.uniform(0.5, 1.0, size=len(audios) - 1))
    stream = build_stream(audios, list(texts) * len(voices), gaps, rng, level_dbfs=-50.0, lead_s=1.0)
    assert_within(run(stream.audio), [(w.start, w.end) for w in stream.words], 0.06)


@needs_espeak
@pytest.mark.parametrize(
    ("rt60_s", "direct_to_reverb_db", "declared_within_s"),
    [(0.3, 6.0, 0.25), (0.6, 3.0, 0.45)],  # (the echo's run hides the end longer in the longer room)
)
def test_a_rooms_echo_neither_joins_words_nor_holds_their_end(
    rt60_s: float, direct_to_reverb_db: float, declared_within_s: float
) -> None:
    rng = np.random.default_rng(12)
    stream = ten_word_stream(rng, gap_range_s=(0.35, 0.6), level_dbfs=-20.0)
    audio = reverberate(stream.audio, RATE, rng, rt60_s, direct_to_reverb_db)
    seg = make_segmenter(VadSettings(), RATE)
    found: list[tuple[Segment, int]] = []
    for pos in range(0, len(audio), 160):
        found += [(e, seg.samples_seen) for e in seg.push(audio[pos : pos + 160]) if isinstance(e, Segment)]
    assert len(found) == len(stream.words), [(s.start, s.end) for s, _ in found]
    for (segment, emitted_at), word in zip(found, stream.words, strict=True):
        assert segment.start < word.end and segment.end > word.start, ((segment.start, segment.end), word)
        # the end is known soon after the dry word ends, not once its echo has died away
        assert emitted_at / RATE - word.end <= declared_within_s, (emitted_at / RATE, word)


@needs_espeak
@pytest.mark.parametrize(("rt60_s", "declared_within_s"), [(0.9, 0.45), (1.2, 0.65)])
def test_a_slow_rooms_echo_is_learned_from_the_first_words(rt60_s: float, declared_within_s: float) -> None:
    # a bare kitchen's echo falls more slowly than the segmenter's first guess: it joined twenty
    # words 0.5-0.8 s apart into 4-9 segments. The falls after the first words measure the room;
    # from then on, every word is found on its own and its end is declared soon after it.
    rng = np.random.default_rng(12)
    texts = [*TEN_WORDS, *TEN_WORDS]
    stream = ten_word_stream(rng, texts=texts, gap_range_s=(0.5, 0.8), level_dbfs=-20.0)
    audio = reverberate(stream.audio, RATE, rng, rt60_s, 3.0)
    seg = make_segmenter(VadSettings(), RATE)
    found: list[tuple[Segment, int]] = []
    for pos in range(0, len(audio), 160):
        found += [(e, seg.samples_seen) for e in seg.push(audio[pos : pos + 160]) if isinstance(e, Segment)]
    learning = 3  # words heard before the room is known: their echo may still join them
    for word in stream.words[learning:]:
        hits = [(s, at) for s, at in found if s.start < word.end and s.end > word.start]
        assert len(hits) == 1, (word, [(s.start, s.end) for s, _ in hits])
        segment, emitted_at = hits[0]
        overlapping = [w for w in stream.words if w.start < segment.end and segment.start < w.end]
        others = [w for w in overlapping if w is not word]
        assert not others, (word, (segment.start, segment.end), others)
        assert emitted_at / RATE - word.end <= declared_within_s, (emitted_at / RATE, word)


@needs_espeak
@needs_flite
@pytest.mark.parametrize(
    ("text", "voice", "level"),
    [
        ("skip this song", Voice("flite", "rms", rate=102), -25.0),
        ("skip this song", Voice("flite", "slt", rate=111), -10.0),
        ("what's this sound", Voice("flite", "awb", rate=109), -25.0),
        ("it's too hot in here", Voice("flite", "rms", rate=116), -25.0),
        ("it's too hot in here", Voice("espeak-ng", "en-gb-x-gbcwmd", rate=199, pitch=64), -40.0),
    ],
)
def test_a_long_hiss_between_two_words_keeps_the_phrase_one_utterance(
    text: str, voice: Voice, level: float
) -> None:
    # "this song", "it's too": the voice stops for the "s" longer than the unvoiced hold, and a
    # phrase cut there reaches the classifier as two fragments
    phrase = set_level_dbfs(synthesize(text, voice, RATE), level)
    start, end = RATE, RATE + len(phrase)
    audio = set_level_dbfs(make_noise("pink", end + 2 * RATE, np.random.default_rng(5), RATE), -65.0)
    audio[start:end] += phrase
    seg = make_segmenter(VadSettings(), RATE)
    emitted = []
    for pos in range(0, len(audio), 160):
        emitted += [(e, seg.samples_seen) for e in seg.push(audio[pos : pos + 160]) if isinstance(e, Segment)]
    assert [(e.start, e.end) for e, _ in emitted if e.start_sample < end and e.end_sample > start] == [
        (emitted[0][0].start, emitted[0][0].end)
    ], [(e.start, e.end) for e, _ in emitted]
    segment, at = emitted[0]
    slack = round(0.06 * RATE)
    assert segment.start_sample <= start + slack and segment.end_sample >= end - slack
    assert (at - end) / RATE <= 0.2, (at - end) / RATE  # the hiss does not hold the end back
