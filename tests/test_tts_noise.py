"""The test-audio tools: speech synthesis, noise generators, level helpers and word streams."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.audio import RATE, needs_espeak, needs_festival, needs_flite, spoken_words, ten_word_stream
from trainer import noise
from trainer.streams import build_stream, write_wav
from trainer.tts import TtsError, Voice, available_engines, list_voices, synthesize


def band_power(x: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / RATE)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum())


# --- tts ------------------------------------------------------------------------------


def test_engines_and_voices_are_listed_with_unique_keys() -> None:
    engines = available_engines()
    voices = list_voices()
    assert {v.engine for v in voices} == set(engines)
    keys = [v.key for v in voices]
    assert len(keys) == len(set(keys))
    assert all(k.startswith(f"{v.engine}:") for k, v in zip(keys, voices, strict=True))


@needs_espeak
def test_espeak_voices_cover_languages_and_variants() -> None:
    names = {v.name for v in list_voices("espeak-ng")}
    assert "en-us" in names and "en-us+f3" in names and "en-gb+m3" in names
    assert Voice("espeak-ng", "en-us+f3", rate=120, pitch=80).key == "espeak-ng:en-us+f3"


@pytest.mark.parametrize(
    "voice",
    [
        pytest.param(Voice("espeak-ng", "en-us+f3", 170, 60), marks=needs_espeak),
        pytest.param(Voice("flite", "slt", 110), marks=needs_flite),
        pytest.param(Voice("festival", "voice_kal_diphone"), marks=needs_festival),
    ],
    ids=lambda v: v.key,
)
def test_synthesize_gives_trimmed_mono_float32_speech(voice: Voice) -> None:
    audio = synthesize("seven", voice, RATE)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 0.15 < len(audio) / RATE < 1.2
    edge = RATE // 100
    peak = np.abs(audio).max()
    assert np.abs(audio[:edge]).max() > peak * 0.01  # starts on sound, not silence
    assert np.abs(audio[-edge:]).max() > peak * 0.01
    assert band_power(audio, 80, 4000) > band_power(audio, 4000, 8000)  # speech-like spectrum


@needs_flite
@pytest.mark.parametrize("name", ["kal", "kal16"])
def test_flite_words_start_at_the_word_not_at_the_voices_leading_pause(name: str) -> None:
    # a diphone voice's leading pause holds its recording's rumble (up to 25 dB under the word's
    # peak, 220 ms), which the level trim alone kept as the start of every word
    for text in ("one", "go", "on"):
        audio = synthesize(text, Voice("flite", name), RATE)
        hop = RATE // 100
        power = np.mean(audio[: len(audio) // hop * hop].reshape(-1, hop) ** 2, axis=1)
        loud = int(np.argmax(power >= power.max() / 100.0))  # the first 10 ms within 20 dB of the peak
        assert loud * hop / RATE <= 0.1, (text, loud * hop / RATE)


@needs_espeak
def test_rate_changes_duration_and_sample_rate_is_honoured() -> None:
    slow = synthesize("cancel the music", Voice("espeak-ng", "en-us", rate=100), RATE)
    fast = synthesize("cancel the music", Voice("espeak-ng", "en-us", rate=250), RATE)
    assert len(slow) > 1.6 * len(fast)
    at_8k = synthesize("cancel the music", Voice("espeak-ng", "en-us", rate=100), 8000)
    assert abs(len(at_8k) * 2 - len(slow)) < 0.02 * len(slow)


@needs_espeak
def test_bad_voice_and_empty_text_raise_clear_tts_errors() -> None:
    with pytest.raises(TtsError, match="espeak-ng:no-such-voice"):
        synthesize("hello", Voice("espeak-ng", "no-such-voice"))
    with pytest.raises(TtsError, match="empty"):
        synthesize("   ", Voice("espeak-ng", "en-us"))
    with pytest.raises(TtsError, match="unknown engine"):
        synthesize("hello", Voice("sam", "default"))
    with pytest.raises(TtsError, match="unknown engine"):
        list_voices("sam")


# --- noise ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", noise.NOISE_KINDS)
def test_every_noise_is_float32_at_minus_20_dbfs_and_seeded(kind: str) -> None:
    a = noise.make_noise(kind, 2 * RATE, np.random.default_rng(1), RATE)
    b = noise.make_noise(kind, 2 * RATE, np.random.default_rng(1), RATE)
    c = noise.make_noise(kind, 2 * RATE, np.random.default_rng(2), RATE)
    assert a.dtype == np.float32 and a.shape == (2 * RATE,)
    assert noise.rms_dbfs(a) == pytest.approx(-20.0, abs=0.01)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_noise_colours_have_their_spectral_tilt() -> None:
    rng = np.random.default_rng(3)
    n = 4 * RATE

    def tilt(x: np.ndarray) -> float:  # dB of the 250-500 Hz octave over the 2-4 kHz band
        return 10 * np.log10(band_power(x, 250, 500) / band_power(x, 2000, 4000))

    assert tilt(noise.white(n, rng)) == pytest.approx(-9.0, abs=1.0)  # 250 Hz vs 2 kHz of bandwidth
    assert tilt(noise.pink(n, rng)) == pytest.approx(0.0, abs=1.0)  # equal power per octave
    assert tilt(noise.brown(n, rng)) == pytest.approx(9.0, abs=1.5)  # -3 dB more per octave


def test_hum_sits_at_mains_frequency_and_clatter_rings_high() -> None:
    rng = np.random.default_rng(4)
    hum = noise.hum(RATE, rng, RATE)
    peak = np.fft.rfftfreq(RATE, 1.0 / RATE)[np.argmax(np.abs(np.fft.rfft(hum)))]
    assert peak in (50.0, 60.0)
    clatter = noise.clatter(10 * RATE, rng, RATE)
    frames = clatter[: len(clatter) // 320 * 320].reshape(-1, 320)
    energy = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1))
    assert np.percentile(energy, 99) - np.median(energy) > 8  # transients stand out of the bed
    loud = frames[energy > np.percentile(energy, 97)].ravel()
    assert band_power(loud, 1500, 8000) > band_power(loud, 80, 1500)  # dishes ring above 1.5 kHz


def test_clicks_are_sparse() -> None:
    x = noise.clicks(10 * RATE, np.random.default_rng(5), RATE)
    assert np.mean(np.abs(x) > 0.1 * np.abs(x).max()) < 0.01


@needs_espeak
def test_babble_is_speech_band_and_fairly_steady() -> None:
    x = noise.babble(6 * RATE, np.random.default_rng(6), RATE)
    assert band_power(x, 100, 3000) > 5 * band_power(x, 3000, 8000)
    frames = x[: len(x) // 320 * 320].reshape(-1, 320).astype(np.float64)
    energy = 10 * np.log10(np.mean(frames**2, axis=1))
    assert np.std(energy) < 6.0  # several overlapped talkers, not one voice with pauses


def test_levels_and_snr() -> None:
    rng = np.random.default_rng(7)
    x = noise.white(RATE, rng)
    assert noise.rms_dbfs(noise.set_level_dbfs(x, -37.5)) == pytest.approx(-37.5, abs=1e-3)
    assert noise.rms_dbfs(np.zeros(10, np.float32)) == -200.0
    speech = np.concatenate(
        [np.zeros(RATE), noise.set_level_dbfs(rng.standard_normal(RATE), -20), np.zeros(RATE)]
    )
    bed = noise.pink(RATE, rng)
    mixed = noise.mix_at_snr(speech, bed, 10.0)
    added = mixed - speech
    assert noise.rms_dbfs(added) == pytest.approx(-30.0, abs=0.1)  # 10 dB under the active speech


# --- streams --------------------------------------------------------------------------


@needs_espeak
def test_build_stream_places_words_at_their_truth(tmp_path: Path) -> None:
    words = spoken_words(["yes", "stop", "seven"])
    stream = build_stream(
        words,
        ["yes", "stop", "seven"],
        [0.5, 0.3],
        np.random.default_rng(0),
        lead_s=0.25,
        tail_s=0.75,
        level_dbfs=[-40.0, -20.0, -15.0],
    )
    assert [w.text for w in stream.words] == ["yes", "stop", "seven"]
    assert stream.words[0].start == 0.25
    assert stream.words[1].start == pytest.approx(stream.words[0].end + 0.5, abs=1 / RATE)
    assert stream.words[2].start == pytest.approx(stream.words[1].end + 0.3, abs=1 / RATE)
    assert stream.duration == pytest.approx(stream.words[2].end + 0.75, abs=1 / RATE)
    for word, level in zip(stream.words, (-40.0, -20.0, -15.0), strict=True):
        part = stream.audio[round(word.start * RATE) : round(word.end * RATE)]
        assert noise.rms_dbfs(noise.active_part(part)) == pytest.approx(level, abs=0.5)
    gap = stream.audio[round(stream.words[0].end * RATE) + 1 : round(stream.words[1].start * RATE) - 1]
    assert not gap.any()
    path = tmp_path / "s.wav"
    write_wav(path, stream)
    back, rate = sf.read(path, dtype="float32")
    assert rate == RATE and len(back) == len(stream.audio)
    assert np.abs(back - stream.audio).max() < 1e-3


@needs_espeak
def test_ten_word_stream_in_noise_keeps_its_snr() -> None:
    clean = ten_word_stream(np.random.default_rng(1))
    noisy = ten_word_stream(np.random.default_rng(1), noise="white", snr_db=10.0)
    assert [w.start for w in clean.words] == [w.start for w in noisy.words]
    assert noise.rms_dbfs(noisy.audio[: RATE // 4]) == pytest.approx(-30.0, abs=1.0)


def test_build_stream_rejects_mismatched_inputs() -> None:
    rng = np.random.default_rng(0)
    word = np.ones(100, np.float32)
    with pytest.raises(ValueError, match="gaps"):
        build_stream([word, word], ["a", "b"], [], rng)
    with pytest.raises(ValueError, match="texts"):
        build_stream([word], ["a", "b"], [], rng)
