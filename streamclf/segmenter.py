"""Utterance segmentation: a pure state machine over fixed-length VAD frames.

Each frame is high-passed (:class:`~streamclf.vad.highpass.HighPass`: a sound card's DC offset
and mains hum carry no speech but would hide a quiet talker), measured
(:class:`~streamclf.vad.level.LevelTracker`: adaptive noise floor,
background spectrum, automatic gain, low-band share) and judged by a frame detector (webrtcvad
or silero-vad). A frame is *speech* when the detector says so on the gain-normalised frame and
the frame stands out of the background, in level or in spectrum; it is *voiced* when, in
addition, most of its energy lies in the voiced band, or that band stands far out of the noise.

* **Open**: ``open_ms`` of speech within the last ``open_window_ms``. The utterance starts at
  the first speech frame of that window, less ``preroll_ms``.
* **Confirm**: an opened utterance is only kept once it holds ``confirm_ms`` of voiced frames
  (clatter and hiss rarely do); :class:`SpeechStart` is emitted then, stamped with the onset.
  Over murmur (babble, a TV), the onset is then at most ``WEAK_LEAD_MS`` before the first frame
  that stands well clear of the noise: a word rises out of it within a few frames, so a longer
  weak lead is the murmur itself, a swell running into the word. Over other noise a weak lead is
  the word's own soft start ("l", "w") and is kept. Over murmur, one of the candidate's speech
  frames must also sound like a voice to silero-vad (:class:`~streamclf.vad.murmur.MurmurCheck`,
  ``MURMUR_VOICE_PROBABILITY``): a swell of the distant talkers stands out in level and spectrum
  as a near talker does, but mostly does not sound like one voice.
* **Close**: after ``hangover_ms`` of non-speech. The segment ends ``tail_ms`` after the last
  speech frame. Shorter than ``min_utterance_ms`` (the masked edges counted): discarded
  (:class:`SpeechEnd`). Not while the whole hangover stays loud and near the utterance's own
  level (``SOUND_GOES_ON_DB``): the sound went on and only the detector changed its mind, as
  with a fan that has just started.
* **Cut**: a segment reaching ``max_utterance_s`` is emitted (reason ``max_length``) and the
  utterance goes on as a new segment starting where the cut was.
* **Edges**: boundaries move outwards over adjacent frames that stand out of the noise
  (``REACH_MS``); in noise, ``masked_pad`` adds pre-roll and tail for the soft word edges the
  noise hides, more the closer the utterance's loudest frame is to the noise floor.
* **Echo**: frames that only decay like a room's reverberation of what came before
  (:class:`~streamclf.vad.echo.EchoTracker`) open nothing and hold nothing open, so a room's echo
  neither joins words nor delays their end; it still widens the segment up to the close (a
  fading vowel, then a final "ts"), and an opened candidate's own frames still count towards its
  confirmation. How slowly that echo may fall follows the room's own decay rate, measured from the
  falls after loud sounds (:class:`~streamclf.vad.decay.RoomDecay`).
* **Gaps**: an unconfirmed utterance that pauses for ``RESTART_GAP_MS`` restarts at the next
  sound (a clink or a murmur just before a word does not drag its start forward), unless what it
  held so far was a clear hiss and the pause is no longer than a stop's closure (``CLOSURE_MS``):
  the "s" of "stop" or "skip" is the word's start. Over murmur, the edges of that "s" hold as much
  of the murmur's voiced band as of the hiss; such a frame, voiced by its share of energy but with
  that band no higher than the background's, is not taken for the word's voice.
* **Ringing lead**: unvoiced frames ahead of a candidate's first voiced frame whose high band
  rings at a few tones (``HISS_FLATNESS``) are not the word: on confirmation the onset moves past
  the last of them (dish clinks that run into a word with no pause between).
* **Hold**: once confirmed, voiced speech frames restart the hangover (over murmur such as
  babble, only those well above it and within ``HOLD_WITHIN_PEAK_DB`` of the utterance's loudest
  frame); unvoiced sound does only within ``UNVOICED_HOLD_MS`` of
  the last voiced frame (a final consonant), or while it goes on from there as a clear hiss (a
  long "s" between words), or over murmur as any clear hiss (murmur is voiced: a hiss well above
  it is the talker's "s"), and leaves a shorter hangover (``UNVOICED_HANGOVER_MS``). A clink
  after a word rings rather than hisses, and never holds its end back.

Timestamps are sample counts at ``sample_rate`` since the stream start, so results do not
depend on block sizes or wall-clock time. All audio lives in one preallocated buffer, as it came
(what segments carry) and high-passed (what edges are judged on).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from .config import VadSettings
from .errors import StartupError
from .vad import FrameDetector
from .vad.decay import RoomDecay
from .vad.echo import EchoTracker
from .vad.highpass import HighPass
from .vad.level import LevelTracker
from .vad.murmur import MurmurCheck, make_murmur_check

RAW, FILTERED = 0, 1
"""Rows of the segmenter's audio buffer."""

