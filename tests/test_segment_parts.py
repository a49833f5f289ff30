"""The segmenter's modules one at a time: a frame's features, the background's kind and what it
learns, each state transition, and the edge functions on crafted frames."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from streamclf.config import VadSettings
from streamclf.segment import FrameSegmenter, Segment, SpeechStart, edges
from streamclf.segment.background import BackgroundModel
from streamclf.segment.features import FrameFeatures
from streamclf.segment.heard import Heard, hear
from streamclf.segment.spectrum import BandLayout
from streamclf.segment.states import State
from streamclf.segment.tuning import TUNING, BackgroundKind
from tests.audio import RATE
from trainer.noise import make_noise, set_level_dbfs

FRAME = 320  # 20 ms


class LoudDetector:
    """Says speech for any frame that is not near-silent: the tests choose what the detector says."""

    sample_rate = RATE
    frame_samples = FRAME
    needs_every_frame = False

    def is_speech(self, frame: np.ndarray) -> bool:
        return bool(np.abs(frame).max() > 1e-3)

    def reset(self) -> None:
        pass


def voiced(frames: int, level_dbfs: float = -20.0) -> np.ndarray:
    """A vowel-like tone: 180 Hz and its harmonic, all in the voiced band."""
    t = np.arange(frames * FRAME) / RATE
    tone = np.sin(2 * np.pi * 180 * t) + 0.5 * np.sin(2 * np.pi * 360 * t)
    return set_level_dbfs(tone, level_dbfs).astype(np.float32)


def hiss(frames: int, rng: np.random.Generator, level_dbfs: float = -20.0) -> np.ndarray:
    """An "s": noise above 3.5 kHz."""
    spectrum = np.fft.rfft(rng.standard_normal(frames * FRAME))
    spectrum[np.fft.rfftfreq(frames * FRAME, 1 / RATE) < 3500] = 0
    return set_level_dbfs(np.fft.irfft(spectrum, frames * FRAME), level_dbfs).astype(np.float32)


def ringing(frames: int, rng: np.random.Generator, level_dbfs: float = -20.0) -> np.ndarray:
    """A struck dish: a few decaying tones between 2 and 7 kHz."""
    t = np.arange(frames * FRAME) / RATE
    out = sum(np.sin(2 * np.pi * rng.uniform(2000, 7000) * t) * np.exp(-t / 0.1) for _ in range(3))
    return set_level_dbfs(np.asarray(out), level_dbfs).astype(np.float32)


def quiet(frames: int, rng: np.random.Generator, level_dbfs: float = -70.0) -> np.ndarray:
    return set_level_dbfs(make_noise("white", frames * FRAME, rng, RATE), level_dbfs).astype(np.float32)


def run_frames(segmenter: FrameSegmenter, audio: np.ndarray) -> tuple[list[State], list[object]]:
    """Push ``audio`` frame by frame; the state after each frame, and the events."""
    states, events = [], []
    for start in range(0, len(audio) - FRAME + 1, FRAME):
        events += segmenter.push(audio[start : start + FRAME])
        states.append(segmenter.state)
    return states, events


def changes(states: list[State]) -> list[State]:
    return [s for i, s in enumerate(states) if i == 0 or s is not states[i - 1]]


def settings() -> VadSettings:
    return VadSettings(frame_ms=20, murmur_check=False)


# --- states ----------------------------------------------------------------------------------------


def test_a_word_goes_idle_candidate_speaking_hangover_and_back_and_is_emitted() -> None:
    rng = np.random.default_rng(1)
    segmenter = FrameSegmenter(settings(), LoudDetector())
    audio = np.concatenate([quiet(100, rng), voiced(10), quiet(3, rng), voiced(5), quiet(20, rng)])
    states, events = run_frames(segmenter, audio)
    word, pause, idle = [State.CANDIDATE, State.SPEAKING], [State.HANGOVER], [State.IDLE]
    assert changes(states) == idle + word + pause + [State.SPEAKING] + pause + idle
    # the candidate opened on the word's second frame and was confirmed on its third (confirm_ms 60)
    assert states[100] is State.IDLE and states[101] is State.CANDIDATE and states[102] is State.SPEAKING
    starts = [e for e in events if isinstance(e, SpeechStart)]
    segments = [e for e in events if isinstance(e, Segment)]
    assert len(starts) == 1 and len(segments) == 1
    assert abs(starts[0].sample - 100 * FRAME) <= FRAME
    assert segments[0].start_sample <= 100 * FRAME <= segments[0].end_sample
    assert segments[0].end_sample >= 118 * FRAME  # both bursts, one utterance


def test_a_candidate_that_never_voices_is_dropped_without_a_start() -> None:
    rng = np.random.default_rng(2)
    segmenter = FrameSegmenter(settings(), LoudDetector())
    states, events = run_frames(segmenter, np.concatenate([quiet(100, rng), hiss(4, rng), quiet(20, rng)]))
    assert changes(states) == [State.IDLE, State.CANDIDATE, State.IDLE]
    assert events == []


def test_a_candidate_restarts_after_a_pause_at_the_next_sound() -> None:
    rng = np.random.default_rng(3)
    segmenter = FrameSegmenter(settings(), LoudDetector())
    # a clink, a pause longer than restart_gap_ms (but within the hangover), then a word
    audio = np.concatenate([quiet(100, rng), ringing(2, rng), quiet(4, rng), voiced(8), quiet(20, rng)])
    _, events = run_frames(segmenter, audio)
    starts = [e.sample for e in events if isinstance(e, SpeechStart)]
    assert starts == [106 * FRAME]  # the word's onset, not the clink's


def test_a_long_utterance_is_cut_and_goes_on() -> None:
    rng = np.random.default_rng(4)
    segmenter = FrameSegmenter(dataclasses.replace(settings(), max_utterance_s=1.0), LoudDetector())
    _, events = run_frames(segmenter, np.concatenate([quiet(100, rng), voiced(80), quiet(20, rng)]))
    segments = [e for e in events if isinstance(e, Segment)]
    assert [s.reason for s in segments] == ["max_length", "silence"]
    assert segments[1].start_sample == segments[0].end_sample


# --- features and the background --------------------------------------------------------------------


def analysed(segmenter: FrameSegmenter, audio: np.ndarray) -> list[FrameFeatures]:
    """The features of each frame of ``audio`` (through the segmenter's own analyser)."""
    out = []
    for start in range(0, len(audio) - FRAME + 1, FRAME):
        segmenter.push(audio[start : start + FRAME])
        out.append(segmenter._window.features_at(segmenter.samples_seen - FRAME))
    return out


def test_frame_features_of_a_vowel_a_hiss_a_clink_and_the_background() -> None:
    rng = np.random.default_rng(5)
    segmenter = FrameSegmenter(settings(), LoudDetector())
    analysed(segmenter, quiet(100, rng))
    background = analysed(segmenter, quiet(1, rng))[0]
    assert not background.loud and not background.strong
    vowel = analysed(segmenter, voiced(1))[0]
    assert vowel.loud and vowel.strong and vowel.voicing and vowel.voice_raised and vowel.detector
    assert vowel.above_floor_db > 40.0
    segmenter.reset()
    analysed(segmenter, quiet(100, rng))
    s = analysed(segmenter, hiss(1, rng))[0]
    assert s.loud and not s.voicing and s.flatness >= TUNING.hiss_flatness
    segmenter.reset()
    analysed(segmenter, quiet(100, rng))
    clink = analysed(segmenter, ringing(1, rng))[0]
    assert clink.loud and not clink.voicing and clink.flatness < TUNING.hiss_flatness


def background_after(kind: str, level_dbfs: float) -> BackgroundModel:
    rng = np.random.default_rng(6)
    layout = BandLayout(TUNING, RATE, FRAME)
    model = BackgroundModel(TUNING, layout, RATE / FRAME, margin_db=6.0)
    audio = set_level_dbfs(make_noise(kind, 6 * RATE, rng, RATE), level_dbfs).astype(np.float32)
    for frame in audio.reshape(-1, FRAME):
        power, spectrum = layout.power_and_spectrum(frame, None)
        energy, bands = 10.0 * np.log10(power), layout.bands(spectrum)
        out = model.stand_out(energy, power, bands)
        share = layout.voiced_share(spectrum)
        model.learn(energy, bands, out.band_excess_db, share, speech=False, learn_noise=True)
    return model


@pytest.mark.parametrize(
    ("kind", "level", "expected"),
    [
        ("white", -80.0, BackgroundKind.QUIET),
        ("white", -40.0, BackgroundKind.STATIONARY),
        ("pink", -35.0, BackgroundKind.STATIONARY),
        ("babble", -35.0, BackgroundKind.MURMUR),
    ],
)
def test_the_background_kind_of_generated_noises(kind: str, level: float, expected: BackgroundKind) -> None:
    assert background_after(kind, level).kind is expected


def test_a_confirmed_candidate_teaches_the_background_nothing_and_a_dropped_one_does() -> None:
    rng = np.random.default_rng(7)
    layout = BandLayout(TUNING, RATE, FRAME)
    louder = quiet(20, rng, -60.0)
    for confirmed in (True, False):
        segmenter = FrameSegmenter(settings(), LoudDetector())
        analysed(segmenter, quiet(100, np.random.default_rng(8)))
        model = segmenter.background
        before = (model.level_peak_db, model.spectrum_peak_db)
        model.candidate_opens()
        for frame in louder.reshape(-1, FRAME):
            power, spectrum = layout.power_and_spectrum(frame, None)
            energy, bands = 10.0 * np.log10(power), layout.bands(spectrum)
            out = model.stand_out(energy, power, bands)
            model.learn(energy, bands, out.band_excess_db, 0.1, speech=False, learn_noise=True)
        provisional = (model.level_peak_db, model.spectrum_peak_db)
        assert provisional[0] > before[0]  # the candidate's frames are judged with what they taught
        if confirmed:
            model.candidate_confirmed()
            assert (model.level_peak_db, model.spectrum_peak_db) == before
        else:
            model.candidate_dropped()
            assert (model.level_peak_db, model.spectrum_peak_db) == provisional


# --- edges ---------------------------------------------------------------------------------------------


def features(**given: object) -> FrameFeatures:
    base = dict(energy_db=-30.0, above_floor_db=30.0, band_excess_db=20.0, loud=True, strong=False,
                voicing=False, voice_raised=False, voiced_share=0.1, flatness=0.0, detector=True, echo=False,
                voice_probability=1.0, bands=np.ones(20))
    base.update(given)
    return FrameFeatures(**base)  # type: ignore[arg-type]


def frame_at(index: int, **given: object) -> Heard:
    return hear(index * FRAME, features(**given), leave_out_echo=False, tuning=TUNING)


VOWEL = dict(strong=True, voicing=True, voice_raised=True, voiced_share=0.9)
RISING = dict(voicing=True, voice_raised=True, voiced_share=0.9)  # voice rising, not yet well clear
HISS = dict(strong=True, flatness=0.5)
CLINK = dict(flatness=0.1)
LOUD_CLINK = dict(strong=True, flatness=0.1)
SOFT = dict(flatness=0.5)  # unvoiced, noise-like, not clear of the noise


def test_a_clear_hiss_leads_but_a_vowel_or_a_clink_does_not() -> None:
    assert edges.lead_is_hiss([frame_at(0, **HISS), frame_at(1, **HISS)])
    assert not edges.lead_is_hiss([frame_at(0, **VOWEL), frame_at(1, **HISS)])
    assert not edges.lead_is_hiss([frame_at(0, **CLINK)])  # rings, never hissed
    assert not edges.lead_is_hiss([frame_at(0, **HISS), frame_at(1, **LOUD_CLINK)])
    # the lead ends where the voice rises: what follows does not count
    assert edges.lead_is_hiss([frame_at(0, **HISS), frame_at(1, **RISING), frame_at(2, **LOUD_CLINK)])


def test_the_onset_moves_past_a_ringing_lead_and_over_murmur_to_a_weak_lead() -> None:
    frames = [frame_at(0, **CLINK), frame_at(1, **CLINK), frame_at(2, **SOFT), frame_at(3, **VOWEL)]
    assert edges.word_after_ringing(frames) == 2 * FRAME
    assert edges.confirmed_onset(0, frames, weak_lead=None) == (2 * FRAME, 0)
    assert edges.word_after_ringing([frame_at(0, **VOWEL), frame_at(1, **CLINK), frame_at(2, **SOFT)]) is None
    weak = [frame_at(i, **SOFT) for i in range(5)] + [frame_at(5, **VOWEL)]
    assert edges.confirmed_onset(0, weak, weak_lead=None) == (0, 0)
    assert edges.confirmed_onset(0, weak, weak_lead=FRAME) == (4 * FRAME, 4 * FRAME)


def test_edges_reach_over_audible_frames_within_their_limit() -> None:
    audible = {3, 4, 5, 9}

    def heard(at: int) -> bool:
        return at // FRAME in audible

    assert edges.reach_back(6 * FRAME, 0, FRAME, heard) == 3 * FRAME
    assert edges.reach_back(6 * FRAME, 5 * FRAME, FRAME, heard) == 5 * FRAME
    assert edges.reach_forward(3 * FRAME, 20 * FRAME, FRAME, heard) == 6 * FRAME
    assert edges.masked_pads(0.0, TUNING, 960, 1600) == (960, 1600)
    assert edges.masked_pads(TUNING.masked_depth_db, TUNING, 960, 1600) == (0, 0)
