"""The segmenter's state machine: idle → candidate → speaking ⇄ hangover → idle.

What each state means and what moves the utterance between them is in ``states.py``; each state has
one method here. A segment reaching ``max_utterance_s`` is emitted and the utterance goes on as a
new segment. Timestamps are stream sample counts at the segmenter's rate, so results do not depend
on block sizes or wall-clock time.
"""

from __future__ import annotations

import numpy as np

from . import edges
from .background import BackgroundModel
from .buffer import AudioWindow
from .emitting import SegmentWriter
from .events import SegmentEvent, SpeechEnd, SpeechStart
from .features import FrameFeatures
from .heard import Heard, hear
from .states import Candidate, OpeningWindow, State, Utterance
from .timing import Timing
from .tuning import Tuning


class StateMachine:
    """The utterance's states over the frames' features; ``step`` takes one frame."""

    def __init__(
        self, timing: Timing, tuning: Tuning, background: BackgroundModel, window: AudioWindow
    ) -> None:
        self._t = timing
        self._tuning = tuning
        self.background = background
        self._window = window
        self._writer = SegmentWriter(window, timing, tuning, self._audible)
        self._opening = OpeningWindow(timing.window_frames, timing.open_frames)
        self.state = State.IDLE
        self._peak_above_db = 0.0
        """The loudest speech frame since the last utterance ended, dB over the floor."""
        self.reset()

    def reset(self) -> None:
        self._frames_end = 0  # stream sample after the last processed frame
        self._writer.reset()
        self._go_idle()

    @property
    def confirmed(self) -> bool:
        return self.state in (State.SPEAKING, State.HANGOVER)

    def step(self, pair: np.ndarray, features: FrameFeatures, events: list[SegmentEvent]) -> Heard:
        """One frame (rows RAW and FILTERED) and its features; returns how it was heard."""
        # a room's echo opens nothing and holds nothing; a candidate's own frames still count
        heard = hear(self._frames_end, features, self.state is not State.CANDIDATE, self._tuning)
        self._window.append(pair, features, keep_all=self.state is not State.IDLE)
        self._frames_end += pair.shape[1]
        if heard.speech:
            self._peak_above_db = max(self._peak_above_db, features.above_floor_db)
        if self.state is State.IDLE:
            self._idle(heard, events)
        else:
            self._open_frame(heard, events)
        return heard

    def flush(self, events: list[SegmentEvent]) -> None:
        """End of stream: emit the utterance in progress (reason "flush") if it qualifies."""
        if self.confirmed:
            if self._window.fill == 0:  # the stream ended right at a max-length cut: nothing follows
                self.drop(events)
            else:
                self._emit(events, "flush")
        self._go_idle()

    def _open_frame(self, heard: Heard, events: list[SegmentEvent]) -> None:
        self._utterance.note_loudness(heard.loud, heard.features.above_floor_db)
        if self.state is State.CANDIDATE:
            self._candidate_frame(heard, events)
        elif self.state is State.SPEAKING:
            self._speaking(heard, events)
        else:
            self._hangover(heard, events)
        if self.state is not State.IDLE and self._window.fill + self._t.frame > self._t.max_length:
            self._cut(events)

    # --- idle ---------------------------------------------------------------------------------------

    def _idle(self, heard: Heard, events: list[SegmentEvent]) -> None:
        window = self._opening.add(heard)
        if not window:
            return
        first = window[0].start
        onset = edges.reach_back(first, max(first - self._t.reach, self._window.start, self._writer.last_end),
                                 self._t.frame, self._audible)
        keep_from = onset - self._t.preroll - self._t.max_extra_preroll
        latest_start = self._frames_end - self._t.max_length + self._t.frame
        self._window.drop_before(max(keep_from, self._writer.last_end, self._window.start, latest_start))
        self.background.candidate_opens()
        self._utterance = Utterance(onset=onset, last_speech_end=self._frames_end)
        self._candidate = Candidate()
        for earlier in window:
            self._candidate.add(earlier)
        self.state = State.CANDIDATE
        self._confirm_if_due(events)

    # --- candidate ----------------------------------------------------------------------------------

    def _candidate_frame(self, heard: Heard, events: list[SegmentEvent]) -> None:
        candidate = self._candidate
        if not heard.speech:
            candidate.quiet_frames += 1
            if candidate.quiet_frames >= self._t.hangover_frames:
                self.drop(events)
            return
        if candidate.quiet_frames >= self._t.restart_gap_frames and not (
            candidate.quiet_frames <= self._t.closure_frames and edges.lead_is_hiss(candidate.frames)
        ):  # a pause, and not after a hiss that leads into a stop's closure
            self._restart_candidate(heard.start)
        self._candidate.add(heard)
        self._candidate.quiet_frames = 0
        self._utterance.last_speech_end = self._frames_end
        self._confirm_if_due(events)

    def _restart_candidate(self, onset: int) -> None:
        """A candidate (a clink, a cough) went quiet and sound resumes: start over here."""
        self._utterance.onset = onset
        keep_from = onset - self._t.preroll - self._t.max_extra_preroll
        self._window.drop_before(max(keep_from, self._writer.last_end, self._window.start))
        self._candidate = Candidate()

    def _confirm_if_due(self, events: list[SegmentEvent]) -> None:
        candidate, profile, t = self._candidate, self.background.profile, self._t
        if not candidate.ready(t.confirm_frames, self._tuning.strong_frames, profile.min_voice_probability):
            return
        utterance = self._utterance
        weak_lead = t.samples(profile.weak_lead_ms)
        onset, weak = edges.confirmed_onset(utterance.onset, candidate.frames, weak_lead)
        utterance.onset, utterance.weak_lead = onset, weak
        utterance.last_voiced_end = self._frames_end
        utterance.hangover_left = self._t.hangover_frames
        self.background.candidate_confirmed()
        self.state = State.SPEAKING
        events.append(SpeechStart(utterance.onset))

    # --- speaking and hangover ----------------------------------------------------------------------

    def _speaking(self, heard: Heard, events: list[SegmentEvent]) -> None:
        if not self._try_hold(heard):
            self.state = State.HANGOVER
            self._count_down(heard, events)

    def _hangover(self, heard: Heard, events: list[SegmentEvent]) -> None:
        if self._try_hold(heard):
            self.state = State.SPEAKING
        else:
            self._count_down(heard, events)

    def _try_hold(self, heard: Heard) -> bool:
        """Whether this frame holds the utterance open (and if so, hold it)."""
        utterance, profile = self._utterance, self.background.profile
        if heard.voiced and (heard.strong or not profile.hold_needs_strong) and (
            heard.features.above_floor_db >= self._peak_above_db - profile.hold_within_peak_db
        ):
            utterance.hold(self._frames_end, voiced=True, hangover_frames=self._t.hangover_frames)
            return True
        soon = self._frames_end - utterance.last_voiced_end <= self._t.unvoiced_hold
        if heard.speech and (soon or (heard.hiss and (utterance.consonant or profile.any_clear_hiss_holds))):
            utterance.hold(self._frames_end, voiced=False, hangover_frames=self._t.unvoiced_hangover_frames)
            return True
        return False

    def _count_down(self, heard: Heard, events: list[SegmentEvent]) -> None:
        """A frame that does not hold: sound running on from the speech still widens the segment."""
        utterance = self._utterance
        utterance.consonant = False
        running_on = self._frames_end - utterance.last_speech_end <= self._t.gap_frames * self._t.frame
        if heard.features.sounding and running_on:
            utterance.last_speech_end = self._frames_end
            if heard.voiced_echo:  # a fading vowel: a final consonant may still follow
                utterance.last_voiced_end = self._frames_end
        utterance.hangover_left -= 1
        # not while the whole hangover stood out near the utterance's level: the sound went on
        near_peak = self._peak_above_db - self._tuning.sound_goes_on_db
        if utterance.hangover_left <= 0 and not utterance.sound_goes_on(self._t.hangover_frames, near_peak):
            self._close(events)

    # --- closing, cutting, dropping -----------------------------------------------------------------

    def _close(self, events: list[SegmentEvent]) -> None:
        """The hangover ran out: emit the utterance when long enough (a continuation however short)."""
        length = self._writer.length(self._utterance, self._peak_above_db)
        if length >= self._t.min_length or (self._utterance.continued and length > 0):
            self._emit(events, "silence")
            self._go_idle()
        else:
            self.drop(events)

    def _cut(self, events: list[SegmentEvent]) -> None:
        """Max length reached: emit what we have and go on with a new segment from here."""
        if self.state is State.CANDIDATE:
            self._go_idle()
            return
        self._emit(events, "max_length", end=self._window.end)
        self._window.restart(self._frames_end)
        self._utterance.continue_at(self._frames_end)
        events.append(SpeechStart(self._frames_end))

    def drop(self, events: list[SegmentEvent]) -> None:
        """Forget the utterance in progress; if it was announced, say that no segment follows."""
        if self.state in (State.SPEAKING, State.HANGOVER):
            events.append(SpeechEnd(self._frames_end))
        self._go_idle()

    def _go_idle(self) -> None:
        if self.state is State.CANDIDATE:
            self.background.candidate_dropped()
        self.state = State.IDLE
        self._window.restart(self._frames_end)
        self._utterance = Utterance(onset=0, last_speech_end=0)
        self._candidate = Candidate()
        self._peak_above_db = 0.0
        self._opening.clear()

    # --- edges ----------------------------------------------------------------------------------------

    def _audible(self, at: int) -> bool:
        features = self._window.features_at(at)
        return self.background.audible(features.energy_db, features.bands)

    def _emit(self, events: list[SegmentEvent], reason: str, end: int | None = None) -> None:
        events.append(self._writer.segment(self._utterance, self._peak_above_db, reason, end))