VOICED_RATIO = 0.5
"""Share of frame energy in the voiced band (80-1500 Hz) that makes a speech frame count as voiced."""
VOICED_RAISE_DB = 10.0
VOICED_MIN_RATIO = 0.2
"""A speech frame is also voiced when its voiced band stands VOICED_RAISE_DB above the background's
and still holds VOICED_MIN_RATIO of its energy: the front vowel of a high voice ("yes", "eight")
has most of its energy above 1.5 kHz but lifts the voiced band far out of the noise; a clink does not."""


MASKED_DEPTH_DB = 40.0
"""Speech edges fade over about this many dB; what is below the noise is added back as padding."""
MASKED_PREROLL_MAX_MS = 60
"""Most extra pre-roll, in ms, for an utterance barely above the noise (``masked_pad``)."""
MASKED_TAIL_MAX_MS = 100
"""Most extra tail, in ms, for an utterance barely above the noise (``masked_pad``); never more than
the hangover audio already held."""
REACH_MS = 100
"""Onsets and ends are moved outwards over at most this much, in ms, of audio that stands out of
the noise without passing the speech rule (soft consonants)."""
GAP_MS = 100
"""A pause this long, in ms, after a confirmed utterance's speech separates sounds: unvoiced sound
after it does not extend the utterance."""
RESTART_GAP_MS = 40
"""A pause this long, in ms, inside an unconfirmed utterance (a clink, a murmur) ends it: it
restarts at the next sound, so the noise before a word does not drag the word's start forward."""
CLOSURE_MS = 120
"""A pause up to this long, in ms, after a candidate that so far is only a clear hiss does not
restart it: an "s" and the closure of the stop after it ("stop", "skip", "start")."""
UNVOICED_HOLD_MS = 60
"""Unvoiced sound this long, in ms, after the last voiced frame of a confirmed utterance still holds
it open (a final "s" or "t"); later unvoiced sound widens nothing and lets the hangover run."""
UNVOICED_HANGOVER_MS = 120
"""Hangover, in ms, after an unvoiced frame that holds the utterance (at most ``hangover_ms``): a
voiceless consonant after the voice mostly ends the word, so less waiting follows it than a vowel."""
HISS_FLATNESS = 0.3
"""An unvoiced run that began within UNVOICED_HOLD_MS of the voice goes on holding while its frames
stand well clear of the noise and their high band is at least this flat (see
``FrameLevel.high_band_flatness``): a long "s" between two words ("this song") is a hiss; a clink of
china rings at a few tones and reads far below it."""
STRONG_FRAMES = 2
"""Voiced frames well above the noise (see LevelTracker) that an utterance needs to be confirmed."""
MURMUR_VOICE_PROBABILITY = 0.6
"""Over murmur, an utterance is confirmed only once silero-vad's speech probability reached this on
one of its speech frames (``MurmurCheck``): a swell of the distant talkers mostly stays under it."""
MURMUR_CHECK_LINGER_S = 10.0
"""The murmur check runs on this long, in seconds, after the background was last murmur: the
background's voice-likeness wavers around its threshold, and the model needs context."""
HOLD_WITHIN_PEAK_DB = 12.0
"""Over murmur, a voiced frame holds a confirmed utterance open only within this many dB of the
utterance's loudest frame: a swell of the murmur right after a word stands well above the murmur,
but well under the talker who has just spoken."""
SOUND_GOES_ON_DB = 12.0
"""A confirmed utterance whose whole hangover stood out of the background, never more than this many
dB under its loudest frame, is not closed: the sound went on and only the detector changed its
mind (a fan or a tap that has just started is such a sound; the steady-background rule drops it)."""
WEAK_LEAD_MS = 20
"""Over murmur: most speech, in ms, before an utterance's first frame well above the noise that its
onset keeps; earlier speech frames that only just clear the murmur are taken for the murmur."""


class _Frame(NamedTuple):
    """What one VAD frame was judged to be."""

    speech: bool
    """The detector says speech and the frame stands out of the background."""
    voiced: bool
    """Speech with most of its energy in the voiced band, or that band far above the background's."""
    strong: bool
    """Voiced and well above the noise: counts towards confirmation."""
    clear: bool
    """Speech well above the noise, voiced or not: anchors the onset."""
    loud: bool
    """Stands out of the background, whatever the detector says (and is no echo)."""
    sounding: bool
    """The detector says speech and the frame stands out of the background, echo or not."""
    voiced_echo: bool
    """Sounding and voiced, but taken for echo: a vowel's own fall, or a room's reverberation of it."""
    above_db: float
    """Level above the noise floor, dB."""
    hiss: bool
    """Clear, and its high band is noise-like (a fricative), not ringing tones (see HISS_FLATNESS)."""
    ringing: bool
    """Unvoiced speech whose high band is a few ringing tones (a clink of china), not a hiss."""
    voice_raised: bool
    """Its voiced band stands VOICED_RAISE_DB above the background's."""
    voice_probability: float
    """Over murmur, silero-vad's speech probability here (``MurmurCheck``); 1 where none is taken."""


@dataclass(frozen=True)
class SpeechStart:
    sample: int
    """Stream sample index (segmenter rate) of the first speech frame."""


@dataclass(frozen=True)
class SpeechEnd:
    """An utterance announced by :class:`SpeechStart` was dropped: no :class:`Segment` follows.

    It was shorter than ``min_utterance_ms``, or it was a new steady background (a fan switched on).
    """

    sample: int
    """Stream sample index (segmenter rate) where it was dropped."""


@dataclass(frozen=True)
class Segment:
    id: int
    start_sample: int
    """First sample, pre-roll included."""
    end_sample: int
    """One past the last sample."""
    sample_rate: int
    audio: np.ndarray
    """float32 mono, ``end_sample - start_sample`` samples (a copy: the segmenter keeps no reference)."""
    reason: str
    """Why it closed: "silence", "max_length" or "flush"."""
    closed_at: float
    """time.monotonic() when the segmenter closed it."""

    @property
    def start(self) -> float:
        return self.start_sample / self.sample_rate

    @property
    def end(self) -> float:
        return self.end_sample / self.sample_rate

    @property
    def duration(self) -> float:
        return (self.end_sample - self.start_sample) / self.sample_rate


SegmentEvent = SpeechStart | SpeechEnd | Segment


class Segmenter(Protocol):
    sample_rate: int
    samples_seen: int

    def push(self, samples: np.ndarray) -> list[SegmentEvent]: ...

    def flush(self) -> list[SegmentEvent]: ...

    def reset(self) -> None: ...


@dataclass(frozen=True)
class _Timing:
    """The settings converted to frame and sample counts."""

    frame: int
    open_frames: int
    window_frames: int
    confirm_frames: int
    hangover_frames: int
    gap_frames: int
    restart_gap_frames: int
    closure_frames: int
    murmur_linger_frames: int
    unvoiced_hold: int
    unvoiced_hangover_frames: int
    weak_lead: int
    preroll: int
    tail: int
    min_length: int
    max_length: int
    masked_pad: bool
    max_extra_preroll: int
    max_extra_tail: int

    @classmethod
    def from_settings(cls, settings: VadSettings, sample_rate: int, frame: int) -> _Timing:
        def frames(ms: float) -> int:
            return max(1, int(np.ceil(ms * sample_rate / 1000.0 / frame - 1e-9)))

        window = frames(settings.open_window_ms)
        max_length = round(settings.max_utterance_s * sample_rate)
        if max_length < 2 * frame:
            raise StartupError(f"vad.max_utterance_s: must hold at least two {frame}-sample VAD frames")
        return cls(
            frame=frame,
            open_frames=min(frames(settings.open_ms), window),
            window_frames=window,
            confirm_frames=0 if settings.confirm_ms == 0 else frames(settings.confirm_ms),
            hangover_frames=frames(settings.hangover_ms),
            gap_frames=frames(GAP_MS),
            restart_gap_frames=frames(RESTART_GAP_MS),
            closure_frames=frames(CLOSURE_MS),
            murmur_linger_frames=frames(MURMUR_CHECK_LINGER_S * 1000.0),
            unvoiced_hold=frames(UNVOICED_HOLD_MS) * frame,
            unvoiced_hangover_frames=min(frames(UNVOICED_HANGOVER_MS), frames(settings.hangover_ms)),
            weak_lead=frames(WEAK_LEAD_MS) * frame,
            preroll=round(settings.preroll_ms * sample_rate / 1000.0),
            tail=round(settings.tail_ms * sample_rate / 1000.0),
            min_length=round(settings.min_utterance_ms * sample_rate / 1000.0),
            max_length=max_length,
            masked_pad=settings.masked_pad,
            max_extra_preroll=round(MASKED_PREROLL_MAX_MS * sample_rate / 1000.0)
            if settings.masked_pad
            else 0,
            max_extra_tail=round(MASKED_TAIL_MAX_MS * sample_rate / 1000.0) if settings.masked_pad else 0,
        )


class FrameSegmenter:
    """The segmenter state machine over any :class:`FrameDetector` (see the module docstring)."""

    def __init__(
        self, settings: VadSettings, detector: FrameDetector, murmur_check: MurmurCheck | None = None
    ) -> None:
        self.sample_rate = detector.sample_rate
        self._detector = detector
        self._murmur_check = murmur_check
        self._t = _Timing.from_settings(settings, self.sample_rate, detector.frame_samples)
        self._highpass = HighPass(self.sample_rate)
        self._levels = LevelTracker(self.sample_rate, self._t.frame, settings.margin_db, settings.agc)
        self._echo = EchoTracker(self.sample_rate, self._t.frame)
        self._room = RoomDecay(self.sample_rate, self._t.frame)
        # history kept while idle: pre-roll (with its masked-edge extra), reach and the opening window
        self._reach = round(REACH_MS * self.sample_rate / 1000.0) // self._t.frame * self._t.frame
        self._history = (
            self._t.preroll + self._t.max_extra_preroll + self._reach + self._t.window_frames * self._t.frame
        )
        # row RAW: the audio as it came (what segments carry); row FILTERED: after the high-pass
        self._buf = np.zeros((2, self._history + self._t.max_length + self._t.frame), dtype=np.float32)
        self._pending = np.zeros((2, self._t.frame), dtype=np.float32)  # rows RAW, FILTERED
        self._recent: deque[_Frame] = deque(maxlen=self._t.window_frames)
        self.reset()

    # --- public interface -------------------------------------------------------------

    def reset(self) -> None:
        """Back to the start of a new stream: sample counter, ids and adaptation cleared."""
        self.samples_seen = 0
        self._frames_end = 0  # stream sample index after the last processed frame
        self._pending_len = 0
        self._next_id = 0
        self._last_end = 0  # end of the last emitted segment: segments never overlap
        self._detector.reset()
        self._highpass.reset()
        self._levels.reset()
        self._echo.reset()
        self._room.reset()
        if self._murmur_check is not None:
            self._murmur_check.reset()
        self._murmur_left = 0  # frames the murmur check keeps running (MURMUR_CHECK_LINGER_S)
        self._go_idle()

    @property
    def room_decay_db_per_s(self) -> float | None:
        """How fast the room's sound dies away, dB/s, as measured so far (None: not known)."""
        return self._room.rate_db_per_s

    def push(self, samples: np.ndarray) -> list[SegmentEvent]:
        """Feed a block of any length of float32 mono samples; returns the events it completed."""
        raw = np.asarray(samples, dtype=np.float32).reshape(-1)
        data = np.stack([raw, self._highpass(raw)])  # rows RAW, FILTERED: one filter call per block
        events: list[SegmentEvent] = []
        self.samples_seen += len(raw)
        frame = self._t.frame
        pos = 0
        if self._pending_len:
            take = min(frame - self._pending_len, len(raw))
            self._pending[:, self._pending_len : self._pending_len + take] = data[:, :take]
            self._pending_len += take
            pos = take
            if self._pending_len < frame:
                return events
            self._process(self._pending, events)
            self._pending_len = 0
        while len(raw) - pos >= frame:
            self._process(data[:, pos : pos + frame], events)
            pos += frame
        rest = len(raw) - pos
        self._pending[:, :rest] = data[:, pos:]
        self._pending_len = rest
        return events

    def flush(self) -> list[SegmentEvent]:
        """End of stream: emit the utterance in progress (reason "flush") if it qualifies."""
        events: list[SegmentEvent] = []
        if self._open and self._confirmed and self._fill == 0:
            # the stream ended right at a max-length cut: the continuation holds no audio
            self._drop(events)
        elif self._open and self._confirmed:
            self._emit(events, "flush")
        self._go_idle()
        return events

    # --- state machine ------------------------------------------------------------------

    def _go_idle(self) -> None:
        self._open = False
        self._confirmed = False
        self._continued = False  # the open segment continues one cut at max_utterance_s
        self._fill = 0  # samples in _buf
        self._buf_start = self._frames_end  # stream index of _buf[0]
        self._onset = 0
        self._last_speech_end = 0
        self._last_voiced_end = 0
        self._silence = 0
        self._unvoiced_run = False  # the last frame was unvoiced sound that held the utterance
        self._loud_run = 0  # frames in a row that stood out of the background
        self._loud_run_min_db = np.inf  # the quietest of them, dB above the floor
        self._voiced = 0
        self._strong = 0
        self._voice_probability = 0.0  # the highest of the candidate's speech frames (MurmurCheck)
        self._first_clear: int | None = None  # stream index of the candidate's first clear frame
        self._rung = False  # ringing frames led the candidate, before any voiced frame
        self._hiss_lead = False  # none of the candidate's clear frames so far was other than a hiss
        self._hissed = False  # and one of them was a hiss of unvoiced sound (_track_lead)
        self._voice_began = False  # a frame's voiced band rose out of the background: the lead is over
        self._word_from: int | None = None  # then: the first speech frame after the last of them
        self._weak_lead = 0  # samples of speech that the onset left out (_clip_weak_lead)
        self._peak_above_db = 0.0
        self._recent.clear()

    def _process(self, pair: np.ndarray, events: list[SegmentEvent]) -> None:
        """Judge one frame, given as it came and high-passed (rows RAW and FILTERED)."""
        raw, frame = pair[RAW], pair[FILTERED]
        level = self._levels.measure(frame, unfiltered=raw)
        gained = frame * np.float32(level.gain)  # what the detectors hear
        if level.loud_enough or self._detector.needs_every_frame:
            said_speech = self._detector.is_speech(gained)
        else:
            said_speech = False  # quiet frames never reach webrtcvad: keeps idle CPU low
        self._room.update(level.energy_db, level.above_floor_db)
        voice_probability = self._second_opinion(gained)
        echo = self._echo.update(level.band_power, self._room.rate_db_per_s)
        sounding = level.loud_enough and said_speech
        # a room's echo opens nothing and holds nothing; a candidate's own frames still count
        # towards its confirmation (a short word's fading vowel is no echo of anything before it)
        speech = sounding and not (echo and (self._confirmed or not self._open))
        sounding_voiced = sounding and (
            level.low_band_ratio >= VOICED_RATIO
            or (level.low_band_ratio >= VOICED_MIN_RATIO and level.low_band_excess_db >= VOICED_RAISE_DB)
        )
        voiced = speech and sounding_voiced
        clear = speech and level.strong
        # the high band's flatness only where a rule reads it (clear or unvoiced speech): off the idle path
        flatness = level.high_band_flatness if clear or (speech and not voiced) else 0.0
        judged = _Frame(
            speech=speech,
            voiced=voiced,
            strong=voiced and level.strong,
            clear=clear,
            loud=level.loud_enough and not echo,
            sounding=sounding,
            voiced_echo=sounding_voiced and not speech,
            above_db=level.above_floor_db,
            hiss=clear and flatness >= HISS_FLATNESS,
            ringing=speech and not voiced and flatness < HISS_FLATNESS,
            voice_raised=level.low_band_excess_db >= VOICED_RAISE_DB,
            voice_probability=voice_probability,
        )
        self._append(pair)
        self._frames_end += len(frame)
        if speech:
            self._peak_above_db = max(self._peak_above_db, level.above_floor_db)
        if self._open:
            self._step_open(judged, events)
        else:
            self._step_idle(judged, events)
        if self._levels.update(level, speech, learn_noise=not self._confirmed):
            # the background stepped up to a new steady sound: what was open is that sound
            self._drop(events)

    def _append(self, pair: np.ndarray) -> None:
        """Keep one frame, as it came and high-passed (rows RAW and FILTERED)."""
        length = pair.shape[1]
        if not self._open and self._fill + length > self._history:
            keep = max(self._history - length, 0)
            self._buf[:, :keep] = self._buf[:, self._fill - keep : self._fill]
            self._buf_start += self._fill - keep
            self._fill = keep
        self._buf[:, self._fill : self._fill + length] = pair
        self._fill += length

    def _step_idle(self, judged: _Frame, events: list[SegmentEvent]) -> None:
        self._recent.append(judged)
        if not judged.speech or sum(f.speech for f in self._recent) < self._t.open_frames:
            return
        frame = self._t.frame
        first = next(i for i, f in enumerate(self._recent) if f.speech)
        window_start = self._frames_end - len(self._recent) * frame
        self._onset = self._reach_back(window_start + first * frame)
        latest_start = self._frames_end - self._t.max_length + frame
        keep_from = self._onset - self._t.preroll - self._t.max_extra_preroll
        self._shift_to(max(keep_from, self._last_end, self._buf_start, latest_start))
        self._open = True
        self._levels.mark()
        clear = [i for i, f in enumerate(self._recent) if f.clear]
        self._first_clear = window_start + clear[0] * frame if clear else None
        self._voiced = self._strong = 0
        self._voice_probability = 0.0
        self._start_lead()
        for i, f in enumerate(self._recent):  # in order, as _step_open takes them (_track_lead)
            if f.speech:
                self._track_lead(f, window_start + i * frame)
                self._voice_probability = max(self._voice_probability, f.voice_probability)
            self._voiced += f.voiced
            self._strong += f.strong
        self._last_speech_end = self._frames_end
        self._silence = 0
        self._recent.clear()
        self._check_confirmed(events)

    def _shift_to(self, start: int) -> None:
        drop = start - self._buf_start
        if drop > 0:
            self._buf[:, : self._fill - drop] = self._buf[:, drop : self._fill]
            self._fill -= drop
            self._buf_start = start

    def _step_open(self, judged: _Frame, events: list[SegmentEvent]) -> None:
        speech, voiced, strong = judged.speech, judged.voiced, judged.strong
        if judged.loud:
            self._loud_run += 1
            self._loud_run_min_db = min(self._loud_run_min_db, judged.above_db)
        else:
            self._loud_run, self._loud_run_min_db = 0, np.inf
        after_gap = self._silence >= self._t.restart_gap_frames
        closure = self._hiss_lead and self._hissed and self._silence <= self._t.closure_frames
        if speech and after_gap and not self._confirmed and not closure:
            self._restart_candidate()
        if not self._confirmed:
            if speech:
                self._track_lead(judged, self._frames_end - self._t.frame)
                self._last_speech_end = self._frames_end
                self._silence = 0
                self._voiced += voiced
                self._strong += strong
                self._voice_probability = max(self._voice_probability, judged.voice_probability)
                if judged.clear and self._first_clear is None:
                    self._first_clear = self._frames_end - self._t.frame
                self._check_confirmed(events)
            else:
                self._silence += 1
        elif voiced and self._holds(judged):
            # voiced speech holds the utterance open
            self._last_speech_end = self._last_voiced_end = self._frames_end
            self._silence = 0
            self._unvoiced_run = False
        elif speech and (
            self._frames_end - self._last_voiced_end <= self._t.unvoiced_hold
            or (judged.hiss and (self._unvoiced_run or self._levels.voice_like))
        ):
            # unvoiced sound right after voiced speech, or a clear hiss going on from it without a
            # break (over murmur: any clear hiss): a consonant inside or ending the word, or
            # between two words
            self._last_speech_end = self._frames_end
            self._silence = min(self._silence, self._t.hangover_frames - self._t.unvoiced_hangover_frames)
            self._unvoiced_run = True
        else:
            # silence, or unvoiced sound long after the last voiced frame: the hangover runs on,
            # so a clink after a word never holds its end back; sound that goes on from the
            # speech without a gap (a long final "s", a slowly fading vowel) still widens the
            # segment up to the close
            self._unvoiced_run = False
            contiguous = self._frames_end - self._last_speech_end <= self._t.gap_frames * self._t.frame
            if judged.sounding and contiguous:
                self._last_speech_end = self._frames_end
                if judged.voiced_echo:  # a fading vowel: a final consonant may still follow
                    self._last_voiced_end = self._frames_end
            self._silence += 1
        if self._silence >= self._t.hangover_frames and not self._sound_goes_on():
            # (the soft edges that the noise hides count: "up" at 10 dB SNR shows only its vowel)
            length = self._last_speech_end - self._onset + self._weak_lead + sum(self._masked_pads())
            # a continuation after a max-length cut is the rest of an utterance already
            # accepted: kept however short, as long as it holds speech
            if self._confirmed and (length >= self._t.min_length or (self._continued and length > 0)):
                self._emit(events, "silence")
                self._go_idle()
            else:
                self._drop(events)
            return
        if self._fill + self._t.frame > self._t.max_length:
            self._cut(events)

    def _holds(self, voiced: _Frame) -> bool:
        """Whether a voiced frame holds the confirmed utterance open. Over murmur, only one well above
        the murmur (strong) and within HOLD_WITHIN_PEAK_DB of the utterance's loudest frame."""
        if not self._levels.voice_like:
            return True
        return voiced.strong and voiced.above_db >= self._peak_above_db - HOLD_WITHIN_PEAK_DB

    def _second_opinion(self, gained: np.ndarray) -> float:
        """silero-vad's speech probability of this (gain-normalised) frame while the background is
        murmur, or was within ``MURMUR_CHECK_LINGER_S`` (the model keeps its context across a lull);
        1 where the background is no murmur."""
        check = self._murmur_check
        if check is None:
            return 1.0
        if self._levels.voice_like:
            self._murmur_left = self._t.murmur_linger_frames
        elif self._murmur_left > 0:
            self._murmur_left -= 1
            if self._murmur_left == 0:
                check.reset()
        if self._murmur_left == 0:
            return 1.0
        check.push(gained)
        return check.probability if self._levels.voice_like else 1.0

    def _sound_goes_on(self) -> bool:
        """Whether the whole hangover of a confirmed utterance stood out of the background, close
        to the utterance's own level (see SOUND_GOES_ON_DB)."""
        return (
            self._confirmed
            and self._loud_run >= self._t.hangover_frames
            and self._loud_run_min_db >= self._peak_above_db - SOUND_GOES_ON_DB
        )

    def _restart_candidate(self) -> None:
        """An unconfirmed utterance (a clink, a cough) went quiet and sound resumes: start over here."""
        self._onset = self._frames_end - self._t.frame
        self._shift_to(
            max(self._onset - self._t.preroll - self._t.max_extra_preroll, self._last_end, self._buf_start)
        )
        self._voiced = 0
        self._strong = 0
        self._voice_probability = 0.0
        self._first_clear = None
        self._start_lead()

    def _start_lead(self) -> None:
        """A candidate opens or restarts: nothing of its lead is known yet (see ``_track_lead``)."""
        self._rung, self._word_from = False, None
        self._hiss_lead, self._hissed, self._voice_began = True, False, False

    def _track_lead(self, judged: _Frame, start: int) -> None:
        """Follow an unconfirmed candidate's lead: whether it is a clear hiss so far (an "s" before
        a stop's closure, see CLOSURE_MS) up to the first frame whose voiced band rises out of the
        background, and where the word begins after ringing frames up to its first voiced frame (a
        clink just before a word, with no pause between).

        A clear frame voiced only by its share of energy, its voiced band no higher than the
        background's, neither makes nor breaks the hiss: over murmur, the edges of an "s" hold as
        much of the murmur's voiced band as of the hiss.
        """
        if not self._voice_began:
            raised = judged.voiced and judged.voice_raised
            if judged.clear:
                self._hiss_lead = self._hiss_lead and judged.hiss and not raised
                self._hissed = self._hissed or (judged.hiss and not judged.voiced)
            self._voice_began = raised
        if self._voiced:
            return
        if judged.ringing:
            self._rung, self._word_from = True, None
        elif self._rung and self._word_from is None:
            self._word_from = start

    def _check_confirmed(self, events: list[SegmentEvent]) -> None:
        if self._confirmed:
            return
        if (
            self._voiced >= self._t.confirm_frames
            and self._strong >= STRONG_FRAMES
            and (self._voice_probability >= MURMUR_VOICE_PROBABILITY or not self._levels.voice_like)
        ):
            self._confirmed = True
            self._skip_ringing_lead()
            self._clip_weak_lead()
            self._last_voiced_end = self._frames_end
            self._levels.forget_since_mark()
            events.append(SpeechStart(self._onset))

    def _skip_ringing_lead(self) -> None:
        """Move the onset past the ringing frames that led the candidate (see ``_track_lead``)."""
        if self._word_from is not None and self._word_from > self._onset:  # (set only after ringing)
            self._onset = self._word_from

    def _clip_weak_lead(self) -> None:
        """Over murmur, move the onset up to WEAK_LEAD_MS before the first frame well clear of it."""
        if self._first_clear is None or not self._levels.voice_like:
            return
        onset = self._first_clear - self._t.weak_lead
        if onset > self._onset:
            self._weak_lead = onset - self._onset
            self._onset = onset

    def _drop(self, events: list[SegmentEvent]) -> None:
        """Forget the utterance in progress; if it was announced, say that no segment follows."""
        if self._open and self._confirmed:
            events.append(SpeechEnd(self._frames_end))
        self._go_idle()

    def _cut(self, events: list[SegmentEvent]) -> None:
        """Max length reached: emit what we have and go on with a new segment from here."""
        if not self._confirmed:
            self._go_idle()
            return
        self._emit(events, "max_length", end=self._buf_start + self._fill)
        self._continued = True
        self._fill = 0
        self._buf_start = self._frames_end
        self._onset = self._frames_end
        self._weak_lead = 0
        self._last_speech_end = max(self._last_speech_end, self._onset)
        events.append(SpeechStart(self._onset))

    def _audible(self, at: int) -> bool:
        """Whether the frame starting at stream sample ``at`` (inside the buffer) stands out of the noise."""
        offset = at - self._buf_start
        frame = self._buf[:, offset : offset + self._t.frame]
        return self._levels.audible(frame[FILTERED], unfiltered=frame[RAW])

    def _reach_back(self, onset: int) -> int:
        """Move the onset back over audible frames just before it (a soft first consonant)."""
        limit = max(onset - self._reach, self._buf_start, self._last_end)
        while onset - self._t.frame >= limit and self._audible(onset - self._t.frame):
            onset -= self._t.frame
        return onset

    def _reach_forward(self, end: int) -> int:
        """Move the end forward over audible frames just after it (a soft last consonant)."""
        limit = min(end + self._reach, self._buf_start + self._fill)
        while end + self._t.frame <= limit and self._audible(end):
            end += self._t.frame
        return end

    def _masked_pads(self) -> tuple[int, int]:
        """Extra pre-roll and tail for soft edges hidden under the noise.

        Speech edges fade over tens of decibels; only the part above the noise is detected. The
        less the utterance's loudest frame stands above the noise, the more is hidden.
        """
        if not self._t.masked_pad:
            return 0, 0
        hidden = min(max(MASKED_DEPTH_DB - self._peak_above_db, 0.0), MASKED_DEPTH_DB) / MASKED_DEPTH_DB
        return round(hidden * self._t.max_extra_preroll), round(hidden * self._t.max_extra_tail)

    def _emit(self, events: list[SegmentEvent], reason: str, end: int | None = None) -> None:
        extra_preroll, extra_tail = self._masked_pads()
        if end is None:
            speech_end = self._reach_forward(self._last_speech_end)
            end = min(speech_end + self._t.tail + extra_tail, self._buf_start + self._fill)
        # (a continuation after a cut has its onset at the buffer start: it starts right at the cut)
        start = max(self._onset - self._t.preroll - extra_preroll, self._buf_start)
        audio = self._buf[RAW, start - self._buf_start : end - self._buf_start].copy()
        events.append(Segment(self._next_id, start, end, self.sample_rate, audio, reason, time.monotonic()))
        self._next_id += 1
        self._last_end = end


def make_segmenter(settings: VadSettings, sample_rate: int) -> FrameSegmenter:
    """The segmenter for ``settings.backend``; StartupError when the backend cannot run here."""
    detector: FrameDetector
    if settings.backend == "silero":
        from .vad.silero import SileroDetector

        detector = SileroDetector(sample_rate, settings.threshold, settings.reset_after_s)
    else:
        from .vad.webrtc import WebRtcDetector

        detector = WebRtcDetector(sample_rate, settings.frame_ms, settings.aggressiveness)
        if settings.murmur_check:
            return FrameSegmenter(settings, detector, make_murmur_check(sample_rate, settings.reset_after_s))
    return FrameSegmenter(settings, detector)
